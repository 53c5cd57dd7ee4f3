"""RunReader (store.reader): a committed run read back, renderings included."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import DamagedRunError
from embedding_explorer.store.format import staging_path
from embedding_explorer.store.reader import RunReader
from support import write_small_run


def test_writer_commit_and_reader_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "run"
    written = write_small_run(out)
    assert not staging_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    reader = RunReader(out)
    assert reader.manifest["name"] == "small"
    np.testing.assert_allclose(reader.array("activations", "00_a_0")[...], written["x"].astype(np.float32))
    pca = reader.pca_arrays("00_a_0")
    np.testing.assert_allclose(pca["components"], written["pca"].components)
    np.testing.assert_allclose(pca["mean"], written["pca"].mean)
    assert reader.rendering(0) == b"s0"
    assert reader.rendering(1) == b""
    assert reader.rendering(2) == b"sample two"
    assert reader.rendering(5) == b"s5"
    np.testing.assert_array_equal(reader.rendering_offsets(), [0, 2, 2, 12, 14, 16, 18])
    assert reader.samples()["label"].tolist() == list("aabbcc")


def test_thumbnails_are_stored_raw_and_read_back_as_png(tmp_path: Path) -> None:
    """Thumbnails (28 x 28, 96 x 96) cost a copy to store, not a zlib pass; readers get PNG bytes."""
    import io

    from PIL import Image

    from embedding_explorer.records import RAW_MAGIC
    from embedding_explorer.store.format import RENDERINGS

    images = torch.rand(20, 1, 28, 28)
    big = torch.rand(4, 3, 96, 96)
    small_run = ee.explore(None, images, ["input"], out=tmp_path / "small", progress=False)
    big_run = ee.explore(None, big, ["input"], out=tmp_path / "big", progress=False)
    assert (tmp_path / "small" / RENDERINGS).read_bytes().startswith(RAW_MAGIC)
    assert (tmp_path / "big" / RENDERINGS).read_bytes().startswith(RAW_MAGIC)
    for run, x in ((small_run, images), (big_run, big)):
        png = run.rendering(3)
        assert png is not None and png.startswith(b"\x89PNG")
        decoded = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float64)
        expected = (
            np.rint(x[3].numpy() * 255).squeeze(0)
            if x.shape[1] == 1
            else np.rint(np.moveaxis(x[3].numpy(), 0, -1) * 255)
        )
        np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("node", ["activations/00_a_0", "scores/00_a_0", "pca/00_a_0", "pca/00_a_0/mean"])
def test_a_garbled_array_metadata_file_is_damage_naming_it(tmp_path: Path, node: str) -> None:
    """A zarr.json of an array or group that is not JSON raises DamagedRunError naming that file
    (not a bare JSONDecodeError); its size is kept, so only its bytes are wrong."""
    out = tmp_path / "run"
    write_small_run(out)
    path = out / "arrays.zarr" / node / "zarr.json"
    path.write_bytes(b"{" + b"x" * (path.stat().st_size - 1))
    reader = RunReader(out)
    kind, key = node.split("/")[:2]
    with pytest.raises(DamagedRunError, match=re.escape(f"{path} cannot be read (JSONDecodeError")):
        if kind == "pca":
            reader.pca_arrays(key)
        else:
            reader.array(kind, key)


def test_open_run_names_a_garbled_scores_metadata_file(run_dir: Path) -> None:
    """Opening a run checks its arrays' shapes (check_run): a garbled zarr.json is named there too."""
    run = ee.explore(None, torch.randn(30, 4), ["input"], out=run_dir, progress=False)
    path = run_dir / "arrays.zarr" / "scores" / run["input"].key / "zarr.json"
    path.write_bytes(b"{" + b"x" * (path.stat().st_size - 1))
    with pytest.raises(DamagedRunError, match=re.escape(f"{path} cannot be read")):
        ee.open_run(run_dir)
