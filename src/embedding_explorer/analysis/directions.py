"""Custom directions: the axis from one group of samples to another, probed like a component.

A direction is the unit vector from the mean activation of ``group_a`` to that of ``group_b``
(a class against another, or two lasso selections in the UI). Every sample's score along it is
``(activation - layer.mean) @ vector``, so a direction reads like a principal component: its
extremes, quantiles and histograms come from :class:`.probe.ScoreProbe`.

The group means and the scores are computed from the stored activations chunk by chunk (the
groups read only the chunks that hold their samples, in chunk order), so the (N, D) matrix is
never held in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import EmbeddingExplorerError
from ..probe import ScoreProbe

if TYPE_CHECKING:
    from ..run import Layer, Run

GroupLike = Sequence[int] | np.ndarray
ZERO_DIFFERENCE = 1e-10
"""Group means closer than this, relative to the layer's scale, count as identical."""
MAX_LISTED_LABELS = 20


class Direction(ScoreProbe):
    """The direction from the mean activation of ``group_a`` to that of ``group_b``.

    Attributes
    ----------
    layer : Layer
    name : str
        ``"A -> B"`` unless named (label directions: ``"<label a> -> <label b>"``).
    vector : ndarray of shape (D,)
        Unit float64 vector pointing from the mean of ``group_a`` to the mean of ``group_b``.
    scores : ndarray of shape (N, 1)
        float32 ``(activations - layer.mean) @ vector`` of every sample.
    group_a, group_b : ndarray of int64
        The groups' sample ids, sorted and without repeats.
    mean_a, mean_b : ndarray of shape (D,)
        The groups' mean activations (float64).
    separation : float
        The difference of the groups' mean scores over their pooled standard deviation
        (Cohen's d along the direction); NaN when both groups have a single sample, inf when
        neither group has any spread along the direction.
    """

    def __init__(
        self,
        layer: Layer,
        name: str,
        vector: np.ndarray,
        scores: np.ndarray,
        groups: tuple[np.ndarray, np.ndarray],
        means: tuple[np.ndarray, np.ndarray],
    ) -> None:
        self.layer = layer
        self.run: Run = layer.run
        self.name = name
        self.vector = vector
        self._scores = scores
        self.group_a, self.group_b = groups
        self.mean_a, self.mean_b = means
        self.separation = separation(scores[:, 0], self.group_a, self.group_b)

    def __repr__(self) -> str:
        return (
            f"Direction({self.name!r}, layer={self.layer.name!r}, groups=({len(self.group_a)}, "
            f"{len(self.group_b)}), separation={self.separation:.3g})"
        )

    @property
    def scores(self) -> np.ndarray:
        """ndarray of shape (N, 1): every sample's float32 score along the direction."""
        return self._scores

    @property
    def component_names(self) -> list[str]:
        return [self.name]

    def project(self, activations: Any) -> np.ndarray:
        """Scores of any (M, D) activations along this direction (float64, shape (M,))."""
        x = np.asarray(activations, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.layer.dim:
            raise EmbeddingExplorerError(
                f"layer {self.layer.name!r} has {self.layer.dim} features; got activations of shape {x.shape}"
            )
        return (x - self.layer.mean) @ self.vector

    def _subject(self) -> str:
        return f"direction {self.name!r} of layer {self.layer.name!r}"


def direction(layer: Layer, group_a: GroupLike, group_b: GroupLike, *, name: str | None = None) -> Direction:
    """The direction of ``layer`` from the mean of ``group_a`` to the mean of ``group_b``.

    Parameters
    ----------
    layer : Layer
    group_a, group_b : sequence of int
        Sample ids (repeats count once). The groups may overlap but must differ.
    name : str, optional
        Shown in tables and errors; default ``"A -> B"``.

    Raises
    ------
    EmbeddingExplorerError
        An empty group, a sample id out of range, two identical groups, or groups whose mean
        activations coincide (no direction between them).
    """
    n = layer.run.n_samples
    a = sample_ids(group_a, "group_a", n, layer.name)
    b = sample_ids(group_b, "group_b", n, layer.name)
    if np.array_equal(a, b):
        raise EmbeddingExplorerError(
            f"group_a and group_b are the same {len(a)} sample(s) of layer {layer.name!r}: "
            "a direction needs two different groups"
        )
    activations = layer.activations
    sum_a, sum_b = group_sums(activations, (a, b))
    mean_a, mean_b = sum_a / len(a), sum_b / len(b)
    difference = mean_b - mean_a
    length = float(np.linalg.norm(difference))
    scale = max(float(np.linalg.norm(mean_a)), float(np.linalg.norm(mean_b)), np.sqrt(layer.total_variance))
    if not length > ZERO_DIFFERENCE * max(scale, 1e-300):
        raise EmbeddingExplorerError(
            f"group_a and group_b have the same mean activation on layer {layer.name!r} "
            f"(|mean_b - mean_a| = {length:.3g}): there is no direction between them"
        )
    vector = difference / length
    scores = project_chunked(activations, layer.mean, vector)
    return Direction(layer, name if name is not None else "A -> B", vector, scores, (a, b), (mean_a, mean_b))


def label_direction(layer: Layer, label_a: Any, label_b: Any, *, name: str | None = None) -> Direction:
    """The direction from the samples labelled ``label_a`` to those labelled ``label_b``.

    Labels are raw label values or, for runs with label names, names (``"Sandal"``).
    """
    run = layer.run
    value_a, ids_a = label_ids(run, label_a, "label_a")
    value_b, ids_b = label_ids(run, label_b, "label_b")
    if ids_a is ids_b or np.array_equal(ids_a, ids_b):
        raise EmbeddingExplorerError(
            f"label_a={label_a!r} and label_b={label_b!r} are the same label of run {run.name!r}: "
            "a direction needs two different labels"
        )
    if name is None:
        name = f"{run.label_name(value_a)} -> {run.label_name(value_b)}"
    return direction(layer, ids_a, ids_b, name=name)


# ---- groups --------------------------------------------------------------------------------------
def sample_ids(group: Any, argument: str, n_samples: int, layer_name: str) -> np.ndarray:
    """``group`` as sorted unique int64 sample ids, or an error naming the argument."""
    if group is None or isinstance(group, (str, bytes)) or np.ndim(group) != 1:
        raise TypeError(f"{argument} must be a sequence of sample ids, got {group!r:.60}")
    ids = np.asarray(group)
    if ids.size == 0:
        raise EmbeddingExplorerError(
            f"{argument} is empty: a direction of layer {layer_name!r} needs at least one sample per group"
        )
    if ids.dtype == bool:
        raise TypeError(f"{argument} is a boolean mask; pass sample ids instead (np.flatnonzero(mask))")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{argument} must hold integer sample ids, got dtype {ids.dtype}")
    bad = ids[(ids < 0) | (ids >= n_samples)]
    if len(bad):
        raise EmbeddingExplorerError(
            f"{argument} has sample id {int(bad[0])}, out of range (0..{n_samples - 1})"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        )
    return np.unique(ids.astype(np.int64))


def label_ids(run: Run, label: Any, argument: str) -> tuple[Any, np.ndarray]:
    """The raw label value ``label`` stands for, and the ids of its samples (see :func:`matching_labels`)."""
    labels = run.labels
    if labels is None:
        raise EmbeddingExplorerError(
            f"run {run.name!r} has no labels; use layer.direction(group_a, group_b) with sample ids"
        )
    series = pd.Series(labels)
    values = list(pd.unique(series.dropna()))
    found = matching_labels(values, [run.label_name(v) for v in values], label)
    if not found:
        known = [run.label_name(v) for v in values]
        shown = ", ".join(repr(k) for k in known[:MAX_LISTED_LABELS])
        more = f" and {len(known) - MAX_LISTED_LABELS} more" if len(known) > MAX_LISTED_LABELS else ""
        raise EmbeddingExplorerError(
            f"{argument}={label!r} is not a label of run {run.name!r}; its labels: {shown}{more}"
        )
    chosen = [values[i] for i in found]
    return chosen[0], np.flatnonzero(series.isin(chosen).to_numpy(dtype=bool))


def matching_labels(values: Sequence[Any], names: Sequence[str], label: Any) -> list[int]:
    """Positions in ``values`` (distinct raw labels, display ``names`` alike) that ``label`` means.

    Text matches display names first and raw values (as text) only when no name matches, so the
    names ``"1", "2", "3"`` of raw values 0..2 never merge two groups; a number (or bool) matches
    raw values first, then names. The library and the server both resolve labels this way.
    """
    if isinstance(label, str):
        found = [i for i, name in enumerate(names) if name == label]
        return found or [i for i, value in enumerate(values) if str(value) == label]
    found = [i for i, value in enumerate(values) if same_value(value, label)]
    return found or [i for i, name in enumerate(names) if name == str(label)]


def same_value(value: Any, label: Any) -> bool:
    """``value == label`` for raw labels of any type (a string never equals a number)."""
    if isinstance(value, str) != isinstance(label, str):
        return False
    try:
        return bool(value == label)
    except (TypeError, ValueError):
        return False


def separation(scores: np.ndarray, group_a: np.ndarray, group_b: np.ndarray) -> float:
    """(mean_b - mean_a) / pooled standard deviation of two groups' scores (ddof 1 each)."""
    a, b = scores[group_a].astype(np.float64), scores[group_b].astype(np.float64)
    dof = len(a) + len(b) - 2
    if dof == 0:
        return float("nan")
    pooled = (((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()) / dof
    gap = float(b.mean() - a.mean())
    return gap / float(np.sqrt(pooled)) if pooled > 0 else float(np.copysign(np.inf, gap))


# ---- chunked reads -------------------------------------------------------------------------------
def group_sums(activations: Any, groups: Sequence[np.ndarray]) -> list[np.ndarray]:
    """float64 sums of the activation rows of each group (sorted ids), reading only the chunks
    that hold some of their samples, each once, in chunk order."""
    rows = int(activations.chunks[0])
    n, dim = activations.shape
    sums = [np.zeros(dim, dtype=np.float64) for _ in groups]
    chunks = np.unique(np.concatenate([ids // rows for ids in groups]))
    for chunk in chunks.tolist():
        start, stop = chunk * rows, min((chunk + 1) * rows, n)
        block = np.asarray(activations[start:stop])
        for total, ids in zip(sums, groups, strict=True):
            lo, hi = np.searchsorted(ids, [start, stop])
            if hi > lo:
                total += block[ids[lo:hi] - start].sum(axis=0, dtype=np.float64)
    return sums


def project_chunked(activations: Any, mean: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """float32 (N, 1) ``(activations - mean) @ vector``, one chunk of rows at a time (float64)."""
    rows = int(activations.chunks[0])
    n = int(activations.shape[0])
    offset = float(mean @ vector)
    scores = np.empty((n, 1), dtype=np.float32)
    for start in range(0, n, rows):
        block = np.asarray(activations[start : start + rows], dtype=np.float64)
        scores[start : start + len(block), 0] = block @ vector - offset
    return scores
