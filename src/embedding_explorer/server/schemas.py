"""The JSON answers of the HTTP API, as pydantic models (mirrored by the frontend's API types).

Per-sample arrays (scores, column values) are not here: they travel as binary bodies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

JsonScalar = int | float | str | bool | None


class LabelsInfo(BaseModel):
    present: bool
    names: list[str] | None
    values: list[JsonScalar]


class ColumnInfo(BaseModel):
    name: str
    kind: Literal["categorical", "numeric"]
    categories: list[str] | None
    # where the column comes from: the labels, metadata given to explore, an input statistic
    # recorded by explore (embedding_explorer.inputstats) or the model's outputs (.outputs)
    source: Literal["label", "metadata", "input_statistic", "output"] = "metadata"


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
    model_fingerprint: str | None  # runs of one model share it (data-set comparison pairs them)
    data_fingerprint: str | None  # differs between data sets
    rendering_kind: Literal["image/png", "text/plain", "audio/wav"] | None
    labels: LabelsInfo
    columns: list[ColumnInfo]
    layers: list[LayerInfo]
    per_token: bool = False  # samples are tokens (text_id, position, token): /api/runs/{run}/tokens


class SampleRef(BaseModel):
    id: int
    score: float
    label: str | None


class ComponentGallery(BaseModel):
    index: int
    name: str  # "PC 1", "IC 1", or a direction's name
    explained_variance_ratio: float | None  # PCA only
    kurtosis: float | None = None  # ICA only: excess kurtosis
    low: list[SampleRef]
    high: list[SampleRef]


class Gallery(BaseModel):
    layer: str
    basis: str  # "pca", "ica" or "dir:<id>"
    kind: Literal["pca", "ica", "direction"]
    separation: float | None = None  # a direction only
    components: list[ComponentGallery]


class QuantileSamples(BaseModel):
    q: float
    value: float | None  # None when the filter keeps no sample
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
    basis: str | None = None
    scores: list[float] | None
    percentiles: list[float] | None


class TextItem(BaseModel):
    id: int
    text: str


class ImageItem(BaseModel):
    id: int
    data_url: str


class Renderings(BaseModel):
    """Texts, or PNG data URLs: the thumbnails of images, the spectrograms of audio clips."""

    kind: Literal["image/png", "text/plain", "audio/wav"]
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
    summaries: list[str]  # one per component, e.g. "high: Coat · low: Sandal, Sneaker"


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


class BasisInfo(BaseModel):
    """The components of one basis of a layer: its PCA, its ICA, or a direction."""

    layer: str
    basis: str  # "pca", "ica" or "dir:<id>"
    kind: Literal["pca", "ica", "direction"]
    n_components: int
    names: list[str]
    explained_variance_ratio: list[float] | None  # PCA only
    kurtosis: list[float] | None  # ICA only: excess kurtosis per component
    separation: float | None  # a direction only


class DirectionIn(BaseModel):
    """Two groups: two label values, or two lists of sample ids (e.g. lasso selections)."""

    model_config = ConfigDict(extra="forbid")

    label_a: str | int | float | bool | None = None
    label_b: str | int | float | bool | None = None
    ids_a: list[StrictInt] | None = Field(default=None, max_length=10_000_000)  # true is not sample 1
    ids_b: list[StrictInt] | None = Field(default=None, max_length=10_000_000)
    name: str | None = Field(default=None, max_length=200)


class DirectionOut(BaseModel):
    id: str
    basis: str  # "dir:<id>": the basis parameter that probes it
    run: str
    layer: str
    name: str
    # (mean B - mean A) along it / pooled std of the two groups; None when it cannot be measured
    # (single-sample groups) or is infinite (neither group spreads along it)
    separation: float | None
    n_a: int
    n_b: int
    label_a: str | None  # the label names it was made from, if any
    label_b: str | None


class ShiftRow(BaseModel):
    """How the other data set sits on one reference component, against the reference."""

    index: int
    name: str
    explained_variance_ratio: float  # in the reference
    w1_total_sd: float | None  # Wasserstein-1 over the reference layer's total SD (the default ranking)
    smd: float | None  # standardised mean difference (other - reference) / pooled std
    ks: float | None  # two-sample Kolmogorov-Smirnov statistic
    ks_pvalue: float | None
    wasserstein: float | None
    mean_reference: float | None
    mean_other: float | None
    std_reference: float | None
    std_other: float | None


class CapturedVariance(BaseModel):
    k: list[int]  # 1..K
    reference_components: list[float | None]  # share of the other set's variance, by the reference's top k
    own_components: list[float | None]  # ... and by its own top k


class DatasetShift(BaseModel):
    run_a: str  # the reference
    run_b: str
    layer: str
    layers: list[str]  # layers both runs have that compare (a layer that differs is left out)
    n_reference: int
    n_other: int
    components: list[ShiftRow]  # largest |smd| first
    captured: CapturedVariance


class DatasetHistogram(BaseModel):
    component: int
    edges: list[float]
    reference: list[int]
    other: list[int]


class DatasetEnds(BaseModel):
    low: list[SampleRef]  # lowest first
    high: list[SampleRef]  # highest first


class DatasetExtremes(BaseModel):
    component: int
    reference: DatasetEnds
    other: DatasetEnds


class Neighbor(BaseModel):
    id: int
    distance: float
    label: str | None


class Neighbors(BaseModel):
    sample: int
    layer: str
    k: int
    metric: Literal["cosine", "euclidean"]
    space: Literal["activations", "scores"]
    neighbors: list[Neighbor]  # nearest first, the sample itself excluded


class NeighborhoodLayer(BaseModel):
    layer: str
    ids: list[int]  # the k nearest, nearest first
    overlap_previous: float | None  # |N ∩ N_previous layer| / k; None for the first layer


class Neighborhood(BaseModel):
    """How one sample's k nearest neighbours change from layer to layer, and against another run
    over the same samples (``overlap``: rows this run's layers, columns the other's)."""

    sample: int
    k: int
    metric: Literal["cosine", "euclidean"]
    space: Literal["activations", "scores"]
    layers: list[NeighborhoodLayer]
    other: str | None
    other_layers: list[str]
    overlap: list[list[float]]


class Insight(BaseModel):
    """One finding of ``run.insights()``: its sentence, figures and the view that shows it."""

    kind: str
    layer: str | None
    component: int | None
    column: str | None
    strength: float  # 0..1, findings come strongest first
    sentence: str
    statistic: float | None  # the figure the finding's threshold is on
    other: str | None  # the compared run, for data-set and model comparisons
    target: dict[str, str | int | float]  # the UI's URL query parameters of the view that shows it


class Insights(BaseModel):
    """A run's findings, strongest first."""

    run: str
    compare: list[str]
    insights: list[Insight]
