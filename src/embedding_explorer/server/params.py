"""The parameters the routes share: typed path and query parameters, and the server's state.

A route handler is a module-level function: the served runs (:class:`.registry.Registry`), the
directions (:class:`.directions.Directions`), the histograms computed (a bounded
:class:`.answers.Cache`: they are keyed by what a client asks, directions included) and the
``Cache-Control`` of cacheable answers come in as FastAPI dependencies read from ``app.state``
(set by :func:`.app.create_app`), so a test can also call a handler directly with its own registry:

>>> gallery(registry, directions, "my-run", "fc", n=4)     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Path, Query, Request

from ..filters import Filter, FilterError, as_filter
from .answers import Cache
from .directions import Directions
from .registry import Registry


def registry_of(request: Request) -> Registry:
    return cast(Registry, request.app.state.registry)


def directions_of(request: Request) -> Directions:
    return cast(Directions, request.app.state.directions)


def histograms_of(request: Request) -> Cache:
    return cast(Cache, request.app.state.histograms)


def cache_control_of(request: Request) -> str:
    return cast(str, request.app.state.cache_control)


RegistryDep = Annotated[Registry, Depends(registry_of)]
DirectionsDep = Annotated[Directions, Depends(directions_of)]
HistogramsDep = Annotated[Cache, Depends(histograms_of)]
CacheControl = Annotated[str, Depends(cache_control_of)]

RunId = Annotated[str, Path(description="a run id from /api/runs")]
LayerName = Annotated[str, Path(description="a layer name of the run")]
ComponentIndex = Annotated[int, Path(ge=0, description="component index, 0-based")]
SampleId = Annotated[int, Path(ge=0, description="sample id: its position in the data set")]
Count = Annotated[int, Query(ge=1, le=200, description="samples per list")]
Bins = Annotated[int, Query(ge=1, le=200, description="number of quantile bins")]
Quantile = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False, description="quantile in [0, 1]")]
BasisParam = Annotated[
    str, Query(max_length=80, description="what to probe along: 'pca', 'ica' or 'dir:<id>' (a direction)")
]
RunQuery = Annotated[str, Query(min_length=1, description="a run id from /api/runs")]
OtherRunQuery = Annotated[str | None, Query(min_length=1, description="the other run's id; default: run_a")]
LayerQuery = Annotated[str, Query(min_length=1, description="a layer name of that run")]

FILTER_HELP = (
    'JSON of the samples to keep, e.g. {"labels": ["Shirt"], "hide": [], "ranges": {"brightness": '
    '[0.2, null]}, "flags": {"correct": false}, "query": "sleeve"}; every field optional'
)
MAX_FILTER = 4000  # characters of a filter's JSON


def filter_of(
    filter: Annotated[str | None, Query(max_length=MAX_FILTER, description=FILTER_HELP)] = None,
) -> Filter | None:
    """The ``?filter=`` of a request, parsed and checked once (a 422 names the field at fault);
    what it names is checked against the run when it is applied."""
    try:
        return as_filter(filter)
    except FilterError as exc:
        raise HTTPException(422, f"query parameter 'filter': {exc}") from None


FilterDep = Annotated[Filter | None, Depends(filter_of)]
