"""Insights on runs built here, where the truth is planted: a brightness axis, errors at one end
of a component, a shift along a high-variance component, an untrained copy of a model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import embedding_explorer as ee
from embedding_explorer.analysis.insights import (
    ALPHA,
    COLUMNS,
    MIN_R,
    MIN_SHIFT,
    comparable,
    eta2_pvalue,
    insights,
    r_pvalue,
)


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


# ---- what a finding may not claim: chance, ids, a comparison that cannot be made ----------------


def test_a_missing_column_or_other_is_none_not_nan(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 6)
    labels = (x[:, 0] > 0).long().numpy()
    a = _quiet(nn.Sequential(nn.Linear(6, 8), nn.ReLU()), x, ["0"], tmp_path / "a", name="a", labels=labels)
    b = _quiet(nn.Sequential(nn.Linear(6, 8), nn.Tanh()), x, ["0"], tmp_path / "b", name="b", labels=labels)
    table = insights(a, compare=b)
    cka = table[table.kind == "model_comparison"].iloc[0]
    classes = table[table.kind == "class_emergence"].iloc[0]
    assert cka.column is None and cka.other == "b"
    assert classes.other is None and classes.column == "label"


def test_only_a_significant_shift_is_reported(tmp_path: Path) -> None:
    """Two draws from one distribution: the top component moves by W1 >= MIN_SHIFT of the
    layer's SD by chance, and its KS test (scipy) says so."""
    rng = np.random.default_rng(2)
    scale = np.array([3.0, 1.0, 1.0, 1.0])
    model = nn.Sequential(nn.Identity())
    draws = [torch.tensor(rng.normal(size=(60, 4)) * scale, dtype=torch.float32) for _ in range(2)]
    a = _quiet(model, draws[0], ["0"], tmp_path / "a", name="a")
    b = _quiet(model, draws[1], ["0"], tmp_path / "b", name="b")
    top = ee.compare_datasets(a, b).ranked("0").iloc[0]
    c = int(str(top.name)[2:]) - 1
    assert top.w1_total_sd >= MIN_SHIFT  # the old gate alone reported it
    projected = (draws[1].numpy().astype(np.float64) - a["0"].mean) @ a["0"].components.T
    p = stats.ks_2samp(a["0"].scores[:, c], projected[:, c]).pvalue
    assert top.ks_pvalue == pytest.approx(p)
    assert p * a["0"].n_components >= ALPHA  # not significant after Bonferroni over 4 components
    assert not (insights(a, compare=b).kind == "dataset_shift").any()


