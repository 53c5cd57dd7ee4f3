"""Embedding Explorer: what the layers of a PyTorch model have learned.

>>> import embedding_explorer as ee
>>> run = ee.explore(model, data, ["layer3", "fc"])      # doctest: +SKIP
>>> run["fc"].explained_variance_ratio                   # doctest: +SKIP
"""

from __future__ import annotations

from ._version import __version__
from .analysis import (
    ModelComparison,
    association,
    cka,
    cka_matrix,
    compare_models,
    extreme_makeup,
    pc_correlation,
)
from .exceptions import (
    DataOrderError,
    EmbeddingExplorerError,
    IncompleteRunError,
    LayerNotFoundError,
    LayerOutputError,
    MultipleCallsError,
    NonFiniteActivationError,
    ZeroVarianceWarning,
)
from .explore import explore
from .reducers import Reducer
from .render import ImageRender
from .run import Histogram, Layer, Run, open_run
from .stats import PCAResult, StreamingPCA
from .text import TextBatches, text_batches

_SERVER_NAMES = ("serve", "show")


def __getattr__(name: str) -> object:
    """``serve`` and ``show`` load the web server (FastAPI) only when first used."""
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module 'embedding_explorer' has no attribute {name!r}")


__all__ = [
    "DataOrderError",
    "EmbeddingExplorerError",
    "Histogram",
    "ImageRender",
    "IncompleteRunError",
    "Layer",
    "LayerNotFoundError",
    "LayerOutputError",
    "ModelComparison",
    "MultipleCallsError",
    "NonFiniteActivationError",
    "PCAResult",
    "Reducer",
    "Run",
    "StreamingPCA",
    "TextBatches",
    "ZeroVarianceWarning",
    "__version__",
    "association",
    "cka",
    "cka_matrix",
    "compare_models",
    "explore",
    "extreme_makeup",
    "open_run",
    "pc_correlation",
    "serve",
    "show",
    "text_batches",
]
