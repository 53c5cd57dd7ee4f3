"""The ``/api/compare/datasets`` routes: one model over two data sets, on the reference's components.

``run_a`` is the reference (its components are the axes), ``run_b`` the other data set. Runs of
different models, and a layer that differs between the runs (module, reduction, width), are
refused by the library (422 with its message, for that layer only); the comparison is computed
once per pair and layer and kept (the runs do not change while served), in the server's analysis
threads (:func:`.answers.heavy`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, TypeVar

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request

from ..analysis.datasets import DatasetComparison, compare_datasets
from ..exceptions import EmbeddingExplorerError
from ..filters import Filter
from ..run import Run
from .answers import finite, heavy, refs
from .bases import variance_ratios
from .errors import NotFoundError
from .params import FilterDep, RegistryDep
from .registry import Registry
from .schemas import CapturedVariance, DatasetEnds, DatasetExtremes, DatasetHistogram, DatasetShift, ShiftRow

RunA = Annotated[str, Query(min_length=1, description="the reference run: its components are the axes")]
RunB = Annotated[str, Query(min_length=1, description="the other run: the same model over other data")]
LayerQuery = Annotated[str, Query(min_length=1, description="a layer both runs have")]
Component = Annotated[int, Query(ge=0, description="component index of the reference, 0-based")]
Bins = Annotated[int, Query(ge=1, le=200, description="number of equal-width bins")]
Count = Annotated[int, Query(ge=1, le=200, description="samples per end")]


T = TypeVar("T")
router = APIRouter(prefix="/api/compare/datasets")


def comparison(registry: Registry, run_a: str, run_b: str, layer: str) -> DatasetComparison:
    a, b = registry.get(run_a), registry.get(run_b)
    a.layer(layer), b.layer(layer)  # 404 naming the layers of the run that lacks it
    if run_a == run_b:
        raise HTTPException(422, f"run_a and run_b are both {run_a!r}: pick two data sets to compare")
    # one layer at a time: a layer that differs between the runs refuses only itself
    return registry.cache.get(
        registry.key("datasets", [run_a, run_b], layer),
        lambda: compare_datasets(a.run, b.run, layers=[layer]),
    )


def check(registry: Registry, c: int, run_a: str, layer: str) -> None:
    k = registry.get(run_a).layer(layer).n_components
    if c >= k:
        raise NotFoundError(
            f"component={c} is out of range for layer {layer!r} of {run_a!r}: it has {k} (0..{k - 1})"
        )


async def computed(
    request: Request, registry: Registry, run_a: str, run_b: str, layer: str, answer: Callable[[], T]
) -> T:
    """``answer()`` in the analysis threads (:func:`.answers.heavy`) until the comparison of
    ``run_a`` and ``run_b`` on ``layer`` is cached."""
    ready = registry.key("datasets", [run_a, run_b], layer) in registry.cache
    return await heavy(request, answer, ready=ready)


@router.get("")
async def shift(
    request: Request,
    registry: RegistryDep,
    run_a: RunA,
    run_b: RunB,
    layer: LayerQuery,
    filter: FilterDep = None,
) -> DatasetShift:
    """How far the other data set moved along each reference component, largest variance-aware
    shift (W1 over the layer's total SD) first (among the samples of each that ``filter``
    keeps), and how much of its variance the reference's top components capture."""
    return await computed(
        request, registry, run_a, run_b, layer, lambda: shift_table(registry, run_a, run_b, layer, filter)
    )


