"""The ``/api`` routes of what components mean: associations, correlations, model comparison.

Results are computed on first request and cached per server (they depend only on the runs,
which do not change while served). Library errors (runs over different samples) become 422 in
:func:`.app.add_error_handlers`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Query

from ..analysis import association, compare_models
from ..analysis.compare import ModelComparison
from ..exceptions import EmbeddingExplorerError
from .registry import Registry
from .routes import LayerName, RunId
from .schemas import (
    AssociationColumn,
    Associations,
    CKATable,
    MatchedComponents,
    MatchedPair,
    PCCorrelation,
)

T = TypeVar("T")
RunQuery = Annotated[str, Query(description="a run id from /api/runs")]
LayerQuery = Annotated[str, Query(description="a layer name of that run")]


class Cache:
    """Compute-once results keyed by their inputs; a lock per key so two requests do not both
    compute the same CKA table."""

    def __init__(self) -> None:
        self._values: dict[tuple[Any, ...], Any] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if key in self._values:
            return self._values[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
        return self._values[key]


def analysis_router(registry: Registry) -> APIRouter:
    router = APIRouter(prefix="/api")
    cache = Cache()

    def comparison(run_a: str, run_b: str) -> ModelComparison:
        a, b = registry.get(run_a).run, registry.get(run_b).run
        return cache.get(("compare", run_a, run_b), lambda: compare_models(a, b))

    @router.get("/runs/{run}/layers/{layer}/associations")
    def associations(run: RunId, layer: LayerName) -> Associations:
        """Each label and metadata column against each component: eta squared or Pearson r."""
        served = registry.get(run)
        lay = served.layer(layer)
        columns, skipped = [], {}
        for column in served.columns.values():
            try:
                table = cache.get(
                    ("assoc", run, layer, column.name),
                    lambda c=column: association(lay, c.name, kind=c.kind),  # type: ignore[misc]
                )
            except EmbeddingExplorerError as e:
                skipped[column.name] = str(e)
                continue
            statistic: Literal["eta2", "r"] = "eta2" if column.kind == "categorical" else "r"
            columns.append(
                AssociationColumn(
                    name=column.name,
                    kind=column.kind,
                    statistic=statistic,
                    values=[finite(v) for v in table[statistic].to_numpy(dtype=float)],
                    summaries=[str(s) for s in table["summary"]],
                )
            )
        return Associations(layer=layer, columns=columns, skipped=skipped)

    @router.get("/pc-correlation")
    def pc_correlation(
        run_a: RunQuery, layer_a: LayerQuery, layer_b: LayerQuery, run_b: RunQuery | None = None
    ) -> PCCorrelation:
        """Correlations between the components of two layers (of one run, or of two runs over
        the same samples)."""
        run_b = run_b or run_a
        a, b = registry.get(run_a).layer(layer_a), registry.get(run_b).layer(layer_b)
        if run_a == run_b:
            r = cache.get(("pcr", run_a, layer_a, layer_b), lambda: a.pc_correlation(b))
        else:
            r = comparison(run_a, run_b).pc_correlation(layer_a, layer_b)
        return PCCorrelation(
            run_a=run_a,
            layer_a=layer_a,
            run_b=run_b,
            layer_b=layer_b,
            r=_matrix(r),
            ratio_a=[float(v) for v in a.explained_variance_ratio],
            ratio_b=[float(v) for v in b.explained_variance_ratio],
        )

    @router.get("/compare/cka")
    def cka(run_a: RunQuery, run_b: RunQuery) -> CKATable:
        """Linear CKA between every layer of one run and every layer of another."""
        table = comparison(run_a, run_b).cka
        return CKATable(
            run_a=run_a,
            run_b=run_b,
            layers_a=[str(i) for i in table.index],
            layers_b=[str(c) for c in table.columns],
            cka=_matrix(table.to_numpy(dtype=float)),
        )

    @router.get("/compare/matched")
    def matched(
        run_a: RunQuery, layer_a: LayerQuery, run_b: RunQuery, layer_b: LayerQuery
    ) -> MatchedComponents:
        """Components of two layers paired by largest |r| (Hungarian matching), sign aligned."""
        registry.get(run_a).layer(layer_a), registry.get(run_b).layer(layer_b)  # 404s first
        frame = comparison(run_a, run_b).matched_components(layer_a, layer_b)
        pairs = [
            MatchedPair(
                component_a=int(row.component_a),
                component_b=int(row.component_b),
                r=float(row.r),
                sign=int(row.sign),
                ratio_a=float(row.ratio_a),
                ratio_b=float(row.ratio_b),
            )
            for row in frame.itertuples()
        ]
        return MatchedComponents(run_a=run_a, layer_a=layer_a, run_b=run_b, layer_b=layer_b, pairs=pairs)

    return router


def finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _matrix(values: np.ndarray) -> list[list[float | None]]:
    return [[finite(float(v)) for v in row] for row in np.asarray(values, dtype=float)]
