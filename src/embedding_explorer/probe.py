"""Probing per-sample scores along an axis: extremes, quantiles, percentiles, histograms.

:class:`ScoreProbe` gives any object with ``scores`` (N, k) and a ``run`` the same probing a
layer's principal components have, so a custom direction (:mod:`.analysis.directions`) or an
ICA decomposition (:mod:`.analysis.ica`) is read exactly like a component: the same tie rules,
the same caches, the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .checks import positive_int, quantile
from .exceptions import EmbeddingExplorerError

if TYPE_CHECKING:
    from .filters import FilterLike
    from .run import Run

EXTREMES_CACHED = 64  # extremes kept per component, so repeated gallery requests are slices


@dataclass(frozen=True)
class Histogram:
    """Counts of a component's scores in quantile-based bins.

    ``edges`` has ``len(counts) + 1`` entries. ``by_label`` maps each label to its counts per
    bin (None when not split by label).
    """

    edges: np.ndarray
    counts: np.ndarray
    by_label: dict[Any, np.ndarray] | None = None


class ScoreProbe:
    """Probing along the columns ("components") of ``scores`` (N, k) of the samples of ``run``.

    Subclasses provide ``scores``, ``run`` and :meth:`_subject` (how errors name them, e.g.
    ``"layer 'fc'"``); ``n_components`` defaults to the number of score columns. Sorted scores
    and extremes are computed once per component and cached on the object.
    """

    run: Run

    @property
    def scores(self) -> np.ndarray:
        """ndarray of shape (N, k): one score per sample and component."""
        raise NotImplementedError

    @property
    def n_components(self) -> int:
        return int(self.scores.shape[1])

    @property
    def component_names(self) -> list[str]:
        """How components are called in tables and reports: ``PC1`` .. ``PCk`` by default."""
        return [f"PC{i + 1}" for i in range(self.n_components)]

    def _subject(self) -> str:
        """What errors call this object, e.g. ``"layer 'fc'"``."""
        raise NotImplementedError

    def _component(self, component: int) -> np.ndarray:
        if isinstance(component, bool) or not isinstance(component, (int, np.integer)):
            raise TypeError(f"component must be an int, got {component!r}")
        if not 0 <= component < self.n_components:
            raise IndexError(
                f"component={component} is out of range for {self._subject()}, "
                f"which has {self.n_components} components (0..{self.n_components - 1})"
            )
        return self.scores[:, component]

    @cached_property
    def _extremes_cache(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {}

    @cached_property
    def _sorted_cache(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {}

    def sorted_scores(self, component: int) -> tuple[np.ndarray, np.ndarray]:
        """``(order, sorted_scores)``: sample ids by ascending score (ties by lower id) and their
        float64 scores. Sorted once per component, then cached for every later probe."""
        scores = self._component(component)
        if component not in self._sorted_cache:
            order = np.argsort(scores, kind="stable")
            self._sorted_cache[component] = (order, scores[order].astype(np.float64))
        return self._sorted_cache[component]

    def _kept(self, filter: FilterLike | str) -> np.ndarray | None:
        """The ids (ascending) that pass ``filter``, or None for no filter."""
        if filter is None:
            return None
        mask = self.run.mask(filter)
        return None if mask.all() else np.flatnonzero(mask)

    def extremes(
        self, component: int, n: int = 8, *, filter: FilterLike | str = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` lowest sample ids (ascending score) and ``n`` highest (descending), among
        the samples that pass ``filter`` (:class:`~embedding_explorer.Filter`; default all).

        Ties break by lower sample id at both ends. O(N) by partial selection (no full sort) on
        the first call per component, then cached (unfiltered).
        """
        n = positive_int(n, "n")
        scores = self._component(component)
        kept = self._kept(filter)
        if kept is not None:
            values = scores[kept].astype(np.float64)
            return kept[smallest(values, n)], kept[smallest(-values, n)]
        cached = self._extremes_cache.get(component)
        if cached is None or len(cached[0]) < min(n, len(scores)):
            # a few more than asked, so the next request (e.g. a larger n in the UI) is a slice
            m = max(n, EXTREMES_CACHED)
            values = scores.astype(np.float64)
            cached = self._extremes_cache[component] = (smallest(values, m), smallest(-values, m))
        return cached[0][:n].copy(), cached[1][:n].copy()

    def quantile(self, component: int, q: float, *, filter: FilterLike | str = None) -> float:
        """The ``q``-quantile of the scores on ``component`` (numpy's linear rule), among the
        samples that pass ``filter`` (NaN when none does)."""
        kept = self._kept(filter)
        if kept is not None:
            values = self._component(component)[kept].astype(np.float64)
            return float(np.quantile(values, quantile(q))) if len(values) else float("nan")
        return float(np.quantile(self.sorted_scores(component)[1], quantile(q)))

    def quantile_samples(
        self, component: int, q: float, n: int = 8, *, filter: FilterLike | str = None
    ) -> np.ndarray:
        """The ``n`` sample ids whose scores are nearest the ``q``-quantile, in ascending score,
        among the samples that pass ``filter`` (the quantile is theirs too).

        Ties in distance break by lower sample id. After the first call per component (one
        sort), each unfiltered call costs O(n + ties) on the cached sorted scores.
        """
        n = positive_int(n, "n")
        kept = self._kept(filter)
        if kept is not None:
            scores = self._component(component)[kept].astype(np.float64)
            if not len(kept):
                return kept
            distance = np.abs(scores - np.quantile(scores, quantile(q)))
            chosen = np.lexsort((kept, distance))[:n]
            return kept[chosen[np.lexsort((kept[chosen], scores[chosen]))]]
        order, values = self.sorted_scores(component)
        target = self.quantile(component, q)
        total = len(values)
        n = min(n, total)
        # the n nearest values form a window of the sorted scores: grow it outwards ...
        hi = int(np.searchsorted(values, target))
        lo = hi - 1
        for _ in range(n):
            if hi >= total or (lo >= 0 and target - values[lo] <= values[hi] - target):
                lo -= 1
            else:
                hi += 1
        first, last = lo + 1, hi  # window [first, last)
        cutoff = max(target - values[first], values[last - 1] - target)
        # ... then widen it to every sample at the cutoff distance (whole runs of equal
        # scores, on both sides), among which the lowest ids win
        first = int(np.searchsorted(values, values[first], side="left"))
        last = int(np.searchsorted(values, values[last - 1], side="right"))
        if first > 0 and target - values[first - 1] == cutoff:
            first = int(np.searchsorted(values, values[first - 1], side="left"))
        if last < total and values[last] - target == cutoff:
            last = int(np.searchsorted(values, values[last], side="right"))
        ids, distance = order[first:last], np.abs(values[first:last] - target)
        nearer = ids[distance < cutoff]
        at_cutoff = np.sort(ids[distance == cutoff])
        chosen = np.concatenate([nearer, at_cutoff[: n - len(nearer)]])
        scores = self.scores[:, component]
        return chosen[np.lexsort((chosen, scores[chosen]))]  # ascending score, ties by lower id

    def percentiles(self, sample_id: int) -> np.ndarray:
        """The percentile (0-100) of one sample's score on each component: the share of the
        other samples that score lower."""
        if not 0 <= sample_id < self.run.n_samples:
            raise IndexError(f"sample_id={sample_id} is out of range (0..{self.run.n_samples - 1})")
        own = self.scores[sample_id]
        below = np.empty(self.n_components)
        for c in range(self.n_components):
            if c in self._sorted_cache:
                below[c] = np.searchsorted(self._sorted_cache[c][1], float(own[c]), side="left")
            else:
                below[c] = np.count_nonzero(self.scores[:, c] < own[c])
        return 100.0 * below / max(self.run.n_samples - 1, 1)

    def histogram(
        self, component: int, bins: int = 20, *, by_label: bool = False, filter: FilterLike | str = None
    ) -> Histogram:
        """Histogram of the scores in quantile-based bins (equal counts, not equal widths), of
        the samples that pass ``filter`` (default all).

        Quantile bins keep one outlier from squeezing every other sample into one bin. Repeated
        edges (many equal scores) are merged. ``by_label`` also counts each label per bin.
        """
        bins = positive_int(bins, "bins")
        scores = self._component(component).astype(np.float64)
        kept = self._kept(filter)
        if kept is not None:
            if not len(kept):
                raise EmbeddingExplorerError(f"no sample of run {self.run.name!r} passes the filter")
            scores = scores[kept]
        edges = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, bins + 1)))
        if len(edges) == 1:
            edges = np.array([edges[0], edges[0]])
        index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(index, minlength=len(edges) - 1)
        split = None
        if by_label:
            labels = self.run.labels
            if labels is None:
                raise EmbeddingExplorerError(f"run {self.run.name!r} has no labels to split the histogram by")
            if kept is not None:
                labels = labels[kept]
            # factorize copes with missing and mixed-type labels (np.unique does not); samples
            # without a label are left out of the split
            codes, values = pd.factorize(pd.Series(labels), sort=False)
            known = codes >= 0
            table = np.zeros((len(values), len(edges) - 1), dtype=np.int64)
            np.add.at(table, (codes[known], index[known]), 1)
            split = {v.item() if hasattr(v, "item") else v: table[i] for i, v in enumerate(values)}
        return Histogram(edges=edges, counts=counts, by_label=split)


def smallest(values: np.ndarray, n: int) -> np.ndarray:
    """Ids of the ``n`` smallest values, ascending, ties by lower id, in O(N)."""
    if n >= len(values):
        return np.lexsort((np.arange(len(values)), values))
    kth = np.partition(values, n - 1)[n - 1]
    candidates = np.flatnonzero(values <= kth)
    return candidates[np.lexsort((candidates, values[candidates]))][:n]
