"""A user's own tensor file named on the command line (``layers --data x.npy``). Model files
(``path/to/file.py:factory``) are read by :mod:`.specs.models`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .exceptions import EmbeddingExplorerError


def tensor_from_file(path_text: str) -> torch.Tensor:
    """A tensor saved with ``numpy.save`` (``.npy``) or ``torch.save`` (``.pt``, ``weights_only``)."""
    path = Path(path_text)
    if not path.is_file():
        raise EmbeddingExplorerError(f"data {path_text!r}: no such file")
    if path.suffix == ".npy":
        return torch.from_numpy(np.load(path, mmap_mode="r")[:2].copy())
    if path.suffix in (".pt", ".pth"):
        value: Any = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(value, torch.Tensor):
            return value
        raise EmbeddingExplorerError(f"data {path_text!r} holds a {type(value).__name__}, not a tensor")
    raise EmbeddingExplorerError(f"data {path_text!r}: give a .npy or .pt tensor file")


__all__ = ["tensor_from_file"]
