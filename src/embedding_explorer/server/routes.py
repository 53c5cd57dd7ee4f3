"""The ``/api`` routes of runs, probing and samples: JSON for small answers, binary float32/int32
bodies for per-sample arrays.

Handlers are module-level functions registered on :data:`router`; their state (the served runs,
the directions) comes in as dependencies (:mod:`.params`), so a test can call one directly.
Routes that do numpy work are plain ``def``: FastAPI runs them in its thread pool. Lookups raise
:class:`.errors.NotFoundError` (404) and parameter checks answer 422, each with a message that
names what is valid (:mod:`.errors`).

The probing routes take ``basis`` (default ``pca``): the layer's ICA or a direction made
through ``POST .../directions`` are probed by the very same code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response

from .._version import __version__
from ..clips import AUDIO, spectrogram_png
from .answers import BINARY, binary, data_url, etag, finite, narrow_codes, not_modified, refs
from .bases import Basis, check_component, ica_fitted_first, resolve_basis, variance_ratios
from .columns import column_source, json_value
from .directions import Directions
from .errors import NotFoundError
from .params import (
    BasisParam,
    Bins,
    CacheControl,
    ComponentIndex,
    Count,
    DirectionsDep,
    FilterDep,
    HistogramsDep,
    LayerName,
    Quantile,
    RegistryDep,
    RunId,
    SampleId,
)
from .quantized import quantize
from .registry import Registry, ServedRun
from .schemas import (
    ColumnInfo,
    ComponentGallery,
    Gallery,
    Health,
    HistogramOut,
    ImageItem,
    LabelsInfo,
    LayerInfo,
    QuantileSamples,
    Renderings,
    RunInfo,
    SampleDetail,
    SampleRef,
    TextItem,
)

MAX_IDS = 1000  # sample ids per batched renderings request
IfNoneMatch = Annotated[str | None, Header(description="ETags the client holds")]
ScoresDtype = Annotated[
    Literal["float32", "uint16"], Query(description="float32 (exact) or uint16 (quantised for drawing)")
]

router = APIRouter(prefix="/api", dependencies=[Depends(ica_fitted_first)])


def basis_of(
    registry: Registry, directions: Directions, run: str, layer: str, basis: str
) -> tuple[ServedRun, Basis]:
    served = registry.get(run)
    return served, resolve_basis(served, served.layer(layer), basis, directions)


@router.get("/health")
async def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/runs")
def runs(registry: RegistryDep) -> list[RunInfo]:
    return [run_info(served) for served in registry]


@router.get("/runs/{run}/layers/{layer}/gallery")
def gallery(
    registry: RegistryDep,
    directions: DirectionsDep,
    run: RunId,
    layer: LayerName,
    n: Count = 8,
    basis: BasisParam = "pca",
    filter: FilterDep = None,
) -> Gallery:
    """Each component's ``n`` lowest and highest samples (among those ``filter`` keeps)."""
    served, b = basis_of(registry, directions, run, layer, basis)
    components = []
    for c in range(b.n_components):
        low, high = b.probe.extremes(c, n, filter=filter)
        components.append(
            ComponentGallery(
                index=c,
                name=b.names[c],
                explained_variance_ratio=b.explained_variance_ratio[c]
                if b.explained_variance_ratio
                else None,
                kurtosis=ratio(b.kurtosis, c),
                low=sample_refs(served, b, c, low),
                high=sample_refs(served, b, c, high),
            )
        )
    return Gallery(
        layer=b.layer.name, basis=b.key, kind=b.kind, separation=b.separation, components=components
    )


@router.get("/runs/{run}/layers/{layer}/components/{c}/quantile")
def quantile(
    registry: RegistryDep,
    directions: DirectionsDep,
    run: RunId,
    layer: LayerName,
    c: ComponentIndex,
    q: Quantile = 0.5,
    n: Count = 8,
    basis: BasisParam = "pca",
    filter: FilterDep = None,
) -> QuantileSamples:
    """The ``n`` samples nearest the ``q``-quantile (of the samples ``filter`` keeps)."""
    served, b = basis_of(registry, directions, run, layer, basis)
    check_component(b, c)
    ids = b.probe.quantile_samples(c, q, n, filter=filter)
    value = finite(b.probe.quantile(c, q, filter=filter))
    return QuantileSamples(q=q, value=value, samples=sample_refs(served, b, c, ids))


