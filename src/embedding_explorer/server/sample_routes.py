"""The ``/api`` routes around samples: which samples a filter keeps, and a sample's nearest
neighbours in a layer, with how its neighbourhood changes across layers and against another run.

Neighbours over the stored activations read a whole layer (streamed in chunks): they are
computed in the server's analysis threads (:func:`.answers.heavy`) and kept in the registry's
bounded cache; ``space=scores`` searches the PCA scores instead (fast).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response

from ..analysis.neighbors import knn_overlap
from .answers import BINARY, binary, heavy
from .params import FilterDep, RegistryDep, RunId, SampleId
from .registry import Registry, ServedRun
from .schemas import Neighbor, Neighborhood, NeighborhoodLayer, Neighbors

router = APIRouter(prefix="/api")

K = Annotated[int, Query(ge=1, le=100, description="neighbours per layer")]
MetricParam = Annotated[Literal["cosine", "euclidean"], Query(description="cosine (1 - cos) or euclidean")]
SpaceParam = Annotated[
    Literal["activations", "scores"],
    Query(description="search the stored activations (exact) or the layer's PCA scores (fast)"),
]


@router.get("/runs/{run}/select", response_class=Response, responses=BINARY)
def select(
    registry: RegistryDep,
    run: RunId,
    filter: FilterDep = None,
) -> Response:
    """The ids (int32, ascending) of the samples ``filter`` keeps (all without a filter);
    ``X-Count`` is their number, ``X-Total`` the run's."""
    served = registry.get(run)
    ids = np.flatnonzero(served.run.mask(filter)).astype("<i4")
    headers = {
        "X-Dtype": "int32",
        "X-Shape": str(len(ids)),
        "X-Count": str(len(ids)),
        "X-Total": str(served.run.n_samples),
    }
    return binary(ids.tobytes(), headers)


def nearest(
    registry: Registry, served: ServedRun, layer: str, sample_id: int, k: int, metric: str, space: str
) -> tuple[np.ndarray, np.ndarray]:
    """``layer.neighbors``, computed once per question and kept."""
    lay = served.layer(layer)
    key = ("neighbors", served.id, served.etag_key, layer, sample_id, k, metric, space)
    return registry.cache.get(key, lambda: lay.neighbors(sample_id, k, metric, space=space))  # type: ignore[arg-type]


def cached(
    registry: Registry, served: ServedRun, layers: list[str], sample_id: int, k: int, metric: str, space: str
) -> bool:
    keys = [("neighbors", served.id, served.etag_key, name, sample_id, k, metric, space) for name in layers]
    return all(key in registry.cache for key in keys)


def check_k(served: ServedRun, k: int) -> None:
    if k > served.run.n_samples - 1:
        raise HTTPException(
            422,
            f"k={k} must be at most {served.run.n_samples - 1}: "
            f"run {served.id!r} has {served.run.n_samples} samples",
        )


@router.get("/runs/{run}/samples/{sample_id}/neighbors")
async def sample_neighbors(
    request: Request,
    registry: RegistryDep,
    run: RunId,
    sample_id: SampleId,
    layer: Annotated[str, Query(min_length=1, description="a layer name of the run")],
    k: K = 10,
    metric: MetricParam = "cosine",
    space: SpaceParam = "activations",
) -> Neighbors:
    """The ``k`` samples nearest ``sample_id`` in ``layer``, nearest first (itself excluded)."""
    served = registry.get(run)
    served.check_sample(sample_id)
    served.layer(layer)
    check_k(served, k)

    def answer() -> Neighbors:
        ids, dist = nearest(registry, served, layer, sample_id, k, metric, space)
        labels = served.labels.display(ids) if served.labels is not None else [None] * len(ids)
        items = [
            Neighbor(id=i, distance=d, label=lab)
            for i, d, lab in zip(ids.tolist(), dist.tolist(), labels, strict=True)
        ]
        return Neighbors(sample=sample_id, layer=layer, k=k, metric=metric, space=space, neighbors=items)

    ready = cached(registry, served, [layer], sample_id, k, metric, space)
    return await heavy(request, answer, ready=ready)


@router.get("/runs/{run}/samples/{sample_id}/neighborhood")
async def neighborhood(
    request: Request,
    registry: RegistryDep,
    run: RunId,
    sample_id: SampleId,
    k: K = 10,
    metric: MetricParam = "cosine",
    space: SpaceParam = "activations",
    other: Annotated[
        str | None, Query(min_length=1, description="another run over the same samples (another model)")
    ] = None,
) -> Neighborhood:
    """The sample's ``k`` nearest in every layer, the k-NN overlap of each layer with the one
    before, and with ``other``, the overlap of every layer pair of the two runs."""
    served = registry.get(run)
    served.check_sample(sample_id)
    check_k(served, k)
    second = registry.get(other) if other is not None else None
    if second is not None:
        if second.run.n_samples != served.run.n_samples:
            raise HTTPException(
                422,
                f"run {other!r} has {second.run.n_samples} samples and run {run!r} {served.run.n_samples}: "
                "neighbourhoods compare only over the same samples",
            )
        mine, theirs = served.run.manifest.get("data") or {}, second.run.manifest.get("data") or {}
        a, b = mine.get("content_hash"), theirs.get("content_hash")
        if a and b and a != b:
            raise HTTPException(
                422,
                f"runs {run!r} and {other!r} hold different data: "
                "neighbourhoods compare only over the same samples",
            )

    def answer() -> Neighborhood:
        found = {
            name: nearest(registry, served, name, sample_id, k, metric, space)[0]
            for name in served.run.layers
        }
        rows, previous = [], None
        for name, ids in found.items():
            overlap: float | None = knn_overlap(previous, ids) if previous is not None else None
            rows.append(NeighborhoodLayer(layer=name, ids=ids.tolist(), overlap_previous=overlap))
            previous = ids
        other_layers: list[str] = []
        matrix: list[list[float]] = []
        if second is not None:
            other_layers = second.run.layers
            theirs = [
                nearest(registry, second, name, sample_id, k, metric, space)[0] for name in other_layers
            ]
            matrix = [[knn_overlap(ids, t) for t in theirs] for ids in found.values()]
        return Neighborhood(
            sample=sample_id, k=k, metric=metric, space=space, layers=rows,
            other=other, other_layers=other_layers, overlap=matrix,
        )  # fmt: skip

    ready = cached(registry, served, served.run.layers, sample_id, k, metric, space) and (
        second is None or cached(registry, second, second.run.layers, sample_id, k, metric, space)
    )
    return await heavy(request, answer, ready=ready)
