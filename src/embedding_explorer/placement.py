"""Where a model's weights live, for models too big for one device.

A model loaded with ``device_map="auto"`` (transformers, accelerate's ``dispatch_model``,
``cpu_offload``, ``init_empty_weights``) keeps some or all weights on the ``meta`` device or
offloaded to the CPU or disk, and accelerate's hooks bring them to the execution device module by
module during the forward pass. Such a model is *placed*: it must never be moved with ``.to()``
(that fails with "Cannot copy out of meta tensor", or undoes the placement), its inputs go to the
device of its first module, and its weights are not read to fingerprint it.
"""

from __future__ import annotations

import hashlib
import os
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".gguf", ".model")


def is_placed(model: nn.Module) -> bool:
    """Whether accelerate placed the model (a device map, its hooks) or weights sit on ``meta``."""
    if getattr(model, "hf_device_map", None):
        return True
    if any(hasattr(module, "_hf_hook") for module in model.modules()):
        return True
    return any(t.device.type == "meta" for t in chain(model.parameters(), model.buffers()))


def execution_device(model: nn.Module) -> torch.device:
    """The device the model's inputs go to: the execution device of its first accelerate hook,
    else that of its first real (not meta) tensor, else the CPU."""
    for module in model.modules():
        device = _hook_device(getattr(module, "_hf_hook", None))
        if device is not None:
            return device
    for tensor in chain(model.parameters(), model.buffers()):
        if tensor.device.type != "meta":
            return tensor.device
    return torch.device("cpu")


def _hook_device(hook: Any) -> torch.device | None:
    if hook is None:
        return None
    for inner in getattr(hook, "hooks", ()):  # accelerate's SequentialHook
        device = _hook_device(inner)
        if device is not None:
            return device
    device = getattr(hook, "execution_device", None)
    if device is None:
        return None
    return torch.device(f"cuda:{device}" if isinstance(device, int) else device)


def checkpoint_identity(model: nn.Module) -> dict[str, Any] | None:
    """What identifies a placed model's weights without reading them: the checkpoint it was
    loaded from (``config._name_or_path`` / ``name_or_path``), its revision when transformers
    knows it, and for a local folder every checkpoint file's name, size and modification time.
    None when the model names no checkpoint."""
    config = getattr(model, "config", None)
    source = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None)
    if not source:
        return None
    identity: dict[str, Any] = {"source": str(source)}
    commit = getattr(config, "_commit_hash", None)
    if commit:
        identity["revision"] = str(commit)
    folder = Path(str(source))
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
        digest = hashlib.blake2b(digest_size=16)
        for path in files:
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        identity["files"] = digest.hexdigest()
        identity["n_files"] = len(files)
    return identity


def structure_digest(model: nn.Module) -> str:
    """A hash of the module tree and every parameter's and buffer's name, dtype and shape: what a
    placed model's fingerprint holds instead of its weights."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(model).encode())
    for name, tensor in chain(model.named_parameters(), model.named_buffers()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
    digest.update(os.fsencode(str(sorted(getattr(model, "hf_device_map", {}) or {}))))
    return digest.hexdigest()


__all__ = ["checkpoint_identity", "execution_device", "is_placed", "structure_digest"]