@router.get("/runs/{run}/layers/{layer}/components/{c}/histogram")
def histogram(
    registry: RegistryDep,
    directions: DirectionsDep,
    histograms: HistogramsDep,
    run: RunId,
    layer: LayerName,
    c: ComponentIndex,
    bins: Bins = 30,
    by_label: bool = False,
    basis: BasisParam = "pca",
    filter: FilterDep = None,
) -> HistogramOut:
    """Scores on component ``c`` in quantile bins (of the samples ``filter`` keeps)."""
    served, b = basis_of(registry, directions, run, layer, basis)
    check_component(b, c)
    key = (served.id, served.etag_key, layer, b.key, c, bins, by_label, filter)
    hist = histograms.get(key, lambda: b.probe.histogram(c, bins, by_label=by_label, filter=filter))
    split = None
    if hist.by_label is not None:
        split = {}
        for value, row in hist.by_label.items():
            name = served.run.label_name(value)
            if name in split:  # two labels shown alike: keep both, told apart by value
                name = f"{name} ({value})"
            split[name] = row.tolist()
    return HistogramOut(edges=hist.edges.tolist(), counts=hist.counts.tolist(), by_label=split)


@router.get("/runs/{run}/layers/{layer}/scores", response_class=Response, responses=BINARY)
def scores(
    registry: RegistryDep,
    directions: DirectionsDep,
    run: RunId,
    layer: LayerName,
    components: Annotated[str | None, Query(description="comma-separated indices; default all")] = None,
    basis: BasisParam = "pca",
    filter: FilterDep = None,
    dtype: ScoresDtype = "float32",
) -> Response:
    """(N, K) float32 scores; with ``filter``, the rows of the samples it keeps, in id order
    (their ids: ``/runs/{run}/select``). ``dtype=uint16``: each column quantised over its finite
    range for drawing (half the bytes), ``X-Bounds: lo0,hi0,lo1,hi1,...``; code q stands for
    lo + q (hi - lo) / 65534 within half a step, 65535 for a value that is not finite."""
    served, b = basis_of(registry, directions, run, layer, basis)
    values = b.probe.scores
    columns = parse_components(components, b)
    block = values if columns == list(range(b.n_components)) else values[:, columns]
    if filter is not None:
        block = block[served.run.mask(filter)]
    shape = f"{block.shape[0]},{len(columns)}"
    if dtype == "uint16":
        q = quantize(block)
        headers = {"X-Shape": shape, "X-Dtype": "uint16", "X-Bounds": q.header()}
        return binary(q.codes.tobytes(), headers)
    body = np.ascontiguousarray(block, dtype="<f4").tobytes()
    return binary(body, {"X-Shape": shape, "X-Dtype": "float32"})


@router.get("/runs/{run}/columns/{name:path}/values", response_class=Response, responses=BINARY)
def column_values(registry: RegistryDep, run: RunId, name: str) -> Response:
    """A per-sample column: float32 values (NaN missing), or category codes (-1 missing) as
    int8, int16 or int32, the narrowest that holds them (``X-Dtype``)."""
    column = registry.get(run).column(name)
    values = (
        narrow_codes(column.values)
        if column.kind == "categorical"
        else column.values.astype("<f4", copy=False)
    )
    headers = {"X-Dtype": values.dtype.name, "X-Kind": column.kind, "X-Shape": str(len(values))}
    return binary(values.tobytes(), headers)


@router.get("/runs/{run}/samples/{sample_id}")
def sample(
    registry: RegistryDep,
    directions: DirectionsDep,
    run: RunId,
    sample_id: SampleId,
    layer: str | None = None,
    basis: BasisParam = "pca",
) -> SampleDetail:
    served = registry.get(run)
    served.check_sample(sample_id)
    b = basis_of(registry, directions, run, layer, basis)[1] if layer is not None else None
    table = served.run.samples
    metadata = {col: json_value(table[col].iat[sample_id]) for col in served.metadata_columns}
    label, label_value = None, None
    if served.labels is not None:
        code = int(served.labels.codes[sample_id])
        if code >= 0:
            label, label_value = served.labels.names[code], served.labels.values[code]
    return SampleDetail(
        id=sample_id,
        label=label,
        label_value=label_value,
        metadata=metadata,
        layer=b.layer.name if b is not None else None,
        basis=b.key if b is not None else None,
        scores=b.probe.scores[sample_id].astype(float).tolist() if b is not None else None,
        percentiles=b.probe.percentiles(sample_id).tolist() if b is not None else None,
    )