def shift_table(
    registry: Registry, run_a: str, run_b: str, layer: str, filter: Filter | None = None
) -> DatasetShift:
    comp = comparison(registry, run_a, run_b, layer)
    lay = registry.get(run_a).layer(layer)
    position = {str(name): i for i, name in enumerate(comp.shift(layer).index)}
    ranked = comp.ranked(layer, filter=filter)
    ratios = variance_ratios(lay)
    rows = [
        ShiftRow(
            index=position[str(name)],
            name=f"PC {position[str(name)] + 1}",
            explained_variance_ratio=ratios[position[str(name)]],
            w1_total_sd=finite(row.w1_total_sd),
            smd=finite(row.smd),
            ks=finite(row.ks),
            ks_pvalue=finite(row.ks_pvalue),
            wasserstein=finite(row.wasserstein),
            mean_reference=finite(row.mean_reference),
            mean_other=finite(row.mean_other),
            std_reference=finite(row.std_reference),
            std_other=finite(row.std_other),
        )
        for name, row in zip(ranked.index, ranked.itertuples(), strict=True)
    ]
    captured = comp.captured_variance(layer)
    return DatasetShift(
        run_a=run_a,
        run_b=run_b,
        layer=layer,
        layers=comparable_layers(registry.get(run_a).run, registry.get(run_b).run),
        n_reference=int(registry.get(run_a).run.mask(filter).sum()),
        n_other=int(registry.get(run_b).run.mask(filter).sum()),
        components=rows,
        captured=CapturedVariance(
            k=[int(k) for k in captured.index],
            reference_components=[finite(v) for v in captured["reference_components"]],
            own_components=[finite(v) for v in captured["own_components"]],
        ),
    )


@router.get("/histogram")
async def histogram(
    request: Request,
    registry: RegistryDep,
    run_a: RunA,
    run_b: RunB,
    layer: LayerQuery,
    component: Component,
    bins: Bins = 30,
    filter: FilterDep = None,
) -> DatasetHistogram:
    """Both data sets' scores on one reference component, counted in the same bins (of the
    samples of each that ``filter`` keeps)."""
    answer = partial(histogram_of, registry, run_a, run_b, layer, component, bins, filter)
    return await computed(request, registry, run_a, run_b, layer, answer)


def histogram_of(
    registry: Registry,
    run_a: str,
    run_b: str,
    layer: str,
    component: int,
    bins: int,
    filter: Filter | None = None,
) -> DatasetHistogram:
    comp = comparison(registry, run_a, run_b, layer)
    check(registry, component, run_a, layer)
    hist = comp.histogram(layer, component, bins=bins, filter=filter)
    return DatasetHistogram(
        component=component,
        edges=np.asarray(hist["edges"], dtype=float).tolist(),
        reference=np.asarray(hist["reference"]).astype(int).tolist(),
        other=np.asarray(hist["other"]).astype(int).tolist(),
    )


@router.get("/extremes")
async def extremes(
    request: Request,
    registry: RegistryDep,
    run_a: RunA,
    run_b: RunB,
    layer: LayerQuery,
    component: Component,
    n: Count = 8,
    filter: FilterDep = None,
) -> DatasetExtremes:
    """The lowest and highest samples of each data set on one reference component (among the
    samples of each that ``filter`` keeps)."""
    answer = partial(extremes_of, registry, run_a, run_b, layer, component, n, filter)
    return await computed(request, registry, run_a, run_b, layer, answer)


def extremes_of(
    registry: Registry,
    run_a: str,
    run_b: str,
    layer: str,
    component: int,
    n: int,
    filter: Filter | None = None,
) -> DatasetExtremes:
    comp = comparison(registry, run_a, run_b, layer)
    check(registry, component, run_a, layer)
    ref, other = registry.get(run_a), registry.get(run_b)
    lay = ref.layer(layer)
    low, high = lay.extremes(component, n, filter=filter)
    other_low, other_high = comp.extremes(layer, component, n, filter=filter)
    other_scores = comp.other_scores(layer)[:, component]
    own = lay.scores[:, component]
    return DatasetExtremes(
        component=component,
        reference=DatasetEnds(low=refs(ref, low, own[low]), high=refs(ref, high, own[high])),
        other=DatasetEnds(
            low=refs(other, other_low, other_scores[other_low]),
            high=refs(other, other_high, other_scores[other_high]),
        ),
    )


def comparable_layers(reference: Run, other: Run) -> list[str]:
    """The layers both runs have that compare (same module, reduction and width), in the
    reference's order; building a comparison only checks the manifests, so this is cheap."""
    names = [name for name in reference.layers if name in other.layers]
    ok = []
    for name in names:
        try:
            DatasetComparison(reference, other, layers=[name])
        except EmbeddingExplorerError:
            continue
        ok.append(name)
    return ok
