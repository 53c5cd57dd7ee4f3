"""Models and data named by strings, for ``embedding-explorer explore`` and ``ee.explore``.

>>> model = ee.load_model("timm:resnet18")                              # doctest: +SKIP
>>> data = ee.load_data("photos/", model, limit=2000)                   # doctest: +SKIP
>>> run = ee.explore(model, data, ["layer3"])                           # doctest: +SKIP
>>> run = ee.explore("timm:resnet18", "photos/", ["layer3"])            # the same, in one line
"""

from __future__ import annotations

from .audio import AudioFiles
from .data import DATA_KINDS, DataKind, DataOptions, LoadedData, load_data, register_data_kind
from .images import ImageFiles, default_transform
from .models import PREFIXES, LoadedModel, load_model

__all__ = [
    "DATA_KINDS",
    "PREFIXES",
    "AudioFiles",
    "DataKind",
    "DataOptions",
    "ImageFiles",
    "LoadedData",
    "LoadedModel",
    "default_transform",
    "load_data",
    "load_model",
    "register_data_kind",
]
