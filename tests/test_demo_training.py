"""Tests for training the demo's CNN: evaluate, train_cnn, and the cached checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from embedding_explorer.demos import training
from embedding_explorer.demos.cnn import FashionCNN, untrained_cnn
from embedding_explorer.demos.fashion_mnist import FashionMNIST

pytestmark = pytest.mark.usefixtures("isolated")


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
    assert training.evaluate(model, TensorDataset(inputs, labels), batch_size=7) == 1.0
    assert training.evaluate(model, TensorDataset(inputs, flipped)) == pytest.approx(0.8)
    assert model.training
    with pytest.raises(ValueError, match="empty"):
        training.evaluate(model, TensorDataset(inputs[:0], labels[:0]))


def test_train_cnn_on_tiny_data(fake_data: Path) -> None:
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    model, accuracy = training.train_cnn(epochs=2, batch_size=16, data_dir=fake_data, progress=False)
    again, accuracy_again = training.train_cnn(epochs=2, batch_size=16, data_dir=fake_data, progress=False)
    assert torch.equal(torch.rand(1), expected_next)
    assert isinstance(model, FashionCNN)
    assert not model.training
    assert 0.0 <= accuracy <= 1.0
    assert accuracy == accuracy_again
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
        assert p.is_contiguous()


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"limit": 0}])
def test_train_cnn_rejects_bad_arguments(fake_data: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        training.train_cnn(data_dir=fake_data, progress=False, **kwargs)


@pytest.mark.slow
def test_short_training_beats_chance(real_data: Path) -> None:
    model, accuracy = training.train_cnn(epochs=1, limit=2000, progress=False)
    assert accuracy > 0.5  # chance is 0.1; measured about 0.69
    assert training.evaluate(model, FashionMNIST(limit=1000)) > 0.5


# ------------------------------------------------------------------------------------------
# load_or_train_cnn
# ------------------------------------------------------------------------------------------


@pytest.fixture
def cheap_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace train_cnn by an instant fake; the list counts its calls."""
    calls: list[int] = []

    def fake_train(**kwargs: object) -> tuple[FashionCNN, float]:
        calls.append(1)
        return untrained_cnn(seed=len(calls)), 0.25 * len(calls)

    monkeypatch.setattr(training, "train_cnn", fake_train)
    return calls


def test_checkpoint_round_trip(tmp_path: Path, cheap_training: list[int]) -> None:
    trained, accuracy = training.load_or_train_cnn(tmp_path / "models", progress=False)
    assert cheap_training == [1]
    path = tmp_path / "models" / "fashion_cnn.pt"
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["version"] == 1
    assert checkpoint["test_accuracy"] == accuracy == 0.25
    loaded, loaded_accuracy = training.load_or_train_cnn(tmp_path / "models", progress=False)
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
    training.load_or_train_cnn(progress=False)
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
    with caplog.at_level(logging.WARNING, logger=training.__name__):
        _, accuracy = training.load_or_train_cnn(tmp_path, progress=False)
    assert cheap_training == [1]
    assert accuracy == 0.25
    assert "retraining" in caplog.text
    assert str(path) in caplog.text
    _, reloaded_accuracy = training.load_or_train_cnn(tmp_path, progress=False)
    assert cheap_training == [1]
    assert reloaded_accuracy == 0.25
