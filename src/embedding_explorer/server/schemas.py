"""The JSON answers of the HTTP API, as pydantic models (mirrored by the frontend's API types).

Per-sample arrays (scores, column values) are not here: they travel as binary bodies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

JsonScalar = int | float | str | bool | None


class LabelsInfo(BaseModel):
    present: bool
    names: list[str] | None
    values: list[JsonScalar]


class ColumnInfo(BaseModel):
    name: str
    kind: Literal["categorical", "numeric"]
    categories: list[str] | None


class LayerInfo(BaseModel):
    name: str
    dim: int
    n_components: int
    explained_variance_ratio: list[float]
    total_variance: float
    pca_method: str


class RunInfo(BaseModel):
    id: str
    version: str  # changes with the run's content; sample URLs carry it (?v=) for caching
    name: str
    n_samples: int
    model_class: str | None
    rendering_kind: Literal["image/png", "text/plain"] | None
    labels: LabelsInfo
    columns: list[ColumnInfo]
    layers: list[LayerInfo]


class SampleRef(BaseModel):
    id: int
    score: float
    label: str | None


class ComponentGallery(BaseModel):
    index: int
    explained_variance_ratio: float
    low: list[SampleRef]
    high: list[SampleRef]


class Gallery(BaseModel):
    layer: str
    components: list[ComponentGallery]


class QuantileSamples(BaseModel):
    q: float
    value: float
    samples: list[SampleRef]


class HistogramOut(BaseModel):
    edges: list[float]
    counts: list[int]
    by_label: dict[str, list[int]] | None


class SampleDetail(BaseModel):
    id: int
    label: str | None
    label_value: JsonScalar
    metadata: dict[str, Any]
    layer: str | None
    scores: list[float] | None
    percentiles: list[float] | None


class TextItem(BaseModel):
    id: int
    text: str


class ImageItem(BaseModel):
    id: int
    data_url: str


class Renderings(BaseModel):
    kind: Literal["image/png", "text/plain"]
    items: list[TextItem] | list[ImageItem]


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class AssociationColumn(BaseModel):
    """How one label or metadata column relates to each component of a layer."""

    name: str
    kind: Literal["categorical", "numeric"]
    statistic: Literal["eta2", "r"]  # eta squared (categorical) or Pearson r (numeric)
    values: list[float | None]  # one per component; None where undefined
    summaries: list[str]  # one per component, e.g. "separates Sandal, Sneaker from Coat"


class Associations(BaseModel):
    layer: str
    columns: list[AssociationColumn]
    skipped: dict[str, str]  # column -> why it has no statistics (e.g. a single value)


class PCCorrelation(BaseModel):
    run_a: str
    layer_a: str
    run_b: str
    layer_b: str
    r: list[list[float | None]]  # (k_a, k_b) Pearson correlations of component scores
    ratio_a: list[float]
    ratio_b: list[float]


class CKATable(BaseModel):
    run_a: str
    run_b: str
    layers_a: list[str]
    layers_b: list[str]
    cka: list[list[float | None]]  # layers_a x layers_b


class MatchedPair(BaseModel):
    component_a: int
    component_b: int
    r: float  # |r|
    sign: int  # +1 or -1: component_b is sign * component_a's direction
    ratio_a: float
    ratio_b: float


class MatchedComponents(BaseModel):
    run_a: str
    layer_a: str
    run_b: str
    layer_b: str
    pairs: list[MatchedPair]
