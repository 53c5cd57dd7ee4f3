"""Image files decoded once, for the model and for the thumbnail, where the loader reads them (in
its worker processes with ``workers``): the same run, to the byte, as the main process decoding
every file twice (once for the model, once for its thumbnail)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

import embedding_explorer as ee
from embedding_explorer import batches
from embedding_explorer.batches import Batch, Rendered
from embedding_explorer.cli import loader_workers
from embedding_explorer.cores import available_cores
from embedding_explorer.exceptions import EmbeddingExplorerError, SpecError
from embedding_explorer.fingerprint import data_fingerprint
from embedding_explorer.records import as_png
from embedding_explorer.render import Renderer, rendering_source
from embedding_explorer.specs import images
from embedding_explorer.specs.images import ImageFiles

LAYERS = ["1", "3"]


def pool_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())


def write_photos(folder: Path, n: int = 22) -> list[Path]:
    """Colour and grey images of several sizes (most larger than a 128 px thumbnail), as JPEG
    and PNG, in two class folders: each batch of 8 mixes them."""
    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        height, width = int(rng.integers(60, 300)), int(rng.integers(60, 300))
        ys, xs = np.mgrid[0:height, 0:width]
        base = np.stack([(xs * (c + 1) + ys * (3 - c)) % 256 for c in range(3)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if i % 5 == 0:
            image = image.convert("L")
        parent = folder / ("sea" if i % 3 else "wood")
        parent.mkdir(parents=True, exist_ok=True)
        path = parent / f"{i:03d}{'.jpg' if i % 2 else '.png'}"
        image.save(path)
        paths.append(path)
    return sorted(paths)


def same_runs(a: ee.Run, b: ee.Run) -> None:
    """Activations, PCA, every rendering and the whole sample table (input statistics included)."""
    for layer in LAYERS:
        np.testing.assert_array_equal(np.asarray(a[layer].activations), np.asarray(b[layer].activations))
        np.testing.assert_array_equal(a[layer].explained_variance, b[layer].explained_variance)
    n = len(a.samples)
    assert n == len(b.samples) and [a.rendering(i) for i in range(n)] == [b.rendering(i) for i in range(n)]
    pd.testing.assert_frame_equal(a.samples, b.samples)


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The index of every image file read in this process."""
    reads: list[int] = []
    original = ImageFiles.original

    def counting(self: ImageFiles, index: int) -> Image.Image:
        reads.append(index)
        return original(self, index)

    monkeypatch.setattr(ImageFiles, "original", counting)
    return reads


def test_each_file_is_decoded_once_and_the_run_is_the_same_as_decoding_it_twice(
    tmp_path: Path, counted_reads: list[int]
) -> None:
    paths = write_photos(tmp_path / "photos")
    loaded = ee.load_data(tmp_path / "photos")
    files = loaded.data
    assert isinstance(files, ImageFiles)
    twice = ee.explore(
        pool_net(), files, LAYERS, out=tmp_path / "twice", batch_size=8, progress=False,
        **loaded.explore_kwargs(),
    )  # fmt: skip
    # the files as a plain Dataset: each decoded for the model and again for its thumbnail
    assert sorted(counted_reads) == sorted([*range(len(paths))] * 2)
    assert {"brightness", "saturation", "edge_density"} <= set(twice.input_statistics)
    counted_reads.clear()
    once = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "once", batch_size=8, progress=False)
    assert sorted(counted_reads) == list(range(len(paths)))  # the fingerprint reads none either
    same_runs(once, twice)
    assert once.metadata["file"].tolist() == [f"{p.parent.name}/{p.name}" for p in paths]


