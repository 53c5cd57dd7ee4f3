"""Model outputs recorded as columns, against torch.nn.functional."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import embedding_explorer as ee
from embedding_explorer.exceptions import EmbeddingExplorerError
from embedding_explorer.outputs import class_scores, output_columns


def _data(n: int = 60, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 6, generator=g), torch.randint(0, classes, (n,), generator=g)


def _model(classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, classes))


def test_output_columns_match_torch() -> None:
    logits = torch.randn(10, 5, generator=torch.Generator().manual_seed(1)) * 3
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    cols = output_columns(logits, y)
    p = F.softmax(logits.double(), dim=1)
    assert np.array_equal(cols["predicted"], logits.argmax(1).numpy())
    assert np.allclose(cols["confidence"], p.max(1).values.numpy())
    assert np.allclose(cols["entropy"], torch.distributions.Categorical(probs=p).entropy().numpy())
    expected = F.cross_entropy(logits.double(), torch.as_tensor(y), reduction="none").numpy()
    assert np.allclose(cols["loss"], expected)
    assert np.isnan(output_columns(logits, np.array([0, 9] * 5))["loss"][1::2]).all()


def test_explore_records_outputs(tmp_path: Path) -> None:
    x, y = _data()
    model = _model()
    run = ee.explore(model, (x, y), ["0", "2"], out=tmp_path / "r", progress=False, batch_size=16)
    assert run.output_columns == ["predicted", "confidence", "entropy", "loss", "correct"]
    with torch.no_grad():
        logits = model(x).double()
    meta = run.metadata
    assert np.array_equal(meta["predicted"], logits.argmax(1).numpy())
    assert np.allclose(meta["confidence"], F.softmax(logits, 1).max(1).values.numpy())
    assert np.allclose(meta["loss"], F.cross_entropy(logits, y, reduction="none").numpy())
    assert np.array_equal(meta["correct"], (logits.argmax(1) == y).numpy())
    assert run.input_statistics == []  # not images, not texts


class Squeezed(nn.Module):
    """A head that ends in ``.squeeze()``: a last batch of one sample gives ``(classes,)``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze()


def test_a_squeezed_head_records_the_outputs_of_a_last_batch_of_one(tmp_path: Path) -> None:
    """9 samples in batches of 4: the last batch's ``(4,)`` scores are one sample's, not lost
    (all five output columns were dropped with a warning)."""
    x, y = _data(9)
    model = Squeezed()
    run = ee.explore(model, (x, y), ["body.0"], out=tmp_path / "r", progress=False, batch_size=4)
    with torch.no_grad():
        logits = model.body(x).double()
    assert run.output_columns == ["predicted", "confidence", "entropy", "loss", "correct"]
    assert np.array_equal(run.metadata["predicted"], logits.argmax(1).numpy())
    assert np.allclose(run.metadata["loss"], F.cross_entropy(logits, y, reduction="none").numpy())


def test_a_batch_that_records_no_outputs_is_refused_by_name(tmp_path: Path) -> None:
    """Class scores in some batches and not in others would lose every output column at the
    end: the batch without them is named instead."""
    x, y = _data(12)
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]

    class LosesItsScores(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.seen = _model(), 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen += 1
            scores = self.body(x)
            return scores if self.seen < 3 else scores[:, :1]  # one column: not class scores

    with pytest.raises(EmbeddingExplorerError, match="samples from 8 on record the columns"):
        ee.explore(LosesItsScores(), batches, ["body.0"], out=tmp_path / "r", progress=False)


def test_labels_given_and_a_callable_head(tmp_path: Path) -> None:
    x, y = _data()

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _model()

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.body(x)}

    head = Head()
    run = ee.explore(
        head,
        x,
        ["body.0"],
        out=tmp_path / "r",
        progress=False,
        labels=y.numpy(),
        outputs=lambda out: out["logits"],
    )
    with torch.no_grad():
        logits = head.body(x).double()
    assert np.allclose(run.metadata["loss"], F.cross_entropy(logits, y, reduction="none").numpy())
    auto = ee.explore(head, x, ["body.0"], out=tmp_path / "a", progress=False)
    assert auto.output_columns == []  # a dict is not (B, C) scores: "auto" records nothing


def test_no_labels_no_loss_and_none_records_nothing(tmp_path: Path) -> None:
    x, _ = _data()
    run = ee.explore(_model(), x, ["0"], out=tmp_path / "r", progress=False)
    assert run.output_columns == ["predicted", "confidence", "entropy"]
    off = ee.explore(_model(), x, ["0"], out=tmp_path / "n", progress=False, outputs=None)
    assert off.output_columns == [] and "predicted" not in off.metadata


def test_classification_insists(tmp_path: Path) -> None:
    x, _ = _data()
    with pytest.raises(EmbeddingExplorerError, match=r"outputs='classification'.*\(60, 1\)"):
        ee.explore(
            nn.Sequential(nn.Linear(6, 1)),
            x,
            ["0"],
            out=tmp_path / "r",
            progress=False,
            outputs="classification",
        )
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="outputs='probabilities'"):
        ee.explore(_model(), x, ["0"], out=tmp_path / "r", progress=False, outputs="probabilities")
    assert class_scores(torch.zeros(3, 1), "auto") is None
    assert class_scores(torch.zeros(3, 4), "auto", batch_size=4) is None  # not one row per sample
    with pytest.raises(EmbeddingExplorerError, match=r"one row per sample; the model's output is \(3, 4\)"):
        class_scores(torch.zeros(3, 4), "classification", batch_size=4)