@router.get(
    "/runs/{run}/samples/{sample_id}/render",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "text/plain": {}, "audio/wav": {}}},
        304: {"description": "cached"},
    },
)
def render(
    registry: RegistryDep,
    cache_control: CacheControl,
    run: RunId,
    sample_id: SampleId,
    spectrogram: Annotated[
        bool, Query(description="an audio sample's spectrogram (PNG) rather than its clip (WAV)")
    ] = False,
    if_none_match: IfNoneMatch = None,
) -> Response:
    served = registry.get(run)
    kind = rendering_kind(served)
    served.check_sample(sample_id)
    key = f"{sample_id}{'s' if spectrogram else ''}"
    headers = {"ETag": etag(served, key), "Cache-Control": cache_control}
    if not_modified(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    data = stored_rendering(served, sample_id)
    if spectrogram and kind == AUDIO:
        return Response(spectrogram_png(data), media_type="image/png", headers=headers)
    media = "text/plain; charset=utf-8" if kind == "text/plain" else kind
    return Response(data, media_type=media, headers=headers)


@router.get("/runs/{run}/renderings", response_model=Renderings, responses={304: {"description": "cached"}})
def renderings(
    registry: RegistryDep,
    cache_control: CacheControl,
    run: RunId,
    response: Response,
    ids: Annotated[str, Query(description=f"comma-separated sample ids, at most {MAX_IDS}")],
    if_none_match: IfNoneMatch = None,
) -> Any:
    served = registry.get(run)
    kind = rendering_kind(served)
    sample_ids = parse_ids(ids, served)
    headers = {"ETag": etag(served, ",".join(map(str, sample_ids))), "Cache-Control": cache_control}
    if not_modified(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    blobs = [stored_rendering(served, i) for i in sample_ids]
    if kind == "text/plain":
        pairs = zip(sample_ids, blobs, strict=True)
        texts = [TextItem(id=i, text=b.decode("utf-8", errors="replace")) for i, b in pairs]
        return Renderings(kind="text/plain", items=texts)
    if kind == AUDIO:  # thumbnails of clips are their spectrograms
        blobs = [spectrogram_png(b) for b in blobs]
    images = [ImageItem(id=i, data_url=data_url(b)) for i, b in zip(sample_ids, blobs, strict=True)]
    return Renderings(kind="audio/wav" if kind == AUDIO else "image/png", items=images)


def run_info(served: ServedRun) -> RunInfo:
    run = served.run
    layers = []
    for lay in run:
        layers.append(
            LayerInfo(
                name=lay.name,
                dim=lay.dim,
                n_components=lay.n_components,
                explained_variance_ratio=variance_ratios(lay),
                total_variance=lay.total_variance,
                pca_method=lay.pca_method,
            )
        )
    coding = served.labels
    return RunInfo(
        id=served.id,
        version=served.etag_key,
        name=run.name,
        n_samples=run.n_samples,
        model_class=run.manifest.get("model", {}).get("class"),
        model_fingerprint=(run.manifest.get("model") or {}).get("fingerprint"),
        data_fingerprint=data_fingerprint(run.manifest),
        rendering_kind=run.rendering_kind,  # type: ignore[arg-type]  # validated by pydantic
        labels=LabelsInfo(
            present=coding is not None,
            names=run.label_names,
            values=coding.values if coding is not None else [],
        ),
        columns=[
            ColumnInfo(
                name=c.name, kind=c.kind, categories=c.categories, source=column_source(served.run, c.name)
            )
            for c in served.columns.values()
        ],
        layers=layers,
        per_token={"text_id", "position", "token"} <= set(served.metadata_columns),
    )


def data_fingerprint(manifest: dict[str, Any]) -> str | None:
    data = manifest.get("data") or {}
    value = data.get("content_hash") or data.get("fingerprint")
    return str(value) if value else None


def sample_refs(served: ServedRun, basis: Basis, component: int, ids: np.ndarray) -> list[SampleRef]:
    return refs(served, ids, basis.probe.scores[ids, component])


def ratio(values: list[float] | None, c: int) -> float | None:
    return values[c] if values is not None else None


def parse_components(text: str | None, basis: Basis) -> list[int]:
    k = basis.n_components
    if text is None:
        return list(range(k))
    try:
        columns = [int(part) for part in text.split(",")]
    except ValueError:
        raise HTTPException(
            422, f"components={text!r} must be comma-separated component indices, e.g. '0,1'"
        ) from None
    bad = [c for c in columns if not 0 <= c < k]
    if bad:
        raise HTTPException(
            422,
            f"components {bad} are out of range for {basis.key} of layer {basis.layer.name!r}: "
            f"it has {k} (0..{k - 1})",
        )
    if len(set(columns)) != len(columns):
        raise HTTPException(422, f"components={text!r} repeats a component")
    return columns


def parse_ids(text: str, served: ServedRun) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise HTTPException(
            422, f"ids={text[:80]!r} must be comma-separated sample ids, e.g. '0,5,9'"
        ) from None
    if len(ids) > MAX_IDS:
        raise HTTPException(422, f"ids lists {len(ids)} samples; at most {MAX_IDS} per request")
    for i in ids:
        served.check_sample(i)
    return ids


def rendering_kind(served: ServedRun) -> str:
    kind = served.run.rendering_kind
    if kind is None:
        raise no_renderings(served)
    return kind


def stored_rendering(served: ServedRun, sample_id: int) -> bytes:
    data = served.run.rendering(sample_id)
    if data is None:
        raise no_renderings(served)
    return data


def no_renderings(served: ServedRun) -> NotFoundError:
    return NotFoundError(
        f"run {served.id!r} has no sample renderings (its samples were neither images nor given "
        "texts; pass render=... to explore)",
    )
