"""Tests for the Fashion-MNIST demo: IDX parsing, data lookup, dataset, CNN, training, caching."""

from __future__ import annotations

import gzip
import io
import logging
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from embedding_explorer.demos import fashion_mnist as fm

STEMS = {
    "train-images-idx3-ubyte": 60,
    "train-labels-idx1-ubyte": 60,
    "t10k-images-idx3-ubyte": 20,
    "t10k-labels-idx1-ubyte": 20,
}
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode `array` in the IDX format (big-endian), as the official files are."""
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_fake_data(folder: Path, *, gz: bool = True, seed: int = 0) -> Path:
    """A tiny but well-formed Fashion-MNIST folder (60 training, 20 test images)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for stem, count in STEMS.items():
        if "images" in stem:
            array = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        else:
            array = (np.arange(count) % 10).astype(np.uint8)
        write_idx(folder / f"{stem}{suffix}", array, gz=gz)
    return folder


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Keep tests off the real user cache, the environment and the network."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EMBEDDING_EXPLORER_DATA", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return home


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    return make_fake_data(tmp_path / "fake")


@pytest.fixture
def real_data() -> Path:
    folder = fm._SYSTEM_DATA_DIR
    if not all((folder / f"{stem}.gz").is_file() for stem in STEMS):
        pytest.skip(f"Fashion-MNIST not installed in {folder} (apt-get install dataset-fashion-mnist)")
    return folder


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


# ------------------------------------------------------------------------------------------
# FashionCNN
# ------------------------------------------------------------------------------------------


def test_cnn_shapes_and_named_layers() -> None:
    model = fm.untrained_cnn()
    assert not model.training
    modules = dict(model.named_modules())
    assert set(fm.DEMO_LAYERS[1:]) <= modules.keys()
    assert fm.DEMO_LAYERS[0] == "input"
    shapes: dict[str, tuple[int, ...]] = {}
    calls: dict[str, int] = {}

    def record(name: str) -> None:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape)
            calls[name] = calls.get(name, 0) + 1

        modules[name].register_forward_hook(hook)

    for name in ("block1", "block2", "block3", "flatten", "fc1", "relu", "dropout", "fc2"):
        record(name)
    with torch.inference_mode():
        logits = model(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert shapes["block1"] == (5, 32, 14, 14)
    assert shapes["block2"] == (5, 64, 7, 7)
    assert shapes["block3"] == (5, 128, 3, 3)
    assert shapes["fc1"] == (5, 128)
    assert shapes["fc2"] == (5, 10)
    assert set(calls.values()) == {1}  # every module runs exactly once per forward


def test_cnn_seed_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = fm.FashionCNN(seed=0), fm.FashionCNN(seed=0), fm.FashionCNN(seed=1)
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)
    untrained = fm.untrained_cnn(seed=1)
    assert torch.equal(untrained.fc2.weight, c.fc2.weight)


# ------------------------------------------------------------------------------------------
# evaluate / train_cnn
# ------------------------------------------------------------------------------------------


class Oracle(nn.Module):
    """Predicts label `k` for inputs filled with the value k (to test evaluate)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x.flatten(1)[:, 0].long(), 10).float()


def test_evaluate_generic_dataset_and_restores_mode() -> None:
    labels = torch.arange(10).repeat(3)
    inputs = labels.float()[:, None, None, None].expand(-1, 1, 2, 2)
    flipped = labels.clone()
    flipped[:6] = (flipped[:6] + 1) % 10
    model = Oracle().train()
    assert fm.evaluate(model, TensorDataset(inputs, labels), batch_size=7) == 1.0
    assert fm.evaluate(model, TensorDataset(inputs, flipped)) == pytest.approx(0.8)
    assert model.training
    with pytest.raises(ValueError, match="empty"):
        fm.evaluate(model, TensorDataset(inputs[:0], labels[:0]))


def test_train_cnn_on_tiny_data(fake_data: Path) -> None:
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    model, accuracy = fm.train_cnn(epochs=2, batch_size=16, data_dir=fake_data, progress=False)
    again, accuracy_again = fm.train_cnn(epochs=2, batch_size=16, data_dir=fake_data, progress=False)
    assert torch.equal(torch.rand(1), expected_next)
    assert isinstance(model, fm.FashionCNN)
    assert not model.training
    assert 0.0 <= accuracy <= 1.0
    assert accuracy == accuracy_again
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
        assert p.is_contiguous()


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"limit": 0}])
def test_train_cnn_rejects_bad_arguments(fake_data: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        fm.train_cnn(data_dir=fake_data, progress=False, **kwargs)


@pytest.mark.slow
def test_short_training_beats_chance(real_data: Path) -> None:
    model, accuracy = fm.train_cnn(epochs=1, limit=2000, progress=False)
    assert accuracy > 0.5  # chance is 0.1; measured about 0.69
    assert fm.evaluate(model, fm.FashionMNIST(limit=1000)) > 0.5


# ------------------------------------------------------------------------------------------
# load_or_train_cnn
# ------------------------------------------------------------------------------------------


@pytest.fixture
def cheap_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace train_cnn by an instant fake; the list counts its calls."""
    calls: list[int] = []

    def fake_train(**kwargs: object) -> tuple[fm.FashionCNN, float]:
        calls.append(1)
        return fm.untrained_cnn(seed=len(calls)), 0.25 * len(calls)

    monkeypatch.setattr(fm, "train_cnn", fake_train)
    return calls


def test_checkpoint_round_trip(tmp_path: Path, cheap_training: list[int]) -> None:
    trained, accuracy = fm.load_or_train_cnn(tmp_path / "models", progress=False)
    assert cheap_training == [1]
    path = tmp_path / "models" / "fashion_cnn.pt"
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["version"] == 1
    assert checkpoint["test_accuracy"] == accuracy == 0.25
    loaded, loaded_accuracy = fm.load_or_train_cnn(tmp_path / "models", progress=False)
    assert cheap_training == [1]  # not retrained
    assert loaded_accuracy == accuracy
    assert not loaded.training
    for (name, p), (_, q) in zip(trained.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    assert [p.name for p in path.parent.iterdir()] == ["fashion_cnn.pt"]
    reference = tmp_path / "reference"
    reference.touch()
    assert path.stat().st_mode == reference.stat().st_mode  # umask-based, not private


def test_default_cache_dir(isolated: Path, cheap_training: list[int]) -> None:
    fm.load_or_train_cnn(progress=False)
    assert (isolated / ".cache" / "embedding-explorer" / "models" / "fashion_cnn.pt").is_file()


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint", b"", "wrong-version", "wrong-shapes"],
    ids=["garbage", "empty", "version", "shapes"],
)
def test_corrupt_checkpoint_is_retrained(
    tmp_path: Path,
    cheap_training: list[int],
    caplog: pytest.LogCaptureFixture,
    content: bytes | str,
) -> None:
    path = tmp_path / "fashion_cnn.pt"
    if content == "wrong-version":
        torch.save({"state_dict": {}, "test_accuracy": 0.9, "version": 0}, path)
    elif content == "wrong-shapes":
        state = {"fc2.weight": torch.zeros(3, 3)}
        torch.save({"state_dict": state, "test_accuracy": 0.9, "version": 1}, path)
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger=fm.__name__):
        _, accuracy = fm.load_or_train_cnn(tmp_path, progress=False)
    assert cheap_training == [1]
    assert accuracy == 0.25
    assert "retraining" in caplog.text
    assert str(path) in caplog.text
    _, reloaded_accuracy = fm.load_or_train_cnn(tmp_path, progress=False)
    assert cheap_training == [1]
    assert reloaded_accuracy == 0.25
