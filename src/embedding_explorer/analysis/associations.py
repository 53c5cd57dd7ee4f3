"""What each component goes with: labels and metadata columns, per component.

A categorical column is summarised by the correlation ratio eta squared (the share of a
component's score variance that the categories explain) and the mean score per category; a
numeric column by the Pearson correlation.

Which columns are categorical (``kind="auto"``):

- ``"label"``, strings, booleans, pandas categoricals and other non-numeric columns;
- integer columns with at most ``MAX_INTEGER_CATEGORIES`` (50) distinct values.

Float columns and integer columns with more distinct values are numeric. ``kind`` forces either.
Samples with a missing value (NaN, None) in the column are left out.

A categorical column with more than ``MAX_MEAN_COLUMNS`` categories (the ``token`` column of a
per-token run: thousands of distinct tokens) gives eta squared and the categories with the lowest
and highest mean score at each end (among those with at least ``MIN_END_COUNT`` samples), not one
mean column per category.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import EmbeddingExplorerError
from .correlation import correlate

if TYPE_CHECKING:
    from ..run import Layer, Run

Kind = Literal["auto", "categorical", "numeric"]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]

MAX_INTEGER_CATEGORIES = 50
"""Integer columns with at most this many distinct values are categorical under ``kind="auto"``."""
SUMMARY_SD = 0.5
"""Categories whose mean score lies beyond this many standard deviations are named in a summary."""
SUMMARY_MAX = 3
"""At most this many categories named on each side of a summary."""
MAX_MEAN_COLUMNS = 50
"""A categorical column with more categories gives its ends (``low``, ``high``), not every mean."""
MIN_END_COUNT = 5
"""Categories with fewer samples are not named at an end (their means are too noisy)."""
END_SIZE = 5
"""Categories named at each end of a column with many categories."""


def column_values(run: Run, column: str) -> pd.Series:
    """The values of ``column`` ("label" or a metadata column), one per sample, in sample order."""
    if not isinstance(column, str):
        raise TypeError(f"column must be a column name (str), got {column!r}")
    samples = run.samples
    if column == "label":
        if run.labels is None:
            raise EmbeddingExplorerError(
                f"run {run.name!r} has no labels; pass labels=... to explore, or name a metadata "
                f"column ({_available(samples)})"
            )
        return samples["label"].reset_index(drop=True)
    if column not in samples.columns or column == "sample_id":
        raise EmbeddingExplorerError(
            f"run {run.name!r} has no column {column!r}; available: {_available(samples)}"
        )
    return samples[column].reset_index(drop=True)


def _available(samples: pd.DataFrame) -> str:
    names = [str(c) for c in samples.columns if c != "sample_id"]
    return ", ".join(repr(c) for c in names) if names else "none"


def resolve_kind(values: pd.Series, column: str, kind: Kind = "auto") -> Literal["categorical", "numeric"]:
    """``"categorical"`` or ``"numeric"`` for a column, by the rule in the module docstring."""
    if kind == "categorical":
        return "categorical"
    if kind == "numeric":
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise EmbeddingExplorerError(
                f"column {column!r} of dtype {values.dtype} cannot be treated as numeric"
            )
        return "numeric"
    if kind != "auto":
        raise ValueError(f"kind={kind!r} must be 'auto', 'categorical' or 'numeric'")
    if column == "label" or pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "categorical"
    if pd.api.types.is_integer_dtype(values) and values.nunique() <= MAX_INTEGER_CATEGORIES:
        return "categorical"
    return "numeric"


def _categories(run: Run, values: pd.Series, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes per sample (-1 where missing) and the display name of each category."""
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    name = run.label_name if column == "label" else str
    names = [name(u) for u in uniques]
    return np.asarray(codes, dtype=np.int64), names


def _component_names(k: int) -> pd.Index:
    return pd.Index([f"PC{i + 1}" for i in range(k)], name="component")


