"""Input statistics: each definition against a hand loop over the pixels, and as run columns."""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import embedding_explorer as ee
from embedding_explorer import inputstats
from embedding_explorer.inputstats import (
    EDGE_THRESHOLD,
    _edges,
    _plane_sums,
    image_statistics,
    text_statistics,
)
from embedding_explorer.threads import Scratch
from support import TinyTransformer, token_batches


def _hand(pixels: np.ndarray) -> dict[str, float]:
    """Every statistic of one image by plain loops (the module docstring's definitions)."""
    h, w = pixels.shape[:2]
    colour = pixels.ndim == 3
    lum = [[0.0] * w for _ in range(h)]
    out: dict[str, float] = {}
    sat = rg = by = 0.0
    for i in range(h):
        for j in range(w):
            if colour:
                r, g, b = (float(v) / 255 for v in pixels[i, j])
                lum[i][j] = 0.299 * r + 0.587 * g + 0.114 * b
                hi, lo = max(r, g, b), min(r, g, b)
                sat += (hi - lo) / hi if hi > 0 else 0.0
                rg += r - g
                by += b - (r + g) / 2
            else:
                lum[i][j] = float(pixels[i, j]) / 255
    values = [v for row in lum for v in row]
    mean = sum(values) / len(values)
    out["brightness"] = mean
    out["contrast"] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    edges = 0
    for i in range(h - 1):
        for j in range(w - 1):
            gx, gy = lum[i][j + 1] - lum[i][j], lum[i + 1][j] - lum[i][j]
            edges += math.hypot(gx, gy) > EDGE_THRESHOLD
    out["edge_density"] = edges / ((h - 1) * (w - 1))
    if colour:
        out.update(saturation=sat / (h * w), red_green=rg / (h * w), blue_yellow=by / (h * w))
    return out


def test_colour_statistics_match_a_hand_loop() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 9, 11, 3), dtype=np.uint8)
    pixels[1, :, :5] = 0  # black pixels: saturation 0 there
    stats = image_statistics(pixels)
    assert sorted(stats) == sorted(
        ["brightness", "contrast", "edge_density", "saturation", "red_green", "blue_yellow"]
    )
    for b in range(3):
        for name, value in _hand(pixels[b]).items():
            assert math.isclose(stats[name][b], value, abs_tol=1e-12), name


def test_grey_statistics_and_known_values() -> None:
    half = np.zeros((1, 8, 8), np.uint8)
    half[0, :, 4:] = 255  # left black, right white: mean 0.5, std 0.5, one edge column
    stats = image_statistics(half)
    assert sorted(stats) == ["brightness", "contrast", "edge_density"]
    assert stats["brightness"][0] == 0.5 and stats["contrast"][0] == 0.5
    assert math.isclose(stats["edge_density"][0], 7 / 49)  # column 3 of 7 x 7, all 7 rows
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(2, 10, 8), dtype=np.uint8)
    for b, expected in enumerate(map(_hand, grey)):
        for name, value in expected.items():
            assert math.isclose(image_statistics(grey)[name][b], value, abs_tol=1e-12)


