"""One model over two data sets: how the other set's activations shift along the reference's components.

The other run's stored activations are projected onto the reference run's components (no refit),
so both data sets are read on the same axes. Per component the two score distributions are
compared by the standardised mean difference, the two-sample Kolmogorov-Smirnov statistic and
the Wasserstein-1 distance; :meth:`DatasetComparison.captured_variance` says how much of the
other set's variance the reference's axes still capture, and :meth:`DatasetComparison.joint`
builds one PCA over the union of both sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..checks import positive_int
from ..exceptions import EmbeddingExplorerError, LayerNotFoundError
from ..probe import ScoreProbe

if TYPE_CHECKING:
    from ..filters import FilterLike
    from ..run import Layer, Run

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

SHIFT_COLUMNS = (
    "w1_total_sd",
    "smd",
    "ks",
    "ks_pvalue",
    "wasserstein",
    "mean_reference",
    "mean_other",
    "std_reference",
    "std_other",
)
SHIFT_MEASURES = ("w1_total_sd", "smd", "ks", "wasserstein")
ShiftMeasure = Literal["w1_total_sd", "smd", "ks", "wasserstein"]
# what must agree for two runs' layers to be the same layer of the same model
_LAYER_IDENTITY = ("module", "call", "reduce", "dim")


def model_fingerprint_of(run: Run) -> str:
    """The fingerprint of the model a run was made with (``"none"`` for a model-free run)."""
    return str(run.manifest.get("model", {}).get("fingerprint"))


def check_same_model(reference: Run, other: Run) -> None:
    """Raise unless both runs come from the same model (two model-free runs also pass). A run
    built from arrays without ``model=`` says nothing of its model: it is never the same one
    (two caches of two models over one data set are not one model over two)."""
    fp_ref, fp_other = model_fingerprint_of(reference), model_fingerprint_of(other)
    unknown = [run.name for run, fp in ((reference, fp_ref), (other, fp_other)) if fp == "arrays"]
    if unknown:
        raise EmbeddingExplorerError(
            f"run {unknown[0]!r} was built from arrays without naming their model, so it cannot be "
            "read as the same model as another run: pass model='...' (the same name for both) "
            "to ee.from_arrays (the command: vectors --model-name)"
        )
    if fp_ref != fp_other:
        class_ref = reference.manifest.get("model", {}).get("class") or "no model (input space)"
        class_other = other.manifest.get("model", {}).get("class") or "no model (input space)"
        raise EmbeddingExplorerError(
            f"runs {reference.name!r} and {other.name!r} come from different models "
            f"({class_ref} {fp_ref[:12]} vs {class_other} {fp_other[:12]}); compare_datasets reads "
            "one model over two data sets (for two models over one data set use compare_models)"
        )


class DatasetComparison:
    """The same model over two data sets, read on the reference run's components.

    Build it with :func:`compare_datasets`. All per-component results use the reference
    layer's components; the other set is projected, never refitted.

    Parameters
    ----------
    reference, other : Run
        Runs of the same model (same model fingerprint) over different data.
    layers : sequence of str, optional
        The layers to compare; each must be in both runs. Default: every layer the two runs
        share, in the reference run's order.
    """

    def __init__(self, reference: Run, other: Run, *, layers: Sequence[str] | None = None) -> None:
        check_same_model(reference, other)
        self.reference = reference
        self.other = other
        if layers is None:
            names = [name for name in reference.layers if name in other.layers]
            if not names:
                raise EmbeddingExplorerError(
                    f"runs {reference.name!r} and {other.name!r} share no layer "
                    f"({', '.join(reference.layers)} vs {', '.join(other.layers)})"
                )
        else:
            names = [layers] if isinstance(layers, str) else list(layers)
            for name in names:
                self._require(name)
        for name in names:
            _check_same_layer(reference.layer(name), other.layer(name))
        self._layers = names
        self._scores: dict[str, np.ndarray] = {}
        self._shifts: dict[str, pd.DataFrame] = {}
        self._probes: dict[str, OtherScores] = {}

    def __repr__(self) -> str:
        return f"DatasetComparison({self.reference.name!r}, {self.other.name!r}, layers={self._layers})"

    @property
    def layers(self) -> list[str]:
        """The compared layers, in the reference run's order."""
        return list(self._layers)

    def _require(self, layer: str) -> None:
        for run in (self.reference, self.other):
            if layer not in run.layers:
                raise LayerNotFoundError(
                    f"layer {layer!r} is missing from run {run.name!r} (its layers: "
                    f"{', '.join(run.layers)}); both runs must have the layer to compare it"
                )

    def _pair(self, layer: str) -> tuple[Layer, Layer]:
        if not isinstance(layer, str):
            raise TypeError(f"layer must be a layer name (str), got {layer!r}")
        self._require(layer)
        if layer not in self._layers:
            raise LayerNotFoundError(
                f"layer {layer!r} is not among the compared layers ({', '.join(self._layers)})"
            )
        return self.reference.layer(layer), self.other.layer(layer)

    def _component(self, layer: str, component: int) -> tuple[Layer, int]:
        ref, _ = self._pair(layer)
        if isinstance(component, bool) or not isinstance(component, (int, np.integer)):
            raise TypeError(f"component must be an int, got {component!r}")
        if not 0 <= component < ref.n_components:
            raise IndexError(
                f"component={component} is out of range for layer {layer!r} of run {self.reference.name!r}, "
                f"which has {ref.n_components} components (0..{ref.n_components - 1})"
            )
        return ref, int(component)

    # ---- scores ------------------------------------------------------------------------------
    def other_scores(self, layer: str) -> np.ndarray:
        """ndarray of shape (N_other, k), float32: the other set's stored activations projected
        onto the reference layer's components, ``(x - mean_ref) @ components_ref.T``.

        Streamed chunk by chunk from the other run's activations (computed in float64), then
        cached, so the whole activation matrix is never in memory.
        """
        ref, oth = self._pair(layer)
        if layer not in self._scores:
            activations = oth.activations
            rows = int(activations.chunks[0])
            scores = np.empty((self.other.n_samples, ref.n_components), dtype=np.float32)
            for start in range(0, self.other.n_samples, rows):
                scores[start : start + rows] = ref.project(activations[start : start + rows])
            self._scores[layer] = scores
        return self._scores[layer]

    # ---- shift statistics --------------------------------------------------------------------
    def shift(self, layer: str, *, filter: FilterLike | str = None) -> pd.DataFrame:
        """How the other set's scores differ from the reference's, per reference component
        (among each set's samples that pass ``filter``: a :class:`~embedding_explorer.Filter`
        applied to both runs, e.g. one class, or the misclassified samples).

        Returns
        -------
        DataFrame indexed ``"PC1".."PCk"`` with columns
            ``smd``: standardised mean difference ``(mean_other - mean_reference) / s_pooled``,
            with the pooled standard deviation of Cohen's d,
            ``s_pooled = sqrt(((n_r - 1) s_r^2 + (n_o - 1) s_o^2) / (n_r + n_o - 2))``
            (NaN where both sets' scores are constant);
            ``ks``, ``ks_pvalue``: :func:`scipy.stats.ks_2samp` (two-sided);
            ``wasserstein``: :func:`scipy.stats.wasserstein_distance`, in score units;
            ``mean_reference``, ``mean_other``, ``std_reference``, ``std_other`` (N-1 denominator);
            ``w1_total_sd``: the variance-aware shift, ``wasserstein`` over the reference layer's
            total standard deviation ``sqrt(total_variance)`` (the square root of the summed
            variances of all its features). A component holding little of the layer's variance
            cannot score high on it however far it moves in its own SDs (|smd| can).
        All computed in float64 on the scores.
        """
        ref, _ = self._pair(layer)
        if filter is not None:
            return self._shift_table(layer, *self._kept(layer, filter))
        if layer not in self._shifts:
            self._shifts[layer] = self._shift_table(layer, ref.scores, self.other_scores(layer))
        return self._shifts[layer].copy()

    def _kept(self, layer: str, filter: FilterLike | str) -> tuple[np.ndarray, np.ndarray]:
        """Both sets' scores on the reference components, of the samples ``filter`` keeps."""
        reference = self._pair(layer)[0].scores[self.reference.mask(filter)]
        other = self.other_scores(layer)[self.other.mask(filter)]
        if len(reference) < 2 or len(other) < 2:
            raise EmbeddingExplorerError(
                f"the filter keeps {len(reference)} samples of {self.reference.name!r} and "
                f"{len(other)} of {self.other.name!r}; a shift needs at least 2 of each"
            )
        return reference, other

    def _shift_table(self, layer: str, reference: np.ndarray, other: np.ndarray) -> pd.DataFrame:
        ref, _ = self._pair(layer)
        total_sd = float(np.sqrt(max(ref.total_variance, 0.0)))
        rows = []
        for c in range(ref.n_components):
            row = _shift_row(reference[:, c], other[:, c])
            rows.append([row[3] / total_sd if total_sd > 0 else float("nan"), *row])
        return pd.DataFrame(
            rows,
            index=pd.Index([f"PC{c + 1}" for c in range(ref.n_components)], name="component"),
            columns=list(SHIFT_COLUMNS),
        )

    def ranked(
        self, layer: str, by: ShiftMeasure = "w1_total_sd", *, filter: FilterLike | str = None
    ) -> pd.DataFrame:
        """:meth:`shift` sorted by one measure, largest first (ties keep component order).

        ``by``: ``"w1_total_sd"`` (default: variance-aware, W1 over the layer's total SD),
        ``"smd"`` (by ``|smd|``), ``"ks"`` or ``"wasserstein"``; ``filter`` as in :meth:`shift`."""
        if by not in SHIFT_MEASURES:
            raise ValueError(f"by={by!r}: use one of {', '.join(SHIFT_MEASURES)}")
        table = self.shift(layer, filter=filter)
        order = np.argsort(-np.nan_to_num(table[by].abs().to_numpy(), nan=-1.0), kind="stable")
        return table.iloc[order]

    def captured_variance(self, layer: str) -> pd.DataFrame:
        """The share of the other set's total variance its top-k components capture.

        Returns
        -------
        DataFrame indexed ``k = 1..K`` (``K = min(k_reference, k_other)``) with columns
            ``reference_components``: ``sum_{i<=k} var(other scores on reference PC i)`` divided by
            the other set's total variance (the sum of its features' variances);
            ``own_components``: the other run's own cumulative explained variance ratio.
        The reference's axes can never capture more than the other set's own top-k (Ky Fan);
        the gap shows how much of the other set's structure the reference's axes miss.
        """
        ref, oth = self._pair(layer)
        k = min(ref.n_components, oth.n_components)
        total = oth.total_variance
        variances = self.other_scores(layer)[:, :k].astype(np.float64).var(axis=0, ddof=1)
        reference = np.cumsum(variances) / total if total > 0 else np.zeros(k)
        own = np.cumsum(np.asarray(oth.explained_variance_ratio[:k], dtype=np.float64))
        return pd.DataFrame(
            {"reference_components": reference, "own_components": own},
            index=pd.RangeIndex(1, k + 1, name="k"),
        )

    # ---- probing the other set ---------------------------------------------------------------
    def probe(self, layer: str) -> OtherScores:
        """The other set's scores on the reference components, probed like a layer's own:
        ``extremes``, ``quantile_samples``, ``percentiles``, ``histogram`` (samples of the other run)."""
        self._pair(layer)
        if layer not in self._probes:
            self._probes[layer] = OtherScores(self, layer)
        return self._probes[layer]

    def extremes(
        self, layer: str, component: int, n: int = 8, *, filter: FilterLike | str = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The other set's ``n`` lowest sample ids (ascending score) and ``n`` highest
        (descending) on a reference component, among its samples that pass ``filter``; ties
        break by lower sample id."""
        return self.probe(layer).extremes(component, n, filter=filter)

    def histogram(
        self, layer: str, component: int, bins: int = 30, *, filter: FilterLike | str = None
    ) -> dict[str, np.ndarray]:
        """Both sets' scores on a reference component, counted in the same bins (with
        ``filter``: the samples of each set that pass it).

        Returns ``{"edges": (bins + 1,), "reference": (bins,), "other": (bins,)}``: equal-width
        bins from the lowest to the highest score of either set (the last bin includes its
        right edge, as in :func:`numpy.histogram`), so the two counts can be overlaid on one axis.
        """
        ref, component = self._component(layer, component)
        bins = positive_int(bins, "bins")
        reference = ref.scores[:, component].astype(np.float64)
        other = self.other_scores(layer)[:, component].astype(np.float64)
        if filter is not None:
            reference, other = reference[self.reference.mask(filter)], other[self.other.mask(filter)]
            if not len(reference) or not len(other):
                raise EmbeddingExplorerError("no sample of one of the two data sets passes the filter")
        lo = min(float(reference.min()), float(other.min()))
        hi = max(float(reference.max()), float(other.max()))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        return {
            "edges": edges,
            "reference": np.histogram(reference, edges)[0],
            "other": np.histogram(other, edges)[0],
        }

    # ---- one PCA over both sets ----------------------------------------------------------------
    def joint(
        self,
        out: str | Path | None = None,
        name: str | None = None,
        *,
        n_components: int | None = None,
        recompute: bool = False,
        wait: bool | float = False,
    ) -> Run:
        """PCA on the union of both data sets, saved as a new run (built by
        :func:`~embedding_explorer.build.joint.joint_run`).

        Labels are the data-set membership (the run names), so ``layer.association()`` says
        which joint components separate the two sets. Default ``out``: beside the reference run,
        ``<reference folder>+<other folder>``. ``wait`` as in :func:`~embedding_explorer.explore`:
        another process writing the joint run holds its lock.
        """
        from ..build.joint import joint_run

        return joint_run(
            self.reference, self.other, self._layers, out=out, name=name,
            n_components=n_components, recompute=recompute, wait=wait,
        )  # fmt: skip


class OtherScores(ScoreProbe):
    """The other data set's samples along the reference layer's components (a :class:`ScoreProbe`)."""

    def __init__(self, comparison: DatasetComparison, layer: str) -> None:
        self.run = comparison.other
        self.layer = layer
        self.reference = comparison.reference
        self._scores = comparison.other_scores(layer)

    def __repr__(self) -> str:
        return f"OtherScores({self.run.name!r} on {self.reference.name!r}, layer={self.layer!r})"

    @property
    def scores(self) -> np.ndarray:
        """ndarray of shape (N_other, k): see :meth:`DatasetComparison.other_scores`."""
        return self._scores

    def _subject(self) -> str:
        return f"layer {self.layer!r} of run {self.reference.name!r} (scores of run {self.run.name!r})"


def compare_datasets(reference: Run, other: Run, *, layers: Sequence[str] | None = None) -> DatasetComparison:
    """Compare one model over two data sets, on the reference run's components.

    Raises
    ------
    EmbeddingExplorerError
        When the runs come from different models (model fingerprints differ; two model-free
        input-space runs are fine), share no layer, or a shared layer differs (module,
        reduction or width).
    LayerNotFoundError
        When a layer named in ``layers`` is missing from either run.
    """
    return DatasetComparison(reference, other, layers=layers)


def _check_same_layer(ref: Layer, other: Layer) -> None:
    for field in _LAYER_IDENTITY:
        a, b = ref.info.get(field), other.info.get(field)
        if a != b:
            raise EmbeddingExplorerError(
                f"layer {ref.name!r} differs between runs {ref.run.name!r} and {other.run.name!r}: "
                f"{field} {a!r} vs {b!r}"
            )


def _shift_row(reference: np.ndarray, other: np.ndarray) -> list[float]:
    # sorted copies: numpy's SIMD sort is cheap, and scipy's Wasserstein distance is 2.6x faster
    # on sorted input (it argsorts the concatenation); at 1M + 1M scores a row takes about 0.6 s
    r = np.sort(np.asarray(reference, dtype=np.float64))
    o = np.sort(np.asarray(other, dtype=np.float64))
    n_r, n_o = len(r), len(o)
    mean_r, mean_o = float(r.mean()), float(o.mean())
    sd_r = float(r.std(ddof=1)) if n_r > 1 else 0.0
    sd_o = float(o.std(ddof=1)) if n_o > 1 else 0.0
    pooled = np.sqrt(((n_r - 1) * sd_r**2 + (n_o - 1) * sd_o**2) / max(n_r + n_o - 2, 1))
    smd = (mean_o - mean_r) / pooled if pooled > 0 else float("nan")
    ks = stats.ks_2samp(r, o)
    wasserstein = float(stats.wasserstein_distance(r, o))
    return [float(smd), float(ks.statistic), float(ks.pvalue), wasserstein, mean_r, mean_o, sd_r, sd_o]