def test_no_comparable_layer_is_no_finding_and_not_comparable(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(100, 6)
    early = _quiet(model, x, ["0"], tmp_path / "e", name="early")
    late = _quiet(model, x + 1, ["2"], tmp_path / "l", name="late")  # same model, no shared layer
    # model-free runs over data of another width: the same layer name, another width
    narrow = _quiet(None, x, ["input"], tmp_path / "n", name="narrow")
    wide = _quiet(None, torch.randn(100, 9), ["input"], tmp_path / "w", name="wide")
    for run, other in ((early, late), (narrow, wide)):
        assert not comparable(run, other)
        found = insights(run, compare=other)
        assert found.drop(columns="target").equals(insights(run).drop(columns="target"))
        assert found.other.isna().all()


def test_a_run_is_not_compared_with_itself(tmp_path: Path) -> None:
    run = _quiet(nn.Sequential(nn.Identity()), torch.randn(50, 3), ["0"], tmp_path / "a", name="a")
    assert not comparable(run, run)
    with pytest.raises(ee.EmbeddingExplorerError, match="run 'a' is the run whose findings these are"):
        insights(run, compare=run)
    with pytest.raises(ee.EmbeddingExplorerError, match="itself"):
        insights(run, compare=[ee.open_run(run.path)])  # the same run opened again


def test_labels_that_do_not_group_samples_say_nothing(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(300, 10))
    ids = [f"img_{i:04d}.png" for i in range(300)]  # an id: eta2 = 1 on every component
    run = ee.from_arrays({"emb": x}, labels=ids, out=tmp_path / "id", progress=False, n_components=5)
    assert not (insights(run).kind == "class_emergence").any()
    target = np.round(np.random.default_rng(1).normal(size=300), 2)  # a regression target
    assert len(np.unique(target)) > 150  # more classes than half the samples: near-unique
    cont = ee.from_arrays({"emb": x}, labels=target, out=tmp_path / "c", progress=False, n_components=5)
    assert not (insights(cont).kind == "class_emergence").any()


def test_class_emergence_needs_a_significant_f_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6))
    chance = rng.integers(0, 3, 90)  # labels unrelated to the data
    planted = (x[:, 0] > 0).astype(np.int64)
    x[:, 0] *= 3  # PC1 is the labelled axis
    for labels, found in ((chance, False), (planted, True)):
        run = ee.from_arrays(
            {"emb": x}, labels=labels, out=tmp_path / str(found), progress=False, n_components=5
        )
        scores = run["emb"].scores.astype(np.float64)
        p = [stats.f_oneway(*(scores[labels == g, c] for g in np.unique(labels))).pvalue for c in range(5)]
        eta2 = run["emb"].association("label", kind="categorical")["eta2"].to_numpy()
        best = int(np.argmax(eta2))
        assert eta2_pvalue(float(eta2[best]), 90, len(np.unique(labels))) == pytest.approx(p[best])
        table = insights(run)
        classes = table[table.kind == "class_emergence"]
        assert (min(p) * 5 < ALPHA) == found  # Bonferroni over 1 layer x 5 components
        assert (not classes.empty) == found
        if found:
            assert (
                classes.iloc[0].statistic == pytest.approx(eta2[best]) and classes.iloc[0].component == best
            )


class Standardised(nn.Module):
    """Each image standardised first: the layers cannot follow brightness or contrast."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(144, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        return self.head(self.fc((f - f.mean(1, keepdim=True)) / f.std(1, keepdim=True)))


def test_an_input_statistic_needs_a_significant_r(tmp_path: Path) -> None:
    torch.manual_seed(1)
    x = torch.tensor(np.random.default_rng(1).random((15, 1, 12, 12)), dtype=torch.float32)
    run = _quiet(Standardised(), x, ["fc", "head"], tmp_path / "r", n_components=5)
    stats_columns = [c for c in run.input_statistics if run.metadata[c].nunique() > 1]
    tested, strongest = 0, []
    for name in ("fc", "head"):
        layer = run[name]
        for c in range(min(5, layer.n_components)):
            if layer.explained_variance_ratio[c] < 0.05:
                continue
            tested += len(stats_columns)
            for column in stats_columns:
                r, p = stats.pearsonr(layer.scores[:, c], run.metadata[column])
                assert r_pvalue(float(r), 15) == pytest.approx(p, rel=1e-6)
                strongest.append((abs(r), p))
    assert max(strongest)[0] >= MIN_R  # the |r| gate alone reported a finding
    assert min(p for _, p in strongest) * tested >= ALPHA  # none survives Bonferroni
    assert not (insights(run).kind == "input_statistic").any()


class Mixed(nn.Module):
    """PC1 = the image's mean plus one pixel: it follows brightness with r ~ 0.7, not more."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        return self.features(torch.stack([f.mean(1) + 0.06 * (f[:, 0] - 0.5), 0.01 * f[:, 17]], dim=1))


def test_pc1_is_called_the_main_axis_only_when_r2_is_high(tmp_path: Path) -> None:
    x = torch.rand(300, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    run = _quiet(Mixed(), x, ["features"], tmp_path / "r")
    r, p = stats.pearsonr(run["features"].scores[:, 0], run.metadata["brightness"])
    assert abs(r) >= 0.5 and r * r < 0.8 and p < 1e-10
    top = insights(run)
    top = top[top.kind == "input_statistic"].iloc[0]
    assert (top.component, top.column) == (0, "brightness") and top.statistic == pytest.approx(r)
    assert top.sentence.endswith(
        f"r = {r:+.2f}: {r * r:.0%} of this component's variance goes linearly with a low-level input feature"
    )
    assert "main axis" not in top.sentence
