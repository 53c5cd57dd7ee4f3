"""Tests for the Fashion-MNIST data of the demo: IDX parsing, data lookup and download, dataset."""

from __future__ import annotations

import gzip
import io
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from embedding_explorer.demos import fashion_mnist as fm
from fashion_support import STEMS, idx_bytes, make_fake_data, write_idx

pytestmark = pytest.mark.usefixtures("isolated")


# ------------------------------------------------------------------------------------------
# read_idx
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([1, -2, 70000], dtype=np.int32),
        np.array([[0.5, -1.25]], dtype=np.float32),
    ],
    ids=["uint8-3d", "int32-1d", "float32-2d"],
)
def test_read_idx_round_trip(tmp_path: Path, array: np.ndarray, gz: bool) -> None:
    result = fm.read_idx(write_idx(tmp_path / "a.idx", array, gz=gz))
    assert result.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


def test_read_idx_bad_magic_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match=r"bad\.idx.*magic"):
        fm.read_idx(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "magic"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x01\x00", "type code"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (idx_bytes(np.zeros((4, 4), np.uint8))[:-1], "size mismatch"),
        (idx_bytes(np.zeros((4, 4), np.uint8)) + b"\x00", "size mismatch"),
        (gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-10], "corrupt gzip"),
    ],
    ids=["empty", "dtype", "header", "short", "long", "gzip"],
)
def test_read_idx_rejects_corrupt_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "corrupt.idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        fm.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_real_files(real_data: Path) -> None:
    images = fm.read_idx(real_data / "t10k-images-idx3-ubyte.gz")
    labels = fm.read_idx(real_data / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert labels.min() == 0
    assert labels.max() == 9


# ------------------------------------------------------------------------------------------
# find_fashion_mnist / load_fashion_mnist
# ------------------------------------------------------------------------------------------


def test_find_uses_data_dir_first(fake_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_fake_data(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("EMBEDDING_EXPLORER_DATA", str(tmp_path / "env"))
    assert fm.find_fashion_mnist(fake_data, download=False) == fake_data
    assert fm.find_fashion_mnist(str(fake_data), download=False) == fake_data


def test_find_uses_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_fake_data(tmp_path / "env" / "fashion-mnist", gz=False)
    monkeypatch.setenv("EMBEDDING_EXPLORER_DATA", str(tmp_path / "env"))
    assert fm.find_fashion_mnist(tmp_path / "nowhere", download=False) == folder


def test_find_uses_user_cache(isolated: Path) -> None:
    folder = make_fake_data(isolated / ".cache" / "embedding-explorer" / "fashion-mnist")
    assert fm.find_fashion_mnist(download=False) == folder


def test_find_skips_incomplete_folders(
    fake_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fake_data / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(fm, "_SYSTEM_DATA_DIR", tmp_path / "system")
    with pytest.raises(FileNotFoundError):
        fm.find_fashion_mnist(fake_data, download=False)


def test_find_missing_everywhere_explains_how_to_get_data(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fm, "_SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setenv("EMBEDDING_EXPLORER_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        fm.find_fashion_mnist(tmp_path / "mine", download=False)
    message = str(info.value)
    for searched in [
        tmp_path / "mine",
        tmp_path / "env" / "fashion-mnist",
        isolated / ".cache" / "embedding-explorer" / "fashion-mnist",
        tmp_path / "system",
    ]:
        assert str(searched) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "data_dir" in message
    assert "download=False" in message


def test_find_downloads_missing_files_atomically(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = make_fake_data(tmp_path / "server")
    monkeypatch.setattr(fm, "_SYSTEM_DATA_DIR", tmp_path / "system")
    requested: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        requested.append(url)
        return io.BytesIO((served / url.rsplit("/", 1)[-1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    folder = fm.find_fashion_mnist()
    assert folder == isolated / ".cache" / "embedding-explorer" / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.gz" for s in STEMS)
    assert all(url.startswith("http://fashion-mnist.s3-website") for url in requested)
    images, labels = fm.load_fashion_mnist("train")
    assert images.shape == (60, 28, 28)
    assert labels.shape == (60,)


def test_find_rejects_bad_download_and_reports_it(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fm, "_SYSTEM_DATA_DIR", tmp_path / "system")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>"))
    with pytest.raises(FileNotFoundError, match="not an IDX file"):
        fm.find_fashion_mnist()
    cache = isolated / ".cache" / "embedding-explorer" / "fashion-mnist"
    assert list(cache.iterdir()) == []  # no partial or temporary files left behind


def test_find_reports_network_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "_SYSTEM_DATA_DIR", tmp_path / "system")
    with pytest.raises(FileNotFoundError, match="network disabled in tests"):
        fm.find_fashion_mnist()


def test_load_real_test_split(real_data: Path) -> None:
    images, labels = fm.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [1000] * 10)
    assert len(fm.CLASSES) == 10


def test_load_rejects_unknown_split(fake_data: Path) -> None:
    with pytest.raises(ValueError, match="'validation'"):
        fm.load_fashion_mnist("validation", fake_data)


def test_load_rejects_wrong_image_shape(fake_data: Path) -> None:
    write_idx(fake_data / "t10k-images-idx3-ubyte.gz", np.zeros((20, 8, 8), np.uint8), gz=True)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        fm.load_fashion_mnist("test", fake_data)


def test_mean_and_std_match_training_images(real_data: Path) -> None:
    images, _ = fm.load_fashion_mnist("train")
    counts = np.bincount(images.ravel(), minlength=256)  # a histogram avoids a float copy
    values = np.arange(256) / 255.0
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    assert mean == pytest.approx(fm.MEAN, abs=1e-4)
    assert std == pytest.approx(fm.STD, abs=1e-4)


# ------------------------------------------------------------------------------------------
# FashionMNIST dataset
# ------------------------------------------------------------------------------------------


def test_dataset_normalises_and_limits(fake_data: Path) -> None:
    dataset = fm.FashionMNIST("train", fake_data, limit=7)
    images, labels = fm.load_fashion_mnist("train", fake_data)
    assert len(dataset) == 7
    np.testing.assert_array_equal(dataset.images, images[:7])
    assert dataset.labels.dtype == np.int64
    assert dataset.classes == fm.CLASSES
    x, y = dataset[3]
    assert x.shape == (1, 28, 28)
    assert x.dtype == torch.float32
    expected = (images[3].astype(np.float32) / 255 - fm.MEAN) / fm.STD
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert type(y) is int
    assert y == labels[3]


def test_dataset_real_data(real_data: Path) -> None:
    dataset = fm.FashionMNIST(limit=1000)
    assert len(dataset) == 1000
    x, y = dataset[0]
    assert x.shape == (1, 28, 28)
    assert 0 <= y < 10


def test_dataset_transform(fake_data: Path) -> None:
    dataset = fm.FashionMNIST("test", fake_data, transform=lambda a: torch.from_numpy(a.astype(np.float32)))
    x, _ = dataset[0]
    assert x.shape == (28, 28)
    np.testing.assert_array_equal(x.numpy(), dataset.images[0])


def test_dataset_limit_beyond_size_and_negative(fake_data: Path) -> None:
    assert len(fm.FashionMNIST("test", fake_data, limit=1000)) == 20
    with pytest.raises(ValueError, match="limit"):
        fm.FashionMNIST("test", fake_data, limit=-1)


def test_normalize_images_rejects_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        fm.normalize_images(np.zeros((2, 28, 28), np.float32))
    batch = np.zeros((2, 28, 28), np.uint8)
    batch.flags.writeable = False  # must not trigger torch's non-writable warning
    assert fm.normalize_images(batch).shape == (2, 1, 28, 28)
