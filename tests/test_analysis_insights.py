"""Insights on runs built here, where the truth is planted: a brightness axis, errors at one end
of a component, a shift along a high-variance component, an untrained copy of a model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.analysis.insights import COLUMNS, MIN_R, insights


def _quiet(model: nn.Module | None, data: object, layers: list[str], out: Path, **kw: object) -> ee.Run:
    return ee.explore(model, data, layers, out=out, progress=False, batch_size=64, **kw)


class Bright(nn.Module):
    """A conv layer whose summed output follows the input's mean (its weights are positive)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        with torch.no_grad():
            self.conv.weight.abs_()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def test_a_planted_brightness_axis_is_found(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    level = torch.rand(200, generator=g)  # the planted axis: each image's overall level
    x = (level[:, None, None, None] * 0.7 + 0.3 * torch.rand(200, 1, 16, 16, generator=g)).clamp(0, 1)
    run = _quiet(Bright(), x, ["conv", "fc"], tmp_path / "r")
    table = run.insights()
    assert list(table.columns) == list(COLUMNS)
    found = table[(table.kind == "input_statistic") & (table.layer == "conv")]
    top = found.iloc[0]
    assert top.column == "brightness" and top.component == 0
    # the statistic is the Pearson r of PC1's scores with the recorded brightness
    r = np.corrcoef(run["conv"].scores[:, 0], run.metadata["brightness"])[0, 1]
    assert top.statistic == pytest.approx(r) and abs(r) > 0.9
    assert top.strength == pytest.approx(r * r)
    share = run["conv"].explained_variance_ratio[0]
    assert top.sentence.startswith(f"conv PC1 ({share:.0%} of variance) follows brightness, r = {r:+.2f}")
    assert top.target == {"run": run.name, "tab": "probe", "layer": "conv", "pc": 0, "color": "brightness"}
    assert (table.strength.diff().dropna() <= 0).all()  # strongest first
    assert (table[table.kind == "input_statistic"].statistic.abs() >= MIN_R).all()


def test_no_input_statistic_finding_without_the_statistics(tmp_path: Path) -> None:
    x = torch.rand(100, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    run = _quiet(Bright(), x, ["conv"], tmp_path / "r", input_stats=False)
    assert not (insights(run).kind == "input_statistic").any()


class Planted(nn.Module):
    """Features = the input (x0 the high-variance axis); predicts sign(x1), wrong where x0 is
    in its lowest 5%."""

    def __init__(self, cut: float) -> None:
        super().__init__()
        self.features = nn.Identity()
        self.cut = cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        logit = torch.where(h[:, 0] < self.cut, -h[:, 1], h[:, 1])
        return torch.stack([-logit, logit], dim=1)


def test_planted_errors_concentrate_at_the_low_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)) * np.array([4.0, 1.0, 0.5, 0.5])
    y = (x[:, 1] > 0).astype(np.int64)
    cut = float(np.sort(x[:, 0])[19:21].mean())  # the 20 lowest samples (5%) are predicted wrongly
    run = _quiet(Planted(cut), torch.tensor(x, dtype=torch.float32), ["features"], tmp_path / "r", labels=y)
    assert run.metadata["correct"].sum() == 380
    errors = insights(run)
    errors = errors[errors.kind == "errors"]
    top = errors.iloc[0]
    pc1 = run["features"].scores[:, 0]
    end = "low" if np.sign(pc1[np.argmin(x[:, 0])]) < 0 else "high"  # PC1's sign is sklearn's
    assert (top.layer, top.component) == ("features", 0)
    assert f"at the {end} end of features PC1: 100% of misclassified samples (20 of 20)" in top.sentence
    assert top.statistic == 1.0 and top.strength == 1.0
    classes = insights(run)
    assert classes[classes.kind == "class_emergence"].iloc[0].column == "label"


def test_a_planted_shift_is_ranked_by_variance(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)) * np.array([5.0, 1.0, 0.05])
    moved = x.copy()
    moved[:, 0] += 5.0  # 1 SD along the main axis
    moved[:, 2] += 0.5  # 10 SD along a component with 0.01% of the variance
    model = nn.Sequential(nn.Identity())
    ref = _quiet(model, torch.tensor(x, dtype=torch.float32), ["0"], tmp_path / "a", name="clean")
    other = _quiet(model, torch.tensor(moved, dtype=torch.float32), ["0"], tmp_path / "b", name="moved")
    comparison = ee.compare_datasets(ref, other)
    assert comparison.ranked("0", by="smd").index[0] == "PC3"  # |SMD| picks the tiny component
    assert comparison.ranked("0").index[0] == "PC1"  # the variance-aware default does not
    shift = comparison.shift("0").loc["PC1"]
    assert shift.w1_total_sd == pytest.approx(shift.wasserstein / np.sqrt(ref["0"].total_variance))
    found = insights(ref, compare=[other])
    found = found[found.kind == "dataset_shift"].iloc[0]
    assert found.component == 0 and found.other == "moved"
    assert found.sentence.startswith("moved moves 0 PC1 (")
    assert f"by {shift.smd:+.1f} SD (KS {shift.ks:.2f})" in found.sentence
    assert found.target == {
        "run": "clean",
        "tab": "datasets",
        "dsa": "clean",
        "dsb": "moved",
        "dsl": "0",
        "dspc": 0,
    }


def test_untrained_vs_trained_cka_falls(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    untrained = copy.deepcopy(trained)
    with torch.no_grad():  # the same first layer; the rest replaced by fresh weights that
        for i in (2, 4):  # keep only the input's weakest directions
            untrained[i].weight.normal_()
        untrained[2].weight[:, :15] = 0
    x = torch.randn(300, 8) * torch.linspace(3, 0.2, 8)
    layers = ["0", "2", "4"]
    a = _quiet(trained, x, layers, tmp_path / "a", name="trained")
    b = _quiet(untrained, x, layers, tmp_path / "b", name="untrained")
    cka = ee.compare_models(a, b).cka
    values = [cka.loc[n, n] for n in layers]
    assert values[0] == pytest.approx(1.0) and max(values[1:]) < 0.5
    found = insights(a, compare=b)
    found = found[found.kind == "model_comparison"].iloc[0]
    assert found.sentence.startswith("trained vs untrained: CKA falls below 0.5 from 2 on (1.00 -> ")
    assert found.strength == pytest.approx(1 - min(values))
    assert found.target["tab"] == "compare" and found.target["ca"] == "2"


def test_an_unrelated_run_is_refused(tmp_path: Path) -> None:
    a = _quiet(nn.Sequential(nn.Identity()), torch.randn(50, 3), ["0"], tmp_path / "a", name="a")
    b = _quiet(nn.Sequential(nn.Linear(3, 3)), torch.randn(60, 3), ["0"], tmp_path / "b", name="b")
    with pytest.raises(ee.EmbeddingExplorerError, match="run 'b' is neither the same model"):
        insights(a, compare=[b])