def _float_statistics(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The colour statistics of a batch by float64 array formulas (the definitions, vectorised)."""
    p = pixels.astype(np.float64) / 255
    lum = p @ np.array([0.299, 0.587, 0.114])
    gx, gy = lum[:, :-1, 1:] - lum[:, :-1, :-1], lum[:, 1:, :-1] - lum[:, :-1, :-1]
    hi, lo = p.max(axis=-1), p.min(axis=-1)
    sat = np.where(hi > 0, (hi - lo) / np.where(hi > 0, hi, 1), 0.0)
    r, g, b = p[..., 0], p[..., 1], p[..., 2]
    return {
        "brightness": lum.mean(axis=(1, 2)),
        "contrast": lum.std(axis=(1, 2)),
        "edge_density": (np.hypot(gx, gy) > EDGE_THRESHOLD).mean(axis=(1, 2)),
        "saturation": sat.mean(axis=(1, 2)),
        "red_green": (r - g).mean(axis=(1, 2)),
        "blue_yellow": (b - (r + g) / 2).mean(axis=(1, 2)),
    }


def test_a_batch_of_large_colour_images_matches_float_formulas() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(6, 112, 96, 3), dtype=np.uint8)
    pixels[0] = 0
    pixels[1, ::2] //= 8  # dark stripes: many gradients near the threshold
    stats = image_statistics(pixels)
    for name, expected in _float_statistics(pixels).items():
        np.testing.assert_allclose(stats[name], expected, rtol=0, atol=1e-12, err_msg=name)


def test_edges_are_exact_at_the_threshold() -> None:
    """Integer luma whose gradients sit on, just under and just over the threshold, and far
    beyond it (where int32 squares would overflow uncapped), against Python integers."""
    threshold = 25_500  # EDGE_THRESHOLD of the colour luma scale, 255 * 1000
    steps = [(threshold, 0), (threshold + 1, 0), (15_300, 20_400), (15_300, 20_401), (255_000, 255_000)]
    steps += [(-a, -b) for a, b in steps] + [(0, 0), (threshold - 1, 1)]
    luma = np.zeros((len(steps), 2, 2), np.int32)
    for i, (dx, dy) in enumerate(steps):
        luma[i, 0, 0] = 255_000 if min(dx, dy) < 0 else 0
        luma[i, 0, 1], luma[i, 1, 0] = luma[i, 0, 0] + dx, luma[i, 0, 0] + dy
    got = _edges(luma, (EDGE_THRESHOLD * 255 * 1000) ** 2)
    expected = [float(dx * dx + dy * dy > threshold * threshold) for dx, dy in steps]
    assert got.tolist() == expected
    assert expected[:5] == [0.0, 1.0, 0.0, 1.0, 1.0]


def test_plane_sums_are_exact_past_what_uint32_holds() -> None:
    """A plane is summed in uint32 while its sum fits: one of 4,106 x 4,103 white pixels
    (255 * 16,846,918 > 2^32) is summed in int64 instead, and both read exactly."""
    small = np.full((2, 64, 64), 255, np.uint8)
    assert _plane_sums(small).tolist() == [255 * 64 * 64] * 2
    large = np.full((1, 4106, 4103), 255, np.uint8)
    assert 255 * large.size > 2**32
    assert _plane_sums(large).tolist() == [255 * 4106 * 4103]


def test_opponent_colours_have_the_documented_signs() -> None:
    orange = np.broadcast_to(np.array([255, 128, 0], np.uint8), (1, 8, 8, 3))
    blue = np.broadcast_to(np.array([0, 0, 255], np.uint8), (1, 8, 8, 3))
    o, b = image_statistics(orange), image_statistics(blue)
    assert o["red_green"][0] > 0 and o["blue_yellow"][0] < 0 and b["blue_yellow"][0] == 1.0
    assert o["saturation"][0] == 1.0 and o["edge_density"][0] == 0.0


def test_text_statistics() -> None:
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    stats = text_statistics(["a cat sat", " two  words "], mask, 4)
    assert stats["n_words"].tolist() == [3, 2] and stats["n_tokens"].tolist() == [3, 4]
    assert text_statistics(["x"], None, 7)["n_tokens"].tolist() == [7]
    assert "n_tokens" not in text_statistics(["x"], None, None)


def _images(n: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 12, 12, generator=g) * torch.linspace(0.2, 1.0, n)[:, None, None, None]


def test_explore_records_them_on_the_images_as_rendered(tmp_path: Path) -> None:
    x = _images()
    normalised = (x - 0.5) / 0.25  # what the model sees; renderings undo it
    run = ee.explore(
        None,
        normalised,
        ["input"],
        out=tmp_path / "r",
        progress=False,
        batch_size=16,
        render=ee.ImageRender(mean=0.5, std=0.25),
    )
    assert run.input_statistics == [
        "brightness",
        "contrast",
        "edge_density",
        "saturation",
        "red_green",
        "blue_yellow",
    ]
    for i in (0, 17, 39):
        record = run.rendering(i)
        assert record is not None
        pixels = np.asarray(Image.open(io.BytesIO(record)))
        for name, value in _hand(pixels).items():
            assert math.isclose(run.metadata[name].iat[i], value, abs_tol=1e-12), (i, name)
    assert np.corrcoef(run.metadata["brightness"], np.arange(40))[0, 1] > 0.95  # planted ramp
    reopened = ee.open_run(run.path)
    assert reopened.input_statistics == run.input_statistics


def _photos(folder: Path, modes: list[str]) -> list[Path]:
    """One 24 x 16 PNG a mode ("L" grey or "RGB"), of varied pixels, in one class folder."""
    rng = np.random.default_rng(5)
    (folder / "a").mkdir(parents=True)
    paths = []
    for i, mode in enumerate(modes):
        pixels = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
        path = folder / "a" / f"{i:02d}.png"
        Image.fromarray(pixels).convert(mode).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("loaded", [True, False], ids=["decoded-once", "render-files"])
def test_an_image_folder_of_grey_and_colour_files_records_every_statistic(
    tmp_path: Path, loaded: bool
) -> None:
    """A batch of only grey files among colour ones records the same six columns (a grey image:
    its grey brightness, contrast and edges; no saturation or colour opposition), not three that
    the run then refused; a folder of only grey files records the three grey ones."""
    modes = ["L", "L", "RGB", "RGB", "L", "RGB"]
    paths = _photos(tmp_path / "mixed", modes)
    data = ee.load_data(tmp_path / "mixed")
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    source = data if loaded else data.data
    kwargs = {} if loaded else data.explore_kwargs()
    run = ee.explore(model, source, ["1"], out=tmp_path / "run", batch_size=2, progress=False, **kwargs)
    assert run.input_statistics == [*inputstats.COLOUR_STATS]
    for i, (path, mode) in enumerate(zip(paths, modes, strict=True)):
        with Image.open(path) as image:
            pixels = np.asarray(image.convert(mode))
        expected = image_statistics(pixels[None])  # by the image's own kind
        for name in inputstats.GREY_STATS:
            assert math.isclose(run.metadata[name].iat[i], float(expected[name][0]), abs_tol=1e-12)
        if mode == "L":
            assert run.metadata.loc[i, ["saturation", "red_green", "blue_yellow"]].tolist() == [0, 0, 0]
        else:
            assert math.isclose(run.metadata["saturation"].iat[i], float(expected["saturation"][0]))
    _photos(tmp_path / "grey", ["L"] * 4)
    grey = ee.load_data(tmp_path / "grey")
    only = ee.explore(model, grey if loaded else grey.data, ["1"], out=tmp_path / "grey-run", batch_size=2,
                      progress=False, **({} if loaded else grey.explore_kwargs()))  # fmt: skip
    assert only.input_statistics == [*inputstats.GREY_STATS]


def test_input_stats_false_records_none(tmp_path: Path) -> None:
    run = ee.explore(None, _images(), ["input"], out=tmp_path / "r", progress=False, input_stats=False)
    assert run.input_statistics == [] and "brightness" not in run.metadata


def test_a_metadata_column_of_the_same_name_wins(tmp_path: Path) -> None:
    given = np.arange(40.0)
    run = ee.explore(
        None, _images(), ["input"], out=tmp_path / "r", progress=False, metadata={"brightness": given}
    )
    assert np.array_equal(run.metadata["brightness"], given)
    assert "brightness" not in run.input_statistics and "contrast" in run.input_statistics


def test_text_runs_record_tokens_and_words(tmp_path: Path) -> None:
    batches = token_batches()
    texts = [" ".join(["word"] * (i % 7 + 1)) for i in range(30)]
    run = ee.explore(TinyTransformer(), batches, ["block"], out=tmp_path / "r", progress=False, render=texts)
    assert run.input_statistics == ["n_tokens", "n_words"]
    tokens = torch.cat([b["attention_mask"].sum(dim=1) for b in batches]).numpy()
    np.testing.assert_array_equal(run.metadata["n_tokens"], tokens)
    np.testing.assert_array_equal(run.metadata["n_words"], [len(t.split()) for t in texts])
    assert run.output_columns == ["predicted", "confidence", "entropy"]  # the 2-class head, no labels


def test_threads_share_a_batch_with_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    for shape in [(37, 128, 128, 3), (41, 160, 160), (9, 8, 8, 3)]:
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        one = image_statistics(pixels)
        for workers in (2, 3):
            parts: list[int] = []
            single = inputstats._in_blocks

            def counted(part: np.ndarray, *args: Any, single=single, parts=parts, **kw: Any) -> Any:
                parts.append(len(part))
                return single(part, *args, **kw)

            monkeypatch.setattr(inputstats, "_in_blocks", counted)
            shared = image_statistics(pixels, workers=workers)
            monkeypatch.undo()
            assert sorted(parts) == sorted(
                len(p) for p in np.array_split(pixels, workers if shape[0] > 9 else 1)
            )
            assert shared.keys() == one.keys()
            for name in one:
                np.testing.assert_array_equal(shared[name], one[name], err_msg=f"{name}, {workers} threads")


def test_a_reused_scratch_gives_the_values_of_fresh_arrays() -> None:
    """Batches of other sizes and kinds through one scratch (its arrays reused, larger and
    smaller, grey and colour) give what fresh arrays give."""
    rng = np.random.default_rng(5)
    scratch = Scratch()
    for shape in [(9, 40, 40, 3), (4, 40, 40, 3), (6, 33, 20), (9, 40, 40, 3), (2, 8, 8)]:
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        reused, fresh = image_statistics(pixels, scratch=scratch), image_statistics(pixels)
        assert reused.keys() == fresh.keys()
        for name in fresh:
            np.testing.assert_array_equal(reused[name], fresh[name], err_msg=f"{name} of {shape}")


@pytest.mark.parametrize("shape", [(7, 12, 10, 3), (7, 12, 10), (3, 40, 40, 3)])
def test_blocks_of_images_give_the_values_of_the_whole_batch(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...]
) -> None:
    """Taken a block of images at a time (here 3 images of 12 x 10 a block, the last one short;
    or one image larger than a block), with and without a scratch, on one thread or two, every
    image's values are those of the whole batch at once, and of the hand loop."""
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    whole = inputstats._image_statistics(pixels)
    monkeypatch.setattr("embedding_explorer.threads.BLOCK_PIXELS", 3 * 12 * 10)
    blocks: list[int] = []
    single = inputstats._image_statistics

    threads: set[str] = set()

    def counted(part: np.ndarray, scratch: Scratch | None = None) -> dict[str, np.ndarray]:
        blocks.append(len(part))
        threads.add(threading.current_thread().name)
        return single(part, scratch)

    monkeypatch.setattr(inputstats, "_image_statistics", counted)
    monkeypatch.setattr("embedding_explorer.threads.MIN_SAMPLES_PER_PART", 1)  # these small
    monkeypatch.setattr("embedding_explorer.threads.MIN_VALUES_PER_PART", 1)  # batches shared too
    for scratch, workers in [(None, 1), (Scratch(), 1), (Scratch(), 2)]:
        blocks.clear()
        threads.clear()
        got = image_statistics(pixels, workers=workers, scratch=scratch)
        assert sum(blocks) == len(pixels) and max(blocks) == (3 if shape[1] == 12 else 1)
        # two workers: the batch in two parts on the pool's threads, each with its own scratch
        assert (threads == {threading.current_thread().name}) == (workers == 1)
        for name in whole:
            np.testing.assert_array_equal(got[name], whole[name], err_msg=f"{name}, {workers} threads")
    for b in range(len(pixels)):
        for name, value in _hand(pixels[b]).items():
            assert math.isclose(whole[name][b], value, abs_tol=1e-12), name
