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
    MultipleCallsError,
    NonFiniteActivationError,
    RunLockedError,
    RunReplacedError,
    ZeroVarianceWarning,
)
from .explore import explore
from .export import export_run
from .layers import LayerInfo, list_layers
from .models import from_state_dict
from .pca import PCAResult, StreamingPCA
from .probe import ScoreProbe
from .reducers import Reducer
from .render import ImageRender
from .run import Histogram, Layer, Run, open_run
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
    "Histogram",
    "ICAConvergenceWarning",
    "ICAResult",
    "ImageRender",
    "IncompleteRunError",
    "Layer",
    "LayerInfo",
    "LayerNotFoundError",
    "LayerOutputError",
    "ManifestError",
    "ModelComparison",
    "MultipleCallsError",
    "NonFiniteActivationError",
    "PCAResult",
    "Reducer",
    "Run",
    "RunLockedError",
    "RunReplacedError",
    "ScoreProbe",
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
    "list_layers",
    "open_run",
    "pc_correlation",
    "serve",
    "show",
    "text_batches",
    "vectors_from_path",
]
