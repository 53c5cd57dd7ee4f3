"""A user's own files named on the command line: a model factory in a ``.py`` file, a tensor file.

``path/to/file.py:factory`` imports that file as a module (it runs, as ``python file.py`` would:
name only files you trust) and calls ``factory()``, which must return a ``torch.nn.Module``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .exceptions import EmbeddingExplorerError


def module_from_factory(spec: str) -> nn.Module:
    """The module ``factory()`` returns, for ``spec`` = ``path/to/file.py:factory``."""
    path_text, sep, factory = spec.rpartition(":")
    if not sep or not path_text.endswith(".py") or not factory.isidentifier():
        raise EmbeddingExplorerError(
            f"model spec {spec!r} is not path/to/file.py:factory (a .py file and a function in it)"
        )
    path = Path(path_text)
    if not path.is_file():
        raise EmbeddingExplorerError(f"model spec {spec!r}: no file {path}")
    name = f"_ee_model_{abs(hash(path.resolve()))}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise EmbeddingExplorerError(f"model spec {spec!r}: {path} cannot be imported")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up by name
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    build = getattr(module, factory, None)
    if not callable(build):
        found = ", ".join(sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")))
        raise EmbeddingExplorerError(
            f"model spec {spec!r}: {path} has no function {factory!r}; it defines {found or 'none'}"
        )
    model = build()
    if not isinstance(model, nn.Module):
        raise EmbeddingExplorerError(
            f"model spec {spec!r}: {factory}() returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


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


__all__ = ["module_from_factory", "tensor_from_file"]
