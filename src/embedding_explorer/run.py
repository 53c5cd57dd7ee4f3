"""A finished run and its layers: PCA results, scores and probing along components."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checks import positive_int, quantile
from .exceptions import EmbeddingExplorerError, LayerNotFoundError
from .render import IMAGE, as_png
from .store import RunReader

SAMPLE_COLUMNS = ("sample_id", "label")
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


class Layer:
    """One layer of a run: its PCA, the scores of every sample, and probing along components."""

    def __init__(self, run: Run, info: dict[str, Any]) -> None:
        self.run = run
        self.name: str = info["name"]
        self.dim: int = int(info["dim"])
        self.key: str = info["key"]
        self.info = info

    def __repr__(self) -> str:
        return f"Layer({self.name!r}, dim={self.dim}, n_components={self.n_components})"

    @cached_property
    def _pca(self) -> dict[str, np.ndarray]:
        return self.run._reader.pca_arrays(self.key)

    @property
    def mean(self) -> np.ndarray:
        """ndarray of shape (D,): the mean activation."""
        return self._pca["mean"]

    @property
    def components(self) -> np.ndarray:
        """ndarray of shape (k, D): principal axes, unit-norm rows, scikit-learn signs."""
        return self._pca["components"]

    @property
    def explained_variance(self) -> np.ndarray:
        """ndarray of shape (k,): variance along each component (N-1 denominator)."""
        return self._pca["explained_variance"]

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """ndarray of shape (k,): each component's share of the layer's total variance."""
        return self._pca["explained_variance_ratio"]

    @property
    def n_components(self) -> int:
        return int(self.info["n_components"])

    @property
    def total_variance(self) -> float:
        return float(self.info["total_variance"])

    @property
    def pca_method(self) -> str:
        return str(self.info["pca_method"])

    @cached_property
    def scores(self) -> np.ndarray:
        """ndarray of shape (N, k): ``(activations - mean) @ components.T``, float32."""
        return np.asarray(self.run._reader.array("scores", self.key)[...])

    @property
    def activations(self) -> Any:
        """The (N, D) activations as a lazily read Zarr array (index it to get numpy)."""
        return self.run._reader.array("activations", self.key)

    def project(self, activations: Any) -> np.ndarray:
        """Scores of any (M, D) activations on this layer's components (no refit)."""
        x = np.asarray(activations, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise EmbeddingExplorerError(
                f"layer {self.name!r} has {self.dim} features; got activations of shape {x.shape}"
            )
        return (x - self.mean) @ self.components.T

    # what components mean (embedding_explorer.analysis) ------------------------------------
    def association(self, column: str = "label", *, kind: str = "auto") -> pd.DataFrame:
        """One row per component: ``eta2`` and mean score per category for a categorical column
        (labels by default), or Pearson ``r`` for a numeric one, with a readable ``summary``."""
        from .analysis.associations import association

        return association(self, column, kind=kind)  # type: ignore[arg-type]

    def extreme_makeup(
        self, component: int, n: int = 10, column: str = "label"
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """The categories among the ``n`` lowest and ``n`` highest samples, most common first."""
        from .analysis.associations import extreme_makeup

        return extreme_makeup(self, component, n, column)

    def pc_correlation(self, other: Layer) -> np.ndarray:
        """(k_self, k_other) Pearson correlations of the two layers' component scores."""
        from .analysis.correlation import pc_correlation

        return pc_correlation(self, other)

    # probing ---------------------------------------------------------------------------
    def _component(self, component: int) -> np.ndarray:
        if isinstance(component, bool) or not isinstance(component, (int, np.integer)):
            raise TypeError(f"component must be an int, got {component!r}")
        if not 0 <= component < self.n_components:
            raise IndexError(
                f"component={component} is out of range for layer {self.name!r}, "
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

    def extremes(self, component: int, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` lowest sample ids (ascending score) and ``n`` highest (descending).

        Ties break by lower sample id at both ends. O(N) by partial selection (no full sort) on
        the first call per component, then cached.
        """
        n = positive_int(n, "n")
        scores = self._component(component)
        cached = self._extremes_cache.get(component)
        if cached is None or len(cached[0]) < min(n, len(scores)):
            # a few more than asked, so the next request (e.g. a larger n in the UI) is a slice
            m = max(n, EXTREMES_CACHED)
            values = scores.astype(np.float64)
            cached = self._extremes_cache[component] = (_smallest(values, m), _smallest(-values, m))
        return cached[0][:n].copy(), cached[1][:n].copy()

    def quantile(self, component: int, q: float) -> float:
        """The ``q``-quantile of the scores on ``component`` (numpy's linear rule)."""
        return float(np.quantile(self.sorted_scores(component)[1], quantile(q)))

    def quantile_samples(self, component: int, q: float, n: int = 8) -> np.ndarray:
        """The ``n`` sample ids whose scores are nearest the ``q``-quantile, in ascending score.

        Ties in distance break by lower sample id. After the first call per component (one
        sort), each call costs O(n + ties) on the cached sorted scores.
        """
        n = positive_int(n, "n")
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

    def histogram(self, component: int, bins: int = 20, *, by_label: bool = False) -> Histogram:
        """Histogram of the scores in quantile-based bins (equal counts, not equal widths).

        Quantile bins keep one outlier from squeezing every other sample into one bin. Repeated
        edges (many equal scores) are merged. ``by_label`` also counts each label per bin.
        """
        bins = positive_int(bins, "bins")
        scores = self._component(component).astype(np.float64)
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
            # factorize copes with missing and mixed-type labels (np.unique does not); samples
            # without a label are left out of the split
            codes, values = pd.factorize(pd.Series(labels), sort=False)
            known = codes >= 0
            table = np.zeros((len(values), len(edges) - 1), dtype=np.int64)
            np.add.at(table, (codes[known], index[known]), 1)
            split = {v.item() if hasattr(v, "item") else v: table[i] for i, v in enumerate(values)}
        return Histogram(edges=edges, counts=counts, by_label=split)


def _smallest(values: np.ndarray, n: int) -> np.ndarray:
    """Ids of the ``n`` smallest values, ascending, ties by lower id, in O(N)."""
    if n >= len(values):
        return np.lexsort((np.arange(len(values)), values))
    kth = np.partition(values, n - 1)[n - 1]
    candidates = np.flatnonzero(values <= kth)
    return candidates[np.lexsort((candidates, values[candidates]))][:n]


class Run:
    """A finished run, opened from its directory; needs neither the model nor the data."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()  # lazy reads keep working after a chdir
        self._reader = RunReader(self.path)
        self.manifest = self._reader.manifest
        self.name: str = self.manifest["name"]
        self.n_samples: int = int(self.manifest["data"]["n_samples"])
        self._layers = {info["name"]: Layer(self, info) for info in self.manifest["layers"]}

    def __repr__(self) -> str:
        return f"Run({self.name!r}, n_samples={self.n_samples}, layers={self.layers})"

    @property
    def layers(self) -> list[str]:
        return list(self._layers)

    def layer(self, name: str) -> Layer:
        try:
            return self._layers[name]
        except KeyError:
            raise LayerNotFoundError(
                f"run {self.name!r} has no layer {name!r}; its layers: {', '.join(self.layers)}"
            ) from None

    __getitem__ = layer

    def __iter__(self) -> Any:
        return iter(self._layers.values())

    @cached_property
    def samples(self) -> pd.DataFrame:
        """The sample table: ``sample_id``, ``label`` (when present), metadata columns."""
        return self._reader.samples()

    @property
    def labels(self) -> np.ndarray | None:
        """ndarray of shape (N,), or None when the run has no labels."""
        return self.samples["label"].to_numpy() if "label" in self.samples else None

    @property
    def label_names(self) -> list[str] | None:
        """Display names of integer labels (e.g. a Dataset's ``classes``), when known."""
        names = self.manifest["labels"].get("names")
        return list(names) if names else None

    @property
    def metadata(self) -> pd.DataFrame:
        """The metadata columns given to ``explore``, one row per sample."""
        return self.samples.drop(columns=[c for c in SAMPLE_COLUMNS if c in self.samples])

    @property
    def rendering_kind(self) -> str | None:
        """``"image/png"``, ``"text/plain"``, or None when samples have no rendering."""
        kind = self.manifest["rendering"]["kind"]
        return str(kind) if kind else None

    def rendering(self, sample_id: int) -> bytes | None:
        """The stored thumbnail (PNG bytes) or text (UTF-8) of one sample."""
        if not 0 <= sample_id < self.n_samples:
            raise IndexError(f"sample_id={sample_id} is out of range (0..{self.n_samples - 1})")
        record = self._reader.rendering(sample_id)
        return as_png(record) if record is not None and self.rendering_kind == IMAGE else record

    def pc_correlation(self, layer_a: str, layer_b: str) -> np.ndarray:
        """(k_a, k_b) Pearson correlations between the component scores of two layers."""
        return self.layer(layer_a).pc_correlation(self.layer(layer_b))

    def cka(self, *, debiased: bool = False) -> pd.DataFrame:
        """Linear CKA between every pair of this run's layers (layers x layers)."""
        from .analysis.cka import cka_matrix

        values = cka_matrix(list(self), debiased=debiased)
        return pd.DataFrame(values, index=self.layers, columns=self.layers)

    def show(self, *, height: int = 800) -> Any:
        """Display the explorer UI for this run inline in Jupyter (returns the server handle)."""
        from .server import show

        return show([self], height=height)

    def label_name(self, label: Any) -> str:
        """How a label reads: its class name where known."""
        names = self.label_names
        if names is not None and isinstance(label, (int, np.integer)) and 0 <= label < len(names):
            return str(names[int(label)])
        return str(label)


def open_run(path: str | Path) -> Run:
    """Open a finished run directory (fails clearly on an unfinished one)."""
    return Run(path)