def association(
    layer: Layer, column: str = "label", *, kind: Kind = "auto", summary_sd: float = SUMMARY_SD
) -> pd.DataFrame:
    """How each component of ``layer`` goes with a label or metadata column.

    Parameters
    ----------
    layer : Layer
    column : str, default="label"
        ``"label"`` or a metadata column given to ``explore``.
    kind : {"auto", "categorical", "numeric"}
        How to treat the column; ``"auto"`` follows the rule in the module docstring.
    summary_sd : float, default=0.5
        Categories whose mean score differs from the overall mean by more than this many
        standard deviations of the component are named in ``summary`` (at most 3 per side).

    Returns
    -------
    DataFrame with one row per component, index ``PC1`` .. ``PCk``
        Categorical: ``eta2`` (between-group / total sum of squares of the scores), then
        ``mean[<category>]`` per category (label names for labels), then ``summary``
        ("high: Coat, Pullover · low: Sandal, Sneaker": the categories whose mean is more than
        ``summary_sd`` above or below the overall mean, the high end first, farthest first).
        Numeric: ``r`` (Pearson), ``n`` (samples used) and ``summary`` ("r = +0.71 with brightness").

    Raises
    ------
    EmbeddingExplorerError
        An unknown column, a column with a single value, a categorical column with a different
        value for every sample (an id: eta squared would be 1 everywhere), a run without labels
        for "label".

    Notes
    -----
    O(N k): group sums by ``np.bincount`` over category codes, in float64. Samples whose value
    is missing are left out of both the groups and the totals.
    """
    run = layer.run
    values = column_values(run, column)
    resolved = resolve_kind(values, column, kind)
    scores = np.asarray(layer.scores, dtype=np.float64)
    if resolved == "numeric":
        return _numeric(scores, values, column)
    codes, names = _categories(run, values, column)
    keep = codes >= 0
    if len(np.unique(codes[keep])) < 2:
        raise EmbeddingExplorerError(
            f"column {column!r} has a single value ({names[0] if names else 'none'}) over the samples; "
            "an association needs at least two categories"
        )
    if len(np.unique(codes[keep])) == int(keep.sum()):
        raise EmbeddingExplorerError(
            f"column {column!r} has a different value for every sample (an id, such as a file "
            "name): each value would explain its own sample, so eta squared would be 1 for every "
            "component; associate a column whose values group samples"
        )
    if not keep.all():
        scores, codes = scores[keep], codes[keep]
    eta2, means, overall, sd = eta_squared(scores, codes, len(names))
    k = scores.shape[1]
    if len(names) > MAX_MEAN_COLUMNS:
        return _many_categories(eta2, means, np.bincount(codes, minlength=len(names)), names)
    columns: dict[str, Any] = {"eta2": eta2}
    columns.update({f"mean[{name}]": means[g] for g, name in enumerate(names)})
    columns["summary"] = [
        _categorical_summary(means[:, c], names, overall[c], sd[c], summary_sd) for c in range(k)
    ]
    table = pd.DataFrame(columns, index=_component_names(k))
    return table


def _many_categories(
    eta2: np.ndarray, means: np.ndarray, counts: np.ndarray, names: list[str]
) -> pd.DataFrame:
    """eta squared and the ``END_SIZE`` categories of lowest and highest mean score per component,
    among categories with at least ``MIN_END_COUNT`` samples (all of them when none has that many).

    With thousands of categories eta squared reads high even for noise (each rare category
    explains its own few samples), so the named ends say more than its value."""
    frequent = counts >= min(MIN_END_COUNT, int(counts.max()))
    candidates = np.flatnonzero(frequent)
    k = means.shape[1]
    low, high, summary = [], [], []
    for c in range(k):
        order = candidates[np.argsort(means[candidates, c], kind="stable")]
        lows = [names[g] for g in order[:END_SIZE]]
        highs = [names[g] for g in order[::-1][:END_SIZE]]
        low.append(", ".join(repr(n) for n in lows))
        high.append(", ".join(repr(n) for n in highs))
        summary.append(
            f"low: {', '.join(repr(n) for n in lows[:SUMMARY_MAX])}; "
            f"high: {', '.join(repr(n) for n in highs[:SUMMARY_MAX])}"
        )
    return pd.DataFrame(
        {"eta2": eta2, "n_categories": len(names), "low": low, "high": high, "summary": summary},
        index=_component_names(k),
    )


