"""The ``/api`` routes of what components mean: associations, correlations, model comparison.

Results are computed on first request and kept in the registry's cache (bounded; they depend
only on the runs, which do not change while served). They are computed in the server's analysis
threads (:func:`.answers.heavy`, a few at once), so a slow first CKA holds no thread the cheap
answers need. Library errors (runs over different samples) become 422 (:mod:`.errors`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request

from ..analysis import association, compare_models
from ..analysis.compare import ModelComparison
from ..analysis.insights import comparable, findings
from ..exceptions import EmbeddingExplorerError
from .answers import finite, heavy, matrix
from .params import LayerName, LayerQuery, OtherRunQuery, RegistryDep, RunId, RunQuery
from .registry import Registry
from .schemas import (
    AssociationColumn,
    Associations,
    CKATable,
    Insight,
    Insights,
    MatchedComponents,
    MatchedPair,
    PCCorrelation,
)

router = APIRouter(prefix="/api")
CompareQuery = Annotated[
    list[str] | None,
    Query(description="runs to compare with (repeatable); default: every served run that can be compared"),
]


def comparison(registry: Registry, run_a: str, run_b: str) -> ModelComparison:
    a, b = registry.get(run_a).run, registry.get(run_b).run
    return registry.cache.get(registry.key("compare", [run_a, run_b]), lambda: compare_models(a, b))


@router.get("/runs/{run}/layers/{layer}/associations")
async def associations(request: Request, registry: RegistryDep, run: RunId, layer: LayerName) -> Associations:
    """Each label and metadata column against each component: eta squared or Pearson r."""
    served = registry.get(run)
    served.layer(layer)  # 404 first
    base = registry.key("assoc", [run], layer)  # one generation check, not one per column
    ready = all((*base, c) in registry.cache for c in served.columns)
    return await heavy(request, lambda: association_table(registry, run, layer), ready=ready)


def association_table(registry: Registry, run: str, layer: str) -> Associations:
    served = registry.get(run)
    lay = served.layer(layer)
    columns, skipped = [], {}
    kinds = [(c.name, c.kind) for c in served.columns.values()]
    if "token" in served.metadata_columns and "token" not in served.columns:
        kinds.append(("token", "categorical"))  # a per-token run: too many tokens to colour by
    base = registry.key("assoc", [run], layer)
    for name, kind in kinds:
        try:
            table = registry.cache.get(
                (*base, name),
                lambda c=name, k=kind: association(lay, c, kind=k),  # type: ignore[misc]
            )
        except EmbeddingExplorerError as e:
            skipped[name] = str(e)
            continue
        statistic: Literal["eta2", "r"] = "eta2" if kind == "categorical" else "r"
        columns.append(
            AssociationColumn(
                name=name,
                kind=kind,
                statistic=statistic,
                values=[finite(v) for v in table[statistic].to_numpy(dtype=float)],
                summaries=[str(s) for s in table["summary"]],
            )
        )
    return Associations(layer=layer, columns=columns, skipped=skipped)


@router.get("/pc-correlation")
async def pc_correlation(
    request: Request,
    registry: RegistryDep,
    run_a: RunQuery,
    layer_a: LayerQuery,
    layer_b: LayerQuery,
    run_b: OtherRunQuery = None,
) -> PCCorrelation:
    """Correlations between the components of two layers (of one run, or of two runs over
    the same samples)."""
    other = run_a if run_b is None else run_b
    registry.get(run_a).layer(layer_a), registry.get(other).layer(layer_b)  # 404s first
    key = (
        registry.key("pcr", [run_a], layer_a, layer_b)
        if run_a == other
        else registry.key("compare", [run_a, other])
    )
    ready = key in registry.cache
    return await heavy(request, lambda: correlation(registry, run_a, layer_a, other, layer_b), ready=ready)


def correlation(registry: Registry, run_a: str, layer_a: str, run_b: str, layer_b: str) -> PCCorrelation:
    a, b = registry.get(run_a).layer(layer_a), registry.get(run_b).layer(layer_b)
    if run_a == run_b:
        r = registry.cache.get(registry.key("pcr", [run_a], layer_a, layer_b), lambda: a.pc_correlation(b))
    else:
        r = comparison(registry, run_a, run_b).pc_correlation(layer_a, layer_b)
    return PCCorrelation(
        run_a=run_a,
        layer_a=layer_a,
        run_b=run_b,
        layer_b=layer_b,
        r=matrix(r),
        ratio_a=[float(v) for v in a.explained_variance_ratio],
        ratio_b=[float(v) for v in b.explained_variance_ratio],
    )


@router.get("/compare/cka")
async def cka(request: Request, registry: RegistryDep, run_a: RunQuery, run_b: RunQuery) -> CKATable:
    """Linear CKA between every layer of one run and every layer of another."""
    registry.get(run_a), registry.get(run_b)  # 404s first
    ready = registry.key("cka", [run_a, run_b]) in registry.cache
    return await heavy(request, lambda: cka_table(registry, run_a, run_b), ready=ready)


def cka_table(registry: Registry, run_a: str, run_b: str) -> CKATable:
    table = registry.cache.get(
        registry.key("cka", [run_a, run_b]), lambda: comparison(registry, run_a, run_b).cka
    )
    return CKATable(
        run_a=run_a,
        run_b=run_b,
        layers_a=[str(i) for i in table.index],
        layers_b=[str(c) for c in table.columns],
        cka=matrix(table.to_numpy(dtype=float)),
    )


@router.get("/compare/matched")
async def matched(
    request: Request,
    registry: RegistryDep,
    run_a: RunQuery,
    layer_a: LayerQuery,
    run_b: RunQuery,
    layer_b: LayerQuery,
) -> MatchedComponents:
    """Components of two layers paired by largest |r| (Hungarian matching), sign aligned."""
    registry.get(run_a).layer(layer_a), registry.get(run_b).layer(layer_b)  # 404s first
    return await heavy(request, lambda: matched_table(registry, run_a, layer_a, run_b, layer_b))


def matched_table(
    registry: Registry, run_a: str, layer_a: str, run_b: str, layer_b: str
) -> MatchedComponents:
    frame = comparison(registry, run_a, run_b).matched_components(layer_a, layer_b)
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


@router.get("/runs/{run}/insights")
async def run_insights(
    request: Request, registry: RegistryDep, run: RunId, compare: CompareQuery = None
) -> Insights:
    """The run's findings, strongest first (``run.insights()``), each with a sentence, its
    figures and the view that shows it; against ``compare`` (default: every other served run
    of the same model over other data, or of another model over the same samples, that shares
    a layer that can be compared). The run itself in ``compare`` is refused (422)."""
    served = registry.get(run)  # 404 first
    others = list(compare) if compare is not None else [s.id for s in registry if s.id != run]
    for other in others:
        registry.get(other)
    if compare is None:
        others = [o for o in others if comparable(served.run, registry.get(o).run)]
    key = registry.key("insights", [run, *others])  # each run at the generation served now
    return await heavy(
        request,
        lambda: registry.cache.get(key, lambda: insight_table(registry, run, others)),
        ready=key in registry.cache,
    )


def _text(value: Any) -> str | None:
    """A table cell as JSON text: None (null) for a missing value, never the string "nan"."""
    return None if value is None or pd.isna(value) else str(value)


def insight_table(registry: Registry, run: str, others: list[str]) -> Insights:
    """The findings with the served ids of the runs they name: the run's own id for ``run``,
    ``dsa`` and ``ra``, the compared run's id (by its position in ``others``, not by its name,
    which two served runs may share) for ``other``, ``dsb`` and ``rb``."""
    served = registry.get(run)
    runs = [registry.get(o).run for o in others]
    table = findings(served.run, compare=runs)
    rows = []
    for row in table.itertuples(index=False):
        other = None if pd.isna(row.compare_index) else others[int(row.compare_index)]
        ids = {"run": run, "dsa": run, "ra": run, "dsb": other, "rb": other}
        target: dict[str, Any] = {
            k: ids[k] if k in ids and ids[k] is not None else v for k, v in dict(row.target).items()
        }
        rows.append(
            Insight(
                kind=str(row.kind),
                layer=_text(row.layer),
                component=None if pd.isna(row.component) else int(row.component),
                column=_text(row.column),
                strength=float(row.strength),
                sentence=str(row.sentence),
                statistic=finite(row.statistic),
                other=other,
                target=target,
            )
        )
    return Insights(run=run, compare=others, insights=rows)
