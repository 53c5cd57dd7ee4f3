"""Embedding Explorer: what the layers of a PyTorch model have learned.

>>> import embedding_explorer as ee
>>> run = ee.explore(model, data, ["layer3", "fc"])      # doctest: +SKIP
>>> run["fc"].explained_variance_ratio                   # doctest: +SKIP
"""

from __future__ import annotations

from ._version import __version__
from .analysis import (
    DatasetComparison,
    ModelComparison,
    association,
    cka,
    cka_matrix,
    compare_datasets,
    compare_models,
    extreme_makeup,
    knn_overlap,
    neighbor_overlap,
    pc_correlation,
)
from .analysis.directions import Direction
from .analysis.ica import ICAResult
from .exceptions import (
    DamagedRunError,
    DataOrderError,
    EmbeddingExplorerError,
    ICAConvergenceWarning,
    IncompleteRunError,
    LayerNotFoundError,
    LayerOutputError,
    ManifestError,
    MissingExtraError,
    MultipleCallsError,
    NonFiniteActivationError,
    RunLockedError,
    RunReplacedError,
    SpecError,
    ZeroVarianceWarning,
)
from .explore import explore
from .export import export_run
from .filters import Filter, FilterError
from .layers import LayerInfo, list_layers
from .models import from_state_dict
from .pca import PCAResult, StreamingPCA
from .probe import ScoreProbe
from .reducers import Reducer
from .render import ImageRender
from .run import Histogram, Layer, Run, open_run
from .specs import LoadedData, LoadedModel, load_data, load_model
from .text import TextBatches, text_batches
from .vectors import from_arrays, vectors_from_path

_SERVER_NAMES = ("serve", "show")


def __getattr__(name: str) -> object:
    """``serve`` and ``show`` load the web server (FastAPI) only when first used."""
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module 'embedding_explorer' has no attribute {name!r}")


__all__ = [
    "DamagedRunError",
    "DataOrderError",
    "DatasetComparison",
    "Direction",
    "EmbeddingExplorerError",
    "Filter",
    "FilterError",
    "Histogram",
    "ICAConvergenceWarning",
    "ICAResult",
    "ImageRender",
    "IncompleteRunError",
    "Layer",
    "LayerInfo",
    "LayerNotFoundError",
    "LayerOutputError",
    "LoadedData",
    "LoadedModel",
    "ManifestError",
    "MissingExtraError",
    "ModelComparison",
    "MultipleCallsError",
    "NonFiniteActivationError",
    "PCAResult",
    "Reducer",
    "Run",
    "RunLockedError",
    "RunReplacedError",
    "ScoreProbe",
    "SpecError",
    "StreamingPCA",
    "TextBatches",
    "ZeroVarianceWarning",
    "__version__",
    "association",
    "cka",
    "cka_matrix",
    "compare_datasets",
    "compare_models",
    "explore",
    "export_run",
    "extreme_makeup",
    "from_arrays",
    "from_state_dict",
    "knn_overlap",
    "list_layers",
    "load_data",
    "load_model",
    "neighbor_overlap",
    "open_run",
    "pc_correlation",
    "serve",
    "show",
    "text_batches",
    "vectors_from_path",
]