def eta_squared(scores: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[FloatArray, ...]:
    """Correlation ratio per column of ``scores`` (N, k) for group ``codes`` (N,) in 0..G-1.

    Returns
    -------
    eta2 : ndarray of shape (k,), NaN for a constant column
    means : ndarray of shape (G, k), NaN for an empty group
    overall : ndarray of shape (k,), the mean of each column
    sd : ndarray of shape (k,), the standard deviation of each column (N denominator)
    """
    n, k = scores.shape
    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    index = (codes[:, None] * k + np.arange(k)).ravel()
    sums = np.bincount(index, weights=scores.ravel(), minlength=n_groups * k).reshape(n_groups, k)
    overall = scores.mean(axis=0)
    means = np.full((n_groups, k), np.nan)
    present = counts > 0
    means[present] = sums[present] / counts[present, None]
    deviation = means[present] - overall
    between = counts[present] @ (deviation * deviation)
    centred = scores - overall
    total = np.einsum("ij,ij->j", centred, centred)
    eta2 = np.full(k, np.nan)
    np.divide(between, total, out=eta2, where=total > 0)
    return np.clip(eta2, 0.0, 1.0), means, overall, np.sqrt(total / n)


def _categorical_summary(
    means: np.ndarray, names: list[str], overall: float, sd: float, threshold: float
) -> str:
    if not sd > 0:
        return "constant component"
    z = (means - overall) / sd
    order = np.argsort(z, kind="stable")
    low = [names[g] for g in order if z[g] < -threshold][:SUMMARY_MAX]
    high = [names[g] for g in order[::-1] if z[g] > threshold][:SUMMARY_MAX]
    # high end first, as the gallery shows it; each end said explicitly
    if low or high:
        none = "no class stands out"
        return f"high: {', '.join(high) or none} · low: {', '.join(low) or none}"
    return f"no category stands out (all means within ±{threshold:g} SD)"


def _numeric(scores: np.ndarray, values: pd.Series, column: str) -> pd.DataFrame:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    keep = np.isfinite(v)
    if not keep.all():
        scores, v = scores[keep], v[keep]
    if len(v) < 2 or np.all(v == v[0]):
        shown = f"{v[0]:g}" if len(v) else "none"
        raise EmbeddingExplorerError(
            f"column {column!r} has a single value ({shown}) over {len(v)} samples; "
            "a correlation needs at least two distinct values"
        )
    r = correlate(scores, v[:, None])[:, 0]
    table = pd.DataFrame(index=_component_names(scores.shape[1]))
    table["r"] = r
    table["n"] = len(v)
    table["summary"] = [f"r = {x:+.2f} with {column}" for x in r]
    return table


def extreme_makeup(
    layer: Layer, component: int, n: int = 10, column: str = "label"
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Which categories make up the ``n`` lowest and ``n`` highest samples of a component.

    Returns
    -------
    low, high : list of (category, count)
        Most common first (ties: the category met first from the extreme); categories are label
        names for labels, ``str(value)`` otherwise, ``"missing"`` for a missing value. E.g.
        ``[("Sandal", 9), ("Sneaker", 1)]``: 9 of the 10 lowest are Sandal.
    """
    run = layer.run
    values = column_values(run, column)
    low_ids, high_ids = layer.extremes(component, n)

    def makeup(ids: np.ndarray) -> list[tuple[str, int]]:
        names = []
        for v in values.iloc[ids]:
            if pd.isna(v):
                names.append("missing")
            else:
                names.append(run.label_name(v) if column == "label" else str(v))
        return Counter(names).most_common()

    return makeup(low_ids), makeup(high_ids)