def test_a_run_stats_each_file_once_and_a_later_run_sees_a_changed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan takes the folder's identity as the data's and as the renderer's originals': one
    ``stat`` of each file for both (network file systems make each one slow); the next run stats
    them again, so a file changed between runs makes a new run, not the old one reused."""
    paths = write_photos(tmp_path / "photos", n=10)
    names = {str(p) for p in paths}
    stats: list[str] = []
    original = os.lstat

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(path) in names:
            stats.append(os.fspath(path))
        return original(path, *args, **kwargs)

    loaded = ee.load_data(tmp_path / "photos")
    monkeypatch.setattr(os, "lstat", counting)
    first = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "run", batch_size=4, progress=False)
    assert sorted(stats) == sorted(names)  # each file once, not once per fingerprint
    stats.clear()
    reused = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "run", batch_size=4, progress=False)
    assert reused.manifest == first.manifest  # the finished run, as it was
    assert sorted(stats) == sorted(names)  # the reuse check stats them again
    Image.open(paths[0]).rotate(90).save(paths[0])  # the same path, other pixels and time
    os.utime(paths[0], ns=(1, 1))
    key = first.manifest["key"]
    again = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "run", batch_size=4, progress=False)
    assert again.manifest["key"] != key


def test_in_the_main_process_a_batch_s_files_are_read_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without loader workers the main process reads a batch's files on its idle cores (PIL lets
    go of the GIL), and the run is the one read on a single thread."""
    write_photos(tmp_path / "photos")
    threads: set[str] = set()
    original = ImageFiles.original

    def noted(self: ImageFiles, index: int) -> Image.Image:
        threads.add(threading.current_thread().name)
        return original(self, index)

    monkeypatch.setattr(ImageFiles, "original", noted)
    monkeypatch.setattr(images, "available_cores", lambda: 1)
    data = tmp_path / "photos"
    one = ee.explore(
        pool_net(), ee.load_data(data), LAYERS, out=tmp_path / "one", batch_size=8, progress=False
    )
    assert threads == {threading.current_thread().name}
    monkeypatch.setattr(images, "available_cores", lambda: 3)
    threads.clear()
    three = ee.explore(
        pool_net(), ee.load_data(data), LAYERS, out=tmp_path / "three", batch_size=8, progress=False
    )
    assert len(threads) > 1 or available_cores() == 1  # the shared pool's threads
    assert threading.current_thread().name not in threads
    same_runs(three, one)


def test_loader_workers_decode_the_files_and_make_the_same_run(
    tmp_path: Path, counted_reads: list[int]
) -> None:
    write_photos(tmp_path / "photos")
    in_main = ee.explore(
        pool_net(),
        ee.load_data(tmp_path / "photos"),
        LAYERS,
        out=tmp_path / "main",
        batch_size=8,
        progress=False,
    )
    counted_reads.clear()
    loaded = ee.load_data(tmp_path / "photos", workers=2)
    in_workers = ee.explore(
        pool_net(), loaded, LAYERS, out=tmp_path / "workers", batch_size=8, progress=False
    )
    assert counted_reads == []  # not one file read in this process: the workers read them
    same_runs(in_workers, in_main)
    # the same files, thumbnails and batches: the same data; a finished run is found again
    assert data_fingerprint(loaded.batches(8)) == data_fingerprint(
        ee.load_data(tmp_path / "photos").batches(8)
    )
    reloaded = ee.load_data(tmp_path / "photos", workers=2)
    again = ee.explore(pool_net(), reloaded, LAYERS, out=tmp_path / "workers", batch_size=8, progress=False)
    assert again.generation == in_workers.generation


