"""Findings, ranked: what a run's statistics say without anyone hunting for it.

:func:`insights` reads a finished run (and the runs compared with it) and returns one row per
finding, strongest first, each a sentence with its figures, a strength in [0, 1] and a link
(``target``: URL query parameters of the UI view that shows it). Five kinds, each with the
statistic it rests on and its documented threshold; a sentence never claims more than that
statistic says (a correlation is "follows", not "causes").

``input_statistic``
    A learned layer's top component (one of the first ``MAX_COMPONENTS`` holding at least
    ``MIN_SHARE`` = 5% of the layer's variance) follows a low-level input statistic
    (:mod:`~embedding_explorer.inputstats`) with Pearson ``|r| >= MIN_R`` = 0.5 and the two-sided
    t-test of ``r`` (:func:`scipy.stats.pearsonr`'s p-value) ``p < ALPHA`` = 0.01 after Bonferroni
    correction over every (component, statistic) pair tested. One finding per component, its
    strongest statistic. Strength: ``r^2``, the share of the component's variance the statistic
    explains linearly. The sentence calls PC1 "the layer's main axis is a low-level input
    feature" only where ``r^2 >= STRONG_R2`` = 0.8. ``"input"`` layers (the data itself) are
    skipped.
``class_emergence``
    With labels that group samples (labels with more classes than half the labelled samples,
    such as file names or a continuous target, are skipped): per layer, ``eta2`` of the
    component (among the first ``MAX_COMPONENTS``) that the classes explain best, and the
    one-way ANOVA F-test of it (``p < ALPHA`` after Bonferroni correction over every component
    of every layer tested). Reported only when the largest eta2 passes that test. Classes
    "separate from L on" when every layer from ``L`` on has ``eta2 >= MIN_ETA2`` = 0.5 and passes
    it; otherwise the best layer is named. Strength: the largest eta2.
``errors``
    With the recorded ``correct`` column and at least ``MIN_ERRORS`` = 10 misclassified samples:
    the share of misclassified samples among the lowest and the highest ``TAIL`` = 5% of each
    component's scores. Reported when that share is at least ``ERROR_RATIO`` = 3 times the 5%
    expected by chance and the one-sided binomial test (errors in the tail against the overall
    error rate) has ``p < 0.01`` after Bonferroni correction over every tail tested. Strength:
    ``(share - TAIL) / (1 - TAIL)``.
``dataset_shift``
    For a run of the same model over other data: per layer, the reference component with the
    largest variance-aware shift, the Wasserstein-1 distance between the two score distributions
    over the reference layer's total standard deviation (``w1_total_sd``, see
    :meth:`~embedding_explorer.analysis.datasets.DatasetComparison.shift`). Reported when
    ``w1_total_sd >= MIN_SHIFT`` = 0.1 and the two-sample KS test of that component has
    ``p < ALPHA`` = 0.01 after Bonferroni correction over every component of every layer
    compared. Only layers both runs hold as the same layer (module, reduction, width) are
    compared. Strength: the component's KS statistic.
``model_comparison``
    For a run of another model over the same samples: linear CKA between same-named layers, in
    layer order. "Falls below 0.5 from L on" when every layer from ``L`` on has
    ``CKA < MAX_CKA`` = 0.5. Strength: ``1 - `` the lowest CKA.

A run is never compared with itself (refused, naming it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..capture import INPUT_LAYER
from ..exceptions import EmbeddingExplorerError
from .associations import eta_squared
from .cka import cka
from .correlation import check_same_samples, correlate
from .datasets import check_same_model, compare_datasets

if TYPE_CHECKING:
    from ..run import Layer, Run

MAX_COMPONENTS = 5
MIN_SHARE = 0.05
MIN_R = 0.5
STRONG_R2 = 0.8
MIN_ETA2 = 0.5
MAX_CLASS_SHARE = 0.5  # labels with more classes than this share of the samples are skipped
MIN_ERRORS = 10
TAIL = 0.05
ERROR_RATIO = 3.0
ALPHA = 0.01  # every significance gate, after Bonferroni correction
ERROR_ALPHA = ALPHA
MIN_SHIFT = 0.1
MAX_CKA = 0.5
COLUMNS = (
    "kind",
    "layer",
    "component",
    "column",
    "strength",
    "sentence",
    "run",
    "other",
    "statistic",
    "target",
)


def insights(run: Run, *, compare: Sequence[Run] | Run = ()) -> pd.DataFrame:
    """The findings of ``run`` (and of ``run`` against each run in ``compare``), strongest first.

    Parameters
    ----------
    run : Run
    compare : Run or sequence of Run
        Runs of the same model over other data (data-set shifts) or of other models over the
        same samples (model comparison); a run that is neither, or ``run`` itself, is refused,
        naming it. Layers that cannot be compared (missing from one run, or another width) are
        left out; a run with none gives no comparison finding.

    Returns
    -------
    DataFrame with columns
        ``kind``, ``layer``, ``component`` (0-based index, nullable ``Int64``: missing for a
        whole-layer finding), ``column`` (the metadata
        column involved, or None), ``strength`` (0..1), ``sentence``, ``run``, ``other`` (the
        compared run's name, or None), ``statistic`` (the figure the threshold is on) and
        ``target`` (a dict of the UI's URL query parameters of the view that shows it).
    """
    return findings(run, compare=compare).drop(columns="compare_index")


def findings(run: Run, *, compare: Sequence[Run] | Run = ()) -> pd.DataFrame:
    """:func:`insights` with one more column, ``compare_index`` (nullable ``Int64``): the
    position in ``compare`` of the run a comparison finding is against, missing for the run's
    own findings. It tells which run ``other`` (and the target's ``dsb`` / ``rb``) is where
    two compared runs share a name (the server maps it to the served run)."""
    others = [compare] if not isinstance(compare, Sequence) else list(compare)
    rows: list[dict[str, Any]] = []
    learned = [layer for layer in run if layer.info.get("module") != INPUT_LAYER]
    rows += input_statistic_findings(run, learned)
    rows += class_findings(run, list(run))
    rows += error_findings(run, list(run))
    for position, other in enumerate(others):
        rows += [{**row, "compare_index": position} for row in comparison_findings(run, other)]
    table = pd.DataFrame(rows, columns=[*COLUMNS, "compare_index"])
    for name in ("layer", "column", "other"):  # None stays None (pandas would make it NaN)
        values = table[name].astype(object)
        table[name] = pd.Series(
            [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values],
            index=table.index,
            dtype=object,
        )
    table["component"] = table["component"].astype("Int64")
    table["compare_index"] = table["compare_index"].astype("Int64")
    table = table.sort_values("strength", ascending=False, kind="stable").reset_index(drop=True)
    return table


def _top(layer: Layer) -> int:
    return min(MAX_COMPONENTS, layer.n_components)


def _pc(c: int) -> str:
    return f"PC{c + 1}"


def _row(
    kind: str,
    run: Run,
    layer: str | None,
    component: int | None,
    column: str | None,
    strength: float,
    sentence: str,
    statistic: float,
    target: dict[str, Any],
    other: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "layer": layer,
        "component": component,
        "column": column,
        "strength": float(min(1.0, max(0.0, strength))),
        "sentence": sentence,
        "run": run.name,
        "other": other,
        "statistic": float(statistic),
        "target": {"run": run.name, **target},
    }


def r_pvalue(r: float, n: int) -> float:
    """The two-sided p-value of Pearson ``r`` over ``n`` samples (the t-test with ``n - 2``
    degrees of freedom, as :func:`scipy.stats.pearsonr`)."""
    if n < 3:
        return 1.0
    if abs(r) >= 1.0:
        return 0.0
    t = abs(r) * math.sqrt((n - 2) / (1.0 - r * r))
    return float(2.0 * stats.t.sf(t, n - 2))


def input_statistic_findings(run: Run, layers: Iterable[Layer]) -> list[dict[str, Any]]:
    """``input_statistic`` findings (see the module docstring)."""
    columns = [c for c in run.input_statistics if run.metadata[c].nunique() > 1]
    if not columns:
        return []
    values = run.metadata[columns].to_numpy(dtype=np.float64)
    n = len(values)
    found = []
    tests = 0
    for layer in layers:
        k = _top(layer)
        shares = layer.explained_variance_ratio[:k]
        r = correlate(np.asarray(layer.scores[:, :k], dtype=np.float64), values)  # (k, columns)
        for c in range(k):
            if shares[c] < MIN_SHARE:
                continue
            tests += len(columns)  # every statistic is tested against this component
            if not np.isfinite(r[c]).any():
                continue
            best = int(np.nanargmax(np.abs(r[c])))
            rc = float(r[c, best])
            if abs(rc) >= MIN_R:
                found.append((layer.name, c, float(shares[c]), columns[best], rc, r_pvalue(rc, n)))
    rows = []
    for name, c, share, column, rc, p in found:
        if p * tests >= ALPHA:
            continue
        what = (
            "the layer's main axis is a low-level input feature"
            if c == 0 and rc * rc >= STRONG_R2
            else f"{rc * rc:.0%} of this component's variance goes linearly with a low-level input feature"
        )
        sentence = f"{name} {_pc(c)} ({share:.0%} of variance) follows {column}, r = {rc:+.2f}: {what}"
        target = {"tab": "probe", "layer": name, "pc": c, "color": column}
        rows.append(_row("input_statistic", run, name, c, column, rc * rc, sentence, rc, target))
    return rows


def best_eta2(layer: Layer, codes: np.ndarray, n_groups: int) -> tuple[int, float]:
    """The component (among the first ``MAX_COMPONENTS``) the groups explain best, and its eta2."""
    scores = np.asarray(layer.scores[:, : _top(layer)], dtype=np.float64)
    keep = codes >= 0
    eta2 = np.nan_to_num(eta_squared(scores[keep], codes[keep], n_groups)[0], nan=0.0)
    best = int(np.argmax(eta2))
    return best, float(eta2[best])


def eta2_pvalue(eta2: float, n: int, n_groups: int) -> float:
    """The p-value of the one-way ANOVA F-test behind ``eta2`` (``n`` samples in ``n_groups``
    non-empty groups): ``F = (eta2 / (G - 1)) / ((1 - eta2) / (N - G))``, as
    :func:`scipy.stats.f_oneway`."""
    if n_groups < 2 or n <= n_groups:
        return 1.0
    if eta2 >= 1.0:
        return 0.0
    f = (eta2 / (n_groups - 1)) / ((1.0 - eta2) / (n - n_groups))
    return float(stats.f.sf(f, n_groups - 1, n - n_groups))


def class_findings(run: Run, layers: Sequence[Layer]) -> list[dict[str, Any]]:
    """``class_emergence``: where the classes separate along one component, layer by layer."""
    labels = run.labels
    if labels is None or not layers:
        return []
    codes, uniques = pd.factorize(pd.Series(labels))
    codes = np.asarray(codes)
    n = int((codes >= 0).sum())
    groups = len(np.unique(codes[codes >= 0]))
    # an id (a different label for every sample) or nearly so: each class explains its own few
    # samples, and eta2 reads high for noise (association() refuses the same)
    if groups < 2 or groups > MAX_CLASS_SHARE * n:
        return []
    best = [best_eta2(layer, codes, len(uniques)) for layer in layers]
    eta = [e for _, e in best]
    tests = sum(_top(layer) for layer in layers)
    significant = [eta2_pvalue(e, n, groups) * tests < ALPHA for e in eta]
    names = [layer.name for layer in layers]
    peak = int(np.argmax(eta))
    if not significant[peak]:
        return []
    trail = " -> ".join(f"{e:.2f}" for e in eta)
    start = next(
        (
            i
            for i in range(len(eta))
            if all(e >= MIN_ETA2 and ok for e, ok in zip(eta[i:], significant[i:], strict=True))
        ),
        None,
    )
    if start is not None:
        sentence = (
            f"classes separate from {names[start]} on: eta2 of the best component {trail} ({names[-1]})"
        )
        at = start
    elif eta[peak] >= MIN_ETA2:
        sentence = (
            f"classes separate best at {names[peak]} ({_pc(best[peak][0])}, eta2 {eta[peak]:.2f}) but less "
            f"after it: eta2 of the best component {trail} ({names[-1]})"
        )
        at = peak
    else:
        sentence = (
            f"no single top component separates the classes: the best eta2 is {eta[peak]:.2f} "
            f"({names[peak]} {_pc(best[peak][0])}), below {MIN_ETA2}; eta2 per layer {trail}"
        )
        at = peak
    target = {"tab": "probe", "layer": names[at], "pc": best[at][0], "color": "label"}
    return [
        _row("class_emergence", run, names[at], best[at][0], "label", eta[peak], sentence, eta[at], target)
    ]


def error_findings(run: Run, layers: Sequence[Layer]) -> list[dict[str, Any]]:
    """``errors``: misclassified samples crowding one end of a component."""
    if "correct" not in run.output_columns:
        return []
    wrong = ~run.metadata["correct"].to_numpy(dtype=bool)
    n, n_wrong = len(wrong), int(wrong.sum())
    if n_wrong < MIN_ERRORS or n_wrong == n:
        return []
    tail = max(1, round(TAIL * n))
    rate = n_wrong / n
    tests = sum(2 * _top(layer) for layer in layers)
    found = []
    for layer in layers:
        scores = np.asarray(layer.scores[:, : _top(layer)], dtype=np.float64)
        order = np.argsort(scores, axis=0, kind="stable")
        for c in range(scores.shape[1]):
            for end, ids in (("low", order[:tail, c]), ("high", order[::-1][:tail, c])):
                hits = int(wrong[ids].sum())
                share = hits / n_wrong
                if share < ERROR_RATIO * TAIL:
                    continue
                p = stats.binomtest(hits, tail, rate, alternative="greater").pvalue
                if p * tests >= ERROR_ALPHA:
                    continue
                found.append((share, layer.name, c, end, hits, float(p)))
    rows = []
    for share, name, c, end, hits, p in found:
        sentence = (
            f"errors concentrate at the {end} end of {name} {_pc(c)}: {share:.0%} of misclassified samples "
            f"({hits} of {n_wrong}) in its {'lowest' if end == 'low' else 'highest'} {TAIL:.0%} "
            f"(chance: {TAIL:.0%}; binomial p = {min(1.0, p * tests):.1g} corrected)"
        )
        target = {
            "tab": "probe",
            "layer": name,
            "pc": c,
            "q": 0.0 if end == "low" else 1.0,
            "color": "correct",
        }
        rows.append(
            _row("errors", run, name, c, "correct", (share - TAIL) / (1 - TAIL), sentence, share, target)
        )
    return rows


def comparable(run: Run, other: Run) -> bool:
    """Whether ``other`` can be compared with ``run``: another run (not the same one), of the
    same model over other data sharing a layer that can be compared (:func:`shift_layers`), or
    of another model over the same samples sharing a layer name."""
    if run.url == other.url:
        return False
    try:
        check_same_model(run, other)
    except EmbeddingExplorerError:
        pass
    else:
        return bool(shift_layers(run, other))
    try:
        check_same_samples(run, other)
    except EmbeddingExplorerError:
        return False
    return any(name in other.layers for name in run.layers)


def comparison_findings(run: Run, other: Run) -> list[dict[str, Any]]:
    """Data-set shifts (same model, other data) or model comparison (same samples, other model)."""
    if run is other or run.url == other.url:
        raise EmbeddingExplorerError(
            f"run {other.name!r} is the run whose findings these are: a run is not compared with "
            "itself (compare it with another run of the same model or over the same samples)"
        )
    try:
        check_same_model(run, other)
        model_error = None
    except EmbeddingExplorerError as error:
        model_error = error
    if model_error is None:
        return shift_findings(run, other)
    try:
        check_same_samples(run, other)
    except EmbeddingExplorerError as error:
        raise EmbeddingExplorerError(
            f"run {other.name!r} is neither the same model over other data nor another model over the "
            f"same samples as {run.name!r}: {model_error}; {error}"
        ) from error
    return cka_findings(run, other)


def shift_layers(run: Run, other: Run) -> list[str]:
    """The layers of ``run`` that ``other`` holds as the same layer (module, call, reduction
    and width agree): the ones a data-set comparison can read, in ``run``'s order."""
    names = []
    for name in (n for n in run.layers if n in other.layers):
        try:
            compare_datasets(run, other, layers=[name])  # checks the layer's identity, reads nothing
        except EmbeddingExplorerError:
            continue
        names.append(name)
    return names


def shift_findings(run: Run, other: Run) -> list[dict[str, Any]]:
    """``dataset_shift``: per layer that can be compared, the largest variance-aware shift
    (``w1_total_sd``), when it is at least ``MIN_SHIFT`` and its KS test passes ``ALPHA`` after
    Bonferroni correction over every component of every compared layer."""
    layers = shift_layers(run, other)
    if not layers:
        return []
    comparison = compare_datasets(run, other, layers=layers)
    tests = sum(run.layer(layer).n_components for layer in layers)
    rows = []
    for layer in comparison.layers:
        table = comparison.ranked(layer, by="w1_total_sd")
        if table.empty:
            continue
        top = table.iloc[0]
        c = int(str(table.index[0])[2:]) - 1
        if not top["w1_total_sd"] >= MIN_SHIFT:
            continue
        if not top["ks_pvalue"] * tests < ALPHA:
            continue
        share = float(run.layer(layer).explained_variance_ratio[c])
        smd = top["smd"]
        moved = f"by {smd:+.1f} SD" if math.isfinite(smd) else "its spread"
        sentence = (
            f"{other.name} moves {layer} {_pc(c)} ({share:.0%} of variance) {moved} (KS {top['ks']:.2f}), "
            f"the largest shift weighted by variance: W1 = {top['w1_total_sd']:.2f} of the layer's total SD"
        )
        target = {"tab": "datasets", "dsa": run.name, "dsb": other.name, "dsl": layer, "dspc": c}
        rows.append(
            _row(
                "dataset_shift",
                run,
                layer,
                c,
                None,
                float(top["ks"]),
                sentence,
                float(top["w1_total_sd"]),
                target,
                other=other.name,
            )
        )
    return rows


def cka_findings(run: Run, other: Run) -> list[dict[str, Any]]:
    """``model_comparison``: where linear CKA between same-named layers falls below 0.5.

    Only the same-named pairs are computed (one streamed pass each); a pair too wide for CKA
    (:data:`~.cka.MAX_FEATURES`) is left out of the sequence."""
    shared, values = [], []
    for name in (n for n in run.layers if n in other.layers):
        try:
            value = cka(run.layer(name), other.layer(name))
        except EmbeddingExplorerError:  # too wide: the layers before and after still tell
            continue
        if math.isfinite(value):
            shared.append(name)
            values.append(value)
    if not shared:
        return []
    trail = " -> ".join(f"{v:.2f}" for v in values)
    start = next((i for i in range(len(values)) if all(v < MAX_CKA for v in values[i:])), None)
    low = int(np.nanargmin(values))
    if start is not None:
        sentence = f"{run.name} vs {other.name}: CKA falls below {MAX_CKA} from {shared[start]} on ({trail})"
        at = start
    else:
        sentence = (
            f"{run.name} vs {other.name}: CKA stays at or above {MAX_CKA} where it ends "
            f"(lowest {values[low]:.2f} at {shared[low]}; {trail})"
        )
        at = low
    target = {"tab": "compare", "ra": run.name, "rb": other.name, "ca": shared[at], "cb": shared[at]}
    return [
        _row(
            "model_comparison",
            run,
            shared[at],
            None,
            None,
            1 - values[low],
            sentence,
            values[at],
            target,
            other=other.name,
        )
    ]
