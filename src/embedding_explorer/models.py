"""What ``explore`` accepts as a model: a module or a zero-argument factory returning one.

A factory lets Dask workers build their own copy of the model (a module is sent to them
pickled); the driver builds it once too, for the fingerprint and the layer names.
:func:`from_state_dict` makes such a factory from a class and a saved ``state_dict``. A path is
refused: TorchScript modules take no forward hooks (and ``torch.jit`` is deprecated), and a
whole pickled module would run arbitrary code when loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .exceptions import EmbeddingExplorerError

ModelSpec = nn.Module | Callable[[], nn.Module] | None


@dataclass(frozen=True)
class StateDictFactory:
    """Builds ``build()`` and loads the weights saved at ``path`` (``weights_only=True``)."""

    build: Callable[[], nn.Module]
    path: str

    def __call__(self) -> nn.Module:
        model = self.build()
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:  # torch lists every mismatch, one per line
            details = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
            raise EmbeddingExplorerError(
                f"the state_dict at {self.path} does not fit {type(model).__name__}: {details}"
            ) from e
        return model


def from_state_dict(build: Callable[[], nn.Module], path: str | Path) -> StateDictFactory:
    """A picklable model factory: ``build()`` (e.g. the model's class) with the weights of a
    ``torch.save(model.state_dict(), path)`` file, so each Dask worker loads them itself."""
    return StateDictFactory(build, str(path))


def build_model(spec: Any) -> nn.Module | None:
    """The module a spec stands for (a factory is called once)."""
    if spec is None or isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, (str, Path)):
        raise TypeError(
            f"model={str(spec)!r} is a path; pass a function that builds the model instead, e.g. "
            "ee.from_state_dict(MyNet, 'weights.pt') for a saved state_dict"
        )
    if callable(spec):
        model = spec()
        if not isinstance(model, nn.Module):
            raise TypeError(f"the model factory returned {type(model).__name__}, not a torch.nn.Module")
        return model
    raise TypeError(f"model must be a torch.nn.Module or a function returning one, not {type(spec).__name__}")