def test_a_file_that_does_not_decode_in_a_worker_stops_the_run_naming_it(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", 12)
    paths[9].write_bytes(b"not an image")
    with pytest.raises(SpecError) as raised:
        ee.explore(pool_net(), ee.load_data(tmp_path / "photos", workers=2), LAYERS, out=tmp_path / "run",
                   batch_size=4, progress=False)  # fmt: skip
    # the reader's own message, as the main process would raise it: not the worker's traceback
    assert str(raised.value).startswith(f"image {paths[9]} (sample 9) cannot be read")
    assert "Traceback" not in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists()


def test_renderings_are_taken_only_from_the_renderer_s_own_originals_at_its_size(tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", 4)
    files = ee.load_data(tmp_path / "photos").data
    x = torch.zeros(4, 3, 8, 8)
    for source in (
        rendering_source(files, 64),
        "",
        rendering_source(ee.load_data(tmp_path / "photos").data, 128),
    ):
        renderer = Renderer(files, len(paths))
        made = Rendered("image", [b"x"] * 4, {"brightness": np.zeros(4)}, source)
        rendered = renderer.render(Batch(x, 4, None, None, rendered=made))
        assert rendered is not None and b"x" not in rendered and renderer.last_columns is None
    renderer = Renderer(files, len(paths))
    own = Rendered(
        "image", [b"x"] * 4, {"brightness": np.zeros(4)}, rendering_source(files, renderer.max_size)
    )
    assert renderer.render(Batch(x, 4, None, None, rendered=own)) == [b"x"] * 4
    assert renderer.last_columns is own.columns


def test_another_folder_s_renderings_are_shown_where_render_names_it(tmp_path: Path) -> None:
    """``render=`` another data set's files: its thumbnails and statistics, as before."""
    write_photos(tmp_path / "a", 10)
    write_photos(tmp_path / "b", 10)
    shown = ee.load_data(tmp_path / "b")
    loaded = ee.load_data(tmp_path / "a")
    run = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "run", batch_size=4, progress=False,
                     render=shown.data)  # fmt: skip
    plain = ee.explore(
        pool_net(), loaded.data, LAYERS, out=tmp_path / "plain", batch_size=4, progress=False,
        render=shown.data, label_names=loaded.label_names, metadata=loaded.metadata,
    )  # fmt: skip
    same_runs(run, plain)
    expected = Renderer(shown.data, 10).render(Batch(torch.zeros(10, 1), 10, None, None))
    assert [run.rendering(i) for i in range(10)] == [as_png(r) for r in expected or []]


def test_a_loader_of_decoded_files_brings_its_label_names(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 10)
    loaded = ee.load_data(tmp_path / "photos")
    run = ee.explore(pool_net(), loaded.batches(4), LAYERS, out=tmp_path / "run", progress=False,
                     render=loaded.render)  # fmt: skip
    assert run.label_names == ["sea", "wood"] and run.rendering_kind == "image/png"


def test_without_input_statistics_the_loader_takes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``input_stats=False``: the thumbnails' statistics are not taken where the files are decoded
    (the run would drop them), and the renderings are the same as with them. A loader made without
    them, explored with them, is refused by name rather than run without its statistics."""
    write_photos(tmp_path / "photos", 10)
    loaded = ee.load_data(tmp_path / "photos")
    taken: list[int] = []
    original = images.original_image_statistics

    def counted(shown: list[Image.Image]) -> dict[str, np.ndarray]:
        taken.append(len(shown))
        return original(shown)

    monkeypatch.setattr(images, "original_image_statistics", counted)
    kept = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "kept", batch_size=4, progress=False)
    assert taken == [4, 4, 2] and "brightness" in kept.samples
    taken.clear()
    bare = ee.explore(pool_net(), loaded, LAYERS, out=tmp_path / "bare", batch_size=4, progress=False,
                      input_stats=False)  # fmt: skip
    assert taken == [] and bare.input_statistics == []
    assert [bare.rendering(i) for i in range(10)] == [kept.rendering(i) for i in range(10)]
    without = images.decoded_once(loaded.data, 4, input_stats=False)
    with pytest.raises(EmbeddingExplorerError, match=r"without input statistics.*input_stats=False"):
        ee.explore(pool_net(), without, LAYERS, out=tmp_path / "refused", progress=False,
                   render=loaded.render)  # fmt: skip
    assert not (tmp_path / "refused").exists()


class ReadsItsOwnWay(ImageFiles):
    def __getitem__(self, index: int) -> Any:
        x, y = super().__getitem__(index)
        return x * 0, y


def test_image_files_that_read_their_items_their_own_way_are_read_so(tmp_path: Path) -> None:
    write_photos(tmp_path / "photos", 4)
    loaded = ee.load_data(tmp_path / "photos")
    files = loaded.data
    own = ReadsItsOwnWay(files.paths, files.transform, labels=files.labels, classes=files.classes)
    loaded.data = loaded.render = own
    assert loaded.batches(2) is own


def test_a_daemonic_process_reads_a_loader_s_slices_in_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Dask worker is a daemonic process: it may not start the loader's worker processes."""
    write_photos(tmp_path / "photos", 6)
    loader = ee.load_data(tmp_path / "photos", workers=2).batches(2)
    assert batches._sliced(loader, 2, 6).num_workers == 2
    monkeypatch.setattr(multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    sliced = batches._sliced(loader, 2, 6)
    assert sliced.num_workers == 0 and sliced.prefetch_factor is None and len(list(sliced)) == 2


def test_a_rendered_batch_has_one_rendering_per_sample() -> None:
    from embedding_explorer.batches import RenderedBatch, parse_batch

    made = Rendered("image", [b"x"] * 3, {}, "source")
    with pytest.raises(EmbeddingExplorerError, match="4 samples but 3 renderings"):
        parse_batch(RenderedBatch((torch.zeros(4, 2), torch.arange(4)), made))


@pytest.mark.parametrize(
    ("given", "device", "cores", "expected"),
    [
        (None, None, 16, 0),
        (None, "cpu", 16, 0),
        (None, "cuda", 16, 8),
        (None, "cuda:1", 4, 3),
        (None, "cuda", 1, 0),
        (3, "cpu", 16, 3),
        (0, "cuda", 16, 0),
    ],
)
def test_the_command_s_loader_workers(
    monkeypatch: pytest.MonkeyPatch, given: int | None, device: str | None, cores: int, expected: int
) -> None:
    monkeypatch.setattr("embedding_explorer.cli.available_cores", lambda: cores)
    assert loader_workers(given, device) == expected


@pytest.mark.parametrize("workers", [-1, 1.5, True])
def test_a_bad_number_of_workers_is_refused(tmp_path: Path, workers: Any) -> None:
    write_photos(tmp_path / "photos", 2)
    with pytest.raises(SpecError, match="--workers"):
        ee.load_data(tmp_path / "photos", workers=workers)


def _raising(image: Image.Image) -> torch.Tensor:
    raise ValueError("no such channel")


def _left_as_image(image: Image.Image) -> Image.Image:
    return image.resize((32, 32))  # the to-tensor step left out


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (_raising, "the preprocessing _raising() in {file} failed: ValueError: no such channel"),
        (
            _left_as_image,
            "the preprocessing _left_as_image() in {file} returned Image, not a tensor; end it with a "
            "tensor, e.g. torchvision.transforms.functional.to_tensor(image)",
        ),
    ],
)
def test_a_preprocessing_that_fails_names_the_file_the_sample_and_itself(
    tmp_path: Path, workers: int, transform: Any, message: str
) -> None:
    paths = write_photos(tmp_path / "photos", 6)
    model = ee.LoadedModel(pool_net(), "net", transform)
    with pytest.raises(SpecError) as raised:
        ee.explore(pool_net(), ee.load_data(tmp_path / "photos", model, workers=workers), LAYERS,
                   out=tmp_path / "run", batch_size=4, progress=False)  # fmt: skip
    assert str(raised.value) == f"image {paths[0]} (sample 0): " + message.format(file=__file__)
    files = ee.load_data(tmp_path / "photos", model).data
    with pytest.raises(SpecError, match=r"\(sample 3\): the preprocessing"):
        files[3]
