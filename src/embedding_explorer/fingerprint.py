"""Fingerprints of models and data, so a finished run is reused only for the same inputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .text import TextBatches

SAMPLED_ITEMS = 256  # items of a map-style Dataset hashed for its quick fingerprint


def model_fingerprint(model: nn.Module | None) -> dict[str, Any]:
    """Class name, parameter count and a hash of the module tree (``repr``: types and their
    settings, so swapping a ReLU for a Tanh counts) and of every parameter and buffer."""
    if model is None:
        return {"class": None, "fingerprint": "none", "n_parameters": 0}
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(model).encode())
    n_params = 0
    for name, tensor in model.state_dict(keep_vars=False).items():
        digest.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            _update_tensor(digest, tensor)
    for p in model.parameters():
        n_params += p.numel()
    cls = type(model)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "fingerprint": digest.hexdigest(),
        "n_parameters": int(n_params),
    }


def data_fingerprint(data: Any) -> str | None:
    """A fingerprint known before extraction, or None for one-pass iterables.

    Tensors, arrays and lists of batches are hashed whole. A map-style Dataset is hashed by its
    length, type and up to ``SAMPLED_ITEMS`` evenly spaced items: an edit elsewhere in a large
    data set is not seen (pass ``recompute=True`` after such an edit).
    """
    if isinstance(data, TextBatches):  # texts, labels and tokenizer: not the token tensors
        return data.content_fingerprint()
    digest = hashlib.blake2b(digest_size=16)
    try:
        if isinstance(data, (torch.Tensor, np.ndarray)):
            _update_value(digest, data)
            return digest.hexdigest()
        if isinstance(data, DataLoader):  # how it batches decides which samples a run holds
            collate = getattr(data.collate_fn, "__qualname__", type(data.collate_fn).__name__)
            digest.update(f"loader:{data.batch_size}:{data.drop_last}:{collate}".encode())
            data = data.dataset
        if isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__"):
            n = len(data)
            digest.update(f"{type(data).__module__}.{type(data).__qualname__}:{n}".encode())
            for i in np.unique(np.linspace(0, n - 1, num=min(n, SAMPLED_ITEMS)).astype(int)) if n else []:
                _update_value(digest, data[int(i)])
            return digest.hexdigest()
        if isinstance(data, (list, tuple)):
            for batch in data:
                _update_value(digest, batch)
            return digest.hexdigest()
    except _Unhashable:
        return None
    return None


class ContentHasher:
    """A hash of every sample's input and label, fed batch by batch during extraction."""

    def __init__(self) -> None:
        self._digest = hashlib.blake2b(digest_size=16)
        self._complete = True

    def update(self, raw_inputs: Any, labels: np.ndarray | None) -> None:
        try:
            _update_value(self._digest, raw_inputs)
            if labels is not None:
                _update_value(self._digest, labels)
        except _Unhashable:
            self._complete = False

    def hexdigest(self) -> str | None:
        """The hash, or None when some input had no content-based form."""
        return self._digest.hexdigest() if self._complete else None


def options_key(parts: Mapping[str, Any]) -> str:
    """A stable hash of a JSON-able mapping of everything a run depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def array_hash(values: Any) -> str | None:
    """Hash of labels or metadata columns given as arrays (None stays None)."""
    if values is None:
        return None
    digest = hashlib.blake2b(digest_size=16)
    _update_value(digest, values)
    return digest.hexdigest()


def _update_tensor(digest: Any, tensor: torch.Tensor) -> None:
    t = tensor.detach()
    digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.dtype == torch.bfloat16:
        t = t.float()
    digest.update(t.contiguous().cpu().numpy().tobytes())


def _update_value(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        _update_tensor(digest, value)
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            digest.update(repr(value.tolist()).encode())
        else:
            digest.update(f"{value.dtype}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _update_value(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update_value(digest, item)
    elif isinstance(value, Image.Image):
        digest.update(f"{value.mode}{value.size}".encode())
        digest.update(value.tobytes())
    elif isinstance(value, (str, bytes, int, float, bool, type(None), np.generic)):
        digest.update(repr(value).encode())
    elif hasattr(value, "to_numpy"):  # pandas objects: names and dtypes are part of the table
        if hasattr(value, "dtypes") and hasattr(value.dtypes, "items"):
            digest.update(repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
        _update_value(digest, value.to_numpy())
    else:  # no content-based form (a repr may hold a memory address): no fingerprint at all
        raise _Unhashable(type(value).__name__)


class _Unhashable(Exception):
    """A value whose content cannot be hashed reliably."""


__all__ = [
    "ContentHasher",
    "array_hash",
    "data_fingerprint",
    "model_fingerprint",
    "options_key",
]
