"""Two models side by side over the same samples: CKA per layer pair, matched components."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .cka import cka_matrix
from .correlation import check_same_samples, pc_correlation

if TYPE_CHECKING:
    from ..run import Layer, Run

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class ModelComparison:
    """Two runs over the same samples in the same order (e.g. trained vs. untrained).

    Build it with :func:`compare_models`. Layers are named by the run they belong to:
    ``layer_a`` from ``run_a``, ``layer_b`` from ``run_b``.

    Parameters
    ----------
    run_a, run_b : Run
    debiased : bool, default=False
        Use the debiased CKA estimator in :attr:`cka`.
    """

    def __init__(self, run_a: Run, run_b: Run, *, debiased: bool = False) -> None:
        check_same_samples(run_a, run_b)
        self.run_a = run_a
        self.run_b = run_b
        self.debiased = debiased

    def __repr__(self) -> str:
        return f"ModelComparison({self.run_a.name!r}, {self.run_b.name!r})"

    @cached_property
    def cka(self) -> pd.DataFrame:
        """DataFrame of shape (layers of a, layers of b): linear CKA of every layer pair.

        Computed once, on first access, in one streaming pass over both runs' activations
        (see :func:`~embedding_explorer.analysis.cka.cka_matrix`).
        """
        values = cka_matrix(list(self.run_a), list(self.run_b), debiased=self.debiased)
        return pd.DataFrame(
            values,
            index=pd.Index(self.run_a.layers, name=self.run_a.name),
            columns=pd.Index(self.run_b.layers, name=self.run_b.name),
        )

    def _layers(self, layer_a: str | Layer, layer_b: str | Layer) -> tuple[Layer, Layer]:
        a = self.run_a.layer(layer_a) if isinstance(layer_a, str) else layer_a
        b = self.run_b.layer(layer_b) if isinstance(layer_b, str) else layer_b
        return a, b

    def pc_correlation(self, layer_a: str | Layer, layer_b: str | Layer) -> FloatArray:
        """ndarray of shape (k_a, k_b): Pearson correlations of the two layers' component scores."""
        return pc_correlation(*self._layers(layer_a, layer_b))

    def matched_components(self, layer_a: str | Layer, layer_b: str | Layer) -> pd.DataFrame:
        """Components of ``layer_a`` paired one-to-one with those of ``layer_b``.

        Pairs maximise the total ``|r|`` (Hungarian algorithm, ``linear_sum_assignment`` on
        ``-|r|``), so ``min(k_a, k_b)`` pairs are returned, in the order of ``layer_a``'s
        components.

        Returns
        -------
        DataFrame with columns
            ``component_a``, ``component_b`` (0-based ints), ``r`` (``|r|``), ``sign`` (+1 or -1:
            component_b's scores run with or against component_a's), ``ratio_a``, ``ratio_b``
            (explained variance ratios) and ``pair``, e.g. ``"PC1 ~ -PC3"``: "trained PC1 is
            untrained -PC3".
        """
        a, b = self._layers(layer_a, layer_b)
        r = pc_correlation(a, b)
        strength = np.nan_to_num(np.abs(r), nan=0.0)
        rows, cols = linear_sum_assignment(-strength)
        signed = r[rows, cols]
        sign = np.where(np.nan_to_num(signed, nan=1.0) < 0, -1, 1)
        return pd.DataFrame(
            {
                "component_a": rows.astype(int),
                "component_b": cols.astype(int),
                "r": np.abs(signed),
                "sign": sign,
                "ratio_a": a.explained_variance_ratio[rows],
                "ratio_b": b.explained_variance_ratio[cols],
                "pair": [
                    f"PC{i + 1} ~ {'-' if s < 0 else '+'}PC{j + 1}"
                    for i, j, s in zip(rows, cols, sign, strict=True)
                ],
            }
        )


def compare_models(run_a: Run, run_b: Run, *, debiased: bool = False) -> ModelComparison:
    """Compare two runs over the same samples in the same order (e.g. two models, one data set).

    Raises
    ------
    EmbeddingExplorerError
        When the runs cover different samples (sample count or data content hash differ).
    """
    from ..run import Run

    for name, run in (("run_a", run_a), ("run_b", run_b)):
        if not isinstance(run, Run):
            raise TypeError(f"{name} must be a Run (ee.open_run(path)), not {type(run).__name__} {run!r}")
    return ModelComparison(run_a, run_b, debiased=debiased)
