"""Fingerprints of models and data, so a finished run is reused only for the same inputs."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import inspect
import json
import os
import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from stat import S_ISLNK
from typing import Any

import numpy as np
import torch
import xxhash
from PIL import Image
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
)

from .placement import checkpoint_identity, is_placed, structure_digest
from .tokens import text_batches_of

SAMPLED_ITEMS = 256  # items of a map-style Dataset hashed for its quick fingerprint
HASH_BLOCK_BYTES = 64 << 20  # a non-contiguous or non-CPU array is hashed in row blocks of this size
_CALLABLE_DEPTH = 3  # how deep functions reached through closures, defaults and globals are hashed
# a transform is followed deeper: Compose -> its attributes -> the list -> a Lambda -> its
# attributes -> the function, whose code counts (a Lambda's repr is "Lambda()")
_TRANSFORM_DEPTH = 6
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # object.__repr__'s memory address: differs per process
# torchvision's data sets of files read by a loader (exactly these classes: see known_identity)
DATASET_FOLDERS = ("torchvision.datasets.folder.DatasetFolder", "torchvision.datasets.folder.ImageFolder")


def identity_digest() -> Any:
    """A fresh 128-bit hash for identities (is this the same model, the same data?), not a
    security boundary: xxHash's XXH3, about 10x faster than blake2b on the tensors hashed
    during extraction. ``update`` takes bytes or any buffer; ``hexdigest`` gives 32 hex digits."""
    return xxhash.xxh3_128()


def model_fingerprint(model: nn.Module | None) -> dict[str, Any]:
    """Class name, parameter count and a hash of what the model computes: the module tree
    (``repr``: types and their settings, so swapping a ReLU for a Tanh counts), every parameter
    and buffer (non-persistent ones too, which ``state_dict`` leaves out), each module's own
    settings (``vars``, as ``norm_first`` or ``batch_first``, which ``repr`` does not show) and
    the code of each module class defined outside torch (its ``forward`` and other methods)."""
    if model is None:
        return {"class": None, "fingerprint": "none", "n_parameters": 0}
    if is_placed(model):
        return placed_model_fingerprint(model)
    digest = identity_digest()
    digest.update(repr(model).encode())
    n_params = 0
    state = model.state_dict(keep_vars=False)
    for name, tensor in state.items():
        digest.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            _update_tensor(digest, tensor)
    for name, buffer in model.named_buffers():
        if name not in state:  # registered with persistent=False
            digest.update(f"buffer:{name}".encode())
            _update_tensor(digest, buffer)
    _update_modules(digest, model)
    for p in model.parameters():
        n_params += p.numel()
    cls = type(model)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "fingerprint": digest.hexdigest(),
        "n_parameters": int(n_params),
    }


# what every module holds (parameters, buffers, submodules, hooks, the training flag): hashed
# elsewhere or not a setting of what the module computes
_MODULE_INTERNALS = frozenset(vars(nn.Module()))
_PLAIN = (bool, float, str, type(None))  # not int: see _setting
# where a model came from, not what it computes: the same weights read from another folder (a
# Hugging Face model's name_or_path) are the same model
_IDENTITY_ATTRIBUTES = frozenset({"name_or_path"})
_CODE_DEPTH = 3  # a method's code, the module functions it calls, theirs, and theirs


def _update_modules(digest: Any, model: nn.Module) -> None:
    """Each module's own public settings (:func:`_setting`), and the code of each module class
    defined outside torch, once per class."""
    classes: dict[type, None] = {}
    for name, module in model.named_modules():
        digest.update(f"module:{name}".encode())
        attributes = vars(module)
        for key in sorted(attributes):
            if key.startswith("_") or key in _MODULE_INTERNALS or key in _IDENTITY_ATTRIBUTES:
                continue
            setting = _setting(attributes[key])
            if setting is not None:
                digest.update(f"{key}={setting}".encode())
        classes.setdefault(type(module))
    for cls in classes:
        _update_class_code(digest, cls)


def _setting(value: Any) -> str | None:
    """A module attribute's text as a setting: booleans, floats, strings and None (``norm_first``,
    ``batch_first``, a scale, a mode), and functions by name (an ``activation``); None for
    anything else. Integers are left out: a module's counters are integers too, and a count that
    changes with each forward pass would make every run a new one (torch's integer settings are
    in its ``repr``); so are tensors, caches and other objects (state, not settings, or hashed
    elsewhere) and private attributes (``_name``: a module's own bookkeeping)."""
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"{value.__module__}.{value.__qualname__}"
    return None


def _update_class_code(digest: Any, cls: type) -> None:
    """The functions a module class and its bases below ``nn.Module`` define, by their code
    (:func:`callable_digest`'s rules, ``_CODE_DEPTH`` deep: the module functions a method calls
    count too): methods, static and class methods, property accessors, and the function inside a
    decorator (``@torch.no_grad()``, anything made with ``functools.wraps``). torch's own classes
    count by name only (their code is torch's version's)."""
    for base in cls.__mro__:
        if base is nn.Module or not issubclass(base, nn.Module):
            break
        digest.update(f"class:{base.__module__}.{base.__qualname__}".encode())
        if base.__module__.split(".")[0] == "torch":
            continue
        for key, member in sorted(vars(base).items()):
            for function in _functions_of(member):
                digest.update(key.encode())
                _update_callable(digest, function, _CODE_DEPTH)


def _functions_of(member: Any) -> list[types.FunctionType]:
    """The Python functions a class attribute runs: a method (and, decorated, the function it
    wraps), a static or class method's, a property's getter, setter and deleter."""
    if isinstance(member, property):
        accessors = [member.fget, member.fset, member.fdel]
    elif isinstance(member, (staticmethod, classmethod)):
        accessors = [member.__func__]
    else:
        accessors = [member]
    found = []
    for accessor in accessors:
        seen = 0
        while accessor is not None and seen < 8:  # a decorator's wrapper, then what it wraps
            if isinstance(accessor, types.FunctionType):
                found.append(accessor)
            accessor = getattr(accessor, "__wrapped__", None)
            seen += 1
    return found


def placed_model_fingerprint(model: nn.Module) -> dict[str, Any]:
    """The fingerprint of a model placed by accelerate or on ``meta`` (:mod:`.placement`), made
    without reading a weight: its structure (names, dtypes, shapes) and its checkpoint's identity.

    ``weights`` says so in the manifest; a model that names no checkpoint (``config._name_or_path``)
    cannot be told apart from one with other weights, so its runs are marked ``reusable: False``.
    """
    identity = checkpoint_identity(model)
    digest = identity_digest()
    digest.update(structure_digest(model).encode())
    digest.update(json.dumps(identity, sort_keys=True).encode())
    cls = type(model)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "fingerprint": digest.hexdigest(),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "weights": "not read (placed or offloaded): names, shapes, dtypes and the checkpoint's identity",
        "checkpoint": identity,
        "reusable": identity is not None,
    }


def data_fingerprint(data: Any) -> str | None:
    """A fingerprint known before extraction, or None for one-pass iterables.

    Tensors, arrays and lists of batches are hashed whole. A data set with a
    :func:`known_identity` (files listed with their sizes and times) is hashed by it without
    reading an item; any other map-style Dataset by its length, type and up to
    ``SAMPLED_ITEMS`` evenly spaced items: an edit elsewhere in a large data set is not seen
    (pass ``recompute=True`` after such an edit). A DataLoader adds its batching and its
    ``collate_fn``: by the collate's ``content_fingerprint()`` where it has one, else by its
    code and the first and last batches it makes (not read for data known by its files with
    torch's ``default_collate``).
    """
    if text_batches_of(data) is not None:  # texts, labels and tokenizer: not the tensors
        return data.content_fingerprint()
    digest = identity_digest()
    known = known_identity(data)
    if known is not None:
        digest.update(known.encode())
        return str(digest.hexdigest())
    try:
        if isinstance(data, (torch.Tensor, np.ndarray)):
            _update_value(digest, data)
            return digest.hexdigest()
        if isinstance(data, DataLoader):  # how it batches decides which samples a run holds
            # a collate_fn that says what it makes (this package's) counts by that, not its state
            says = getattr(data.collate_fn, "content_fingerprint", None)
            collate = str(says()) if callable(says) else callable_digest(data.collate_fn)
            digest.update(f"loader:{data.batch_size}:{data.drop_last}:{collate}".encode())
            known = known_identity(data.dataset)
            if not callable(says) and (known is None or data.collate_fn is not default_collate):
                _update_edge_batches(digest, data)  # what a custom collate_fn makes of the items
            if known is not None:
                digest.update(known.encode())
                return digest.hexdigest()
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


def known_identity(data: Any) -> str | None:
    """The identity of a data set that can say what it holds without reading every item, or None.

    - a Dataset with a ``content_fingerprint()`` (this package's image, audio and table data);
    - torchvision's own ``DatasetFolder`` and ``ImageFolder`` classes (not subclasses, whose
      ``__getitem__`` and state may add anything): every listed file's path, size and modification
      time, the targets, the loader and the transforms, plus the first and last items as read (a
      safety net for what a transform's code hash cannot see, such as a global it reads). A
      sampled read (any other Dataset) would decode 256 items before every run and still miss an
      edit elsewhere;
    - torch's ``TensorDataset`` (the class itself): its tensors, hashed whole (an edit of any
      item changes it; sampled items would miss it);
    - a ``Subset`` (the class itself) of any of these: the items it picks (of a folder, only
      those files are looked at).

    Data whose identity cannot be formed this way (targets or indices of an unexpected kind) is
    None: it is fingerprinted by sampled items instead.
    """
    try:
        return _known_identity(data, None)
    except (TypeError, ValueError, IndexError):
        return None


def _known_identity(data: Any, picked: np.ndarray | None) -> str | None:
    """:func:`known_identity` of the items ``picked`` (all where None) of ``data``."""
    if type(data) is Subset:
        n = len(data.dataset)  # type: ignore[arg-type]
        own = np.asarray(data.indices, dtype=np.int64)
        own = np.where(own < 0, own + n, own)
        return _known_identity(data.dataset, own if picked is None else own[picked])
    selected = "" if picked is None else f"picked:{array_hash(picked)}:"
    if isinstance(data, Dataset) and callable(getattr(data, "content_fingerprint", None)):
        return f"{selected}{data.content_fingerprint()}"  # type: ignore[attr-defined]
    cls = type(data)
    if f"{cls.__module__}.{cls.__qualname__}" in DATASET_FOLDERS:
        return dataset_folder_identity(data, picked)
    if cls is TensorDataset:  # its items are its tensors' rows: hashed whole, as a tensor is
        digest = identity_digest()
        rows = None if picked is None else torch.as_tensor(picked, dtype=torch.long)
        for tensor in data.tensors:  # of a Subset, only the rows it picks
            _update_value(digest, tensor if rows is None else tensor[rows])
        return f"{selected}tensors:{len(data.tensors)}:{digest.hexdigest()}"
    return None


def dataset_folder_identity(folder: Any, picked: np.ndarray | None = None) -> str:
    """:func:`known_identity` of a torchvision ``DatasetFolder``'s samples ``picked`` (all where
    None): their files by :func:`files_digest`, their targets, how each is read and transformed,
    and the first and last of them as read."""
    indices = np.arange(len(folder.samples)) if picked is None else picked
    samples = [folder.samples[i] for i in indices]
    digest = identity_digest()
    for name in ("loader", "transform", "target_transform"):
        digest.update(f"{name}:{transform_identity(getattr(folder, name))}".encode())
    digest.update(str(array_hash(np.asarray([target for _, target in samples]))).encode())
    for i in sorted({int(indices[0]), int(indices[-1])}) if len(indices) else []:
        _update_loose(digest, folder[i], 1)
    cls = type(folder)
    settings = f"{cls.__module__}.{cls.__qualname__}|{digest.hexdigest()}"
    return f"folder:{files_digest(settings, [Path(path) for path, _ in samples], None)}"


def transform_identity(transform: Callable[..., Any] | None) -> str:
    """A stable text form of a transform: its ``repr`` where that holds no memory address (a
    torchvision ``Compose`` lists each step's settings) and :func:`callable_digest` of it, deep
    enough to reach the code of a ``Lambda`` inside a ``Compose`` (whose repr is ``Lambda()``)."""
    if transform is None:
        return "none"
    shown = repr(transform)
    return f"{'' if _ADDRESS.search(shown) else shown}|{callable_digest(transform, _TRANSFORM_DEPTH)}"


class ContentHasher:
    """A hash of every sample's input and label, fed batch by batch during extraction."""

    def __init__(self) -> None:
        self._digest = identity_digest()
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
    digest = identity_digest()
    _update_value(digest, values)
    return digest.hexdigest()


# the file digests taken inside files_stated_once: {(settings, id(paths), id(labels)): (digest,
# paths, labels)}, the lists held so that their ids stay theirs while the scope lasts
_Stated = dict[tuple[str, int, int], tuple[str, object, object]]
_STATED: contextvars.ContextVar[_Stated | None] = contextvars.ContextVar("ee_files_stated", default=None)


@contextlib.contextmanager
def files_stated_once() -> Iterator[None]:
    """Within: :func:`files_digest` of the same paths and labels (the same objects) is taken
    once. A run's plan asks for an image folder's identity twice, as its data and as its
    renderer's originals: each a ``stat`` of every file, which on a network file system costs
    seconds per 10,000 files. Scoped to the plan, so a later run sees files changed since."""
    token = _STATED.set({})
    try:
        yield
    finally:
        _STATED.reset(token)


def files_digest(settings: str, paths: Sequence[Path], labels: np.ndarray | None) -> str:
    """The identity of a data set read from files: how they are read (``settings``), each file's
    path, size and modification time (changed files change it without reading them), and the
    labels given to them. Taken once per :func:`files_stated_once` scope for the same objects."""
    stated = _STATED.get()
    key = (settings, id(paths), id(labels))
    if stated is not None and key in stated:
        return stated[key][0]
    digest = _files_digest(settings, paths, labels)
    if stated is not None:
        stated[key] = (digest, paths, labels)
    return digest


def _files_digest(settings: str, paths: Sequence[Path], labels: np.ndarray | None) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(settings.encode())
    # the same text as each path.resolve(), in a fifth of the time (measured on 20,000 files):
    # each folder is resolved once, a file only where it is itself a link
    folders: dict[str, str] = {}
    for path in paths:
        text = os.fspath(path)
        stat = os.lstat(text)
        if S_ISLNK(stat.st_mode):  # a link counts as the file it names
            resolved, stat = str(Path(text).resolve()), os.stat(text)
        else:
            head, name = os.path.split(text)
            folder = folders.get(head)
            if folder is None:
                folder = folders[head] = str(Path(head).resolve())
            resolved = os.path.join(folder, name)
        digest.update(f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    if labels is not None:
        digest.update(labels.tobytes())
    return digest.hexdigest()


def callable_digest(fn: Any, depth: int = _CALLABLE_DEPTH) -> str:
    """A hash of what a callable computes: its qualified name, code (constants included),
    defaults, closure values and a ``functools.partial``'s arguments, so two lambdas or two
    partials of one function differ. Values with no content-based form count by type only,
    globals other than functions and plain values are not followed, and nothing is followed more
    than ``depth`` references deep."""
    digest = hashlib.blake2b(digest_size=16)
    _update_callable(digest, fn, depth)
    return digest.hexdigest()


def _update_callable(digest: Any, fn: Any, depth: int) -> None:
    if isinstance(fn, functools.partial):
        digest.update(b"partial")
        _update_callable(digest, fn.func, depth)
        _update_loose(digest, fn.args, depth)
        _update_loose(digest, fn.keywords, depth)
        return
    if isinstance(fn, types.MethodType):  # the bound object counts by what it holds
        _update_callable(digest, fn.__func__, depth)
        _update_loose(digest, fn.__self__, depth)
        return
    if isinstance(fn, types.FunctionType):
        digest.update(f"{fn.__module__}.{fn.__qualname__}".encode())
        if depth <= 0:
            return
        _update_code(digest, fn.__code__)
        _update_loose(digest, fn.__defaults__, depth - 1)
        _update_loose(digest, fn.__kwdefaults__, depth - 1)
        cells = [c.cell_contents if _filled(c) else None for c in fn.__closure__ or ()]
        _update_loose(digest, cells, depth - 1)
        for name in sorted(_names(fn.__code__)):  # globals it reads: functions and plain values
            value = fn.__globals__.get(name)
            if isinstance(value, (types.FunctionType, functools.partial, str, int, float, bool)):
                digest.update(name.encode())
                _update_loose(digest, value, depth - 1)
        return
    cls = type(fn)  # a builtin, a class, or an object with __call__
    digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    qualname = getattr(fn, "__qualname__", None)  # builtins and classes: str.upper vs str.lower
    if isinstance(qualname, str):
        digest.update(
            f"{getattr(fn, '__module__', None) or getattr(fn, '__objclass__', '')}.{qualname}".encode()
        )
    if depth > 0 and not isinstance(fn, type):
        for method in ("__call__", "forward"):  # an nn.Module's __call__ is torch's: its forward counts
            code = inspect.getattr_static(cls, method, None)
            if isinstance(code, types.FunctionType):
                _update_code(digest, code.__code__)
        if isinstance(getattr(fn, "__dict__", None), dict):
            _update_loose(digest, vars(fn), depth - 1)


def _update_code(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _update_code(digest, const)
        elif isinstance(const, frozenset):  # `x in {"a", "b"}`: its order varies with the hash seed
            digest.update(repr(sorted(map(repr, const))).encode())
        else:
            digest.update(repr(const).encode())


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:  # an empty cell (a name not yet assigned)
        return False
    return True


def _update_loose(digest: Any, value: Any, depth: int) -> None:
    """Hash ``value`` by content where it has one, callables by :func:`callable_digest`'s rules,
    other objects by their type and (``depth`` allowing) attributes, never by a ``repr`` that may
    hold a memory address."""
    if callable(value) and not isinstance(value, type):
        _update_callable(digest, value, depth)
        return
    try:
        _update_value(digest, value)
        return
    except _Unhashable:
        pass
    cls = type(value)
    digest.update(f"<{cls.__module__}.{cls.__qualname__}>".encode())
    if depth <= 0:
        return
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            _update_loose(digest, value[key], depth - 1)
    elif isinstance(value, (set, frozenset)):  # plain values by content, in an order of their own
        plain = sorted(repr(v) for v in value if isinstance(v, (str, int, float, bytes)))
        digest.update(repr(plain).encode())
    elif isinstance(value, (list, tuple)):
        for item in value:
            _update_loose(digest, item, depth - 1)
    elif isinstance(getattr(value, "__dict__", None), dict):
        _update_loose(digest, vars(value), depth - 1)


def _update_edge_batches(digest: Any, loader: DataLoader[Any]) -> None:
    """Hash the first and last batch as the loader's ``collate_fn`` makes them (built here, in
    this process: no worker starts), so a collate_fn that changes the values changes the
    fingerprint even where its code hash cannot tell. Only for the sequential batching that
    :func:`explore` accepts; other loaders are refused there."""
    sampler = getattr(loader.batch_sampler, "sampler", None)
    if type(loader.batch_sampler) is not BatchSampler or type(sampler) is not SequentialSampler:
        return
    n, size = len(loader.dataset), int(loader.batch_size or 1)  # type: ignore[arg-type]
    whole = n - n % size if loader.drop_last else n
    if whole <= 0:
        return
    edges = [range(0, min(size, whole))]
    if whole > size:
        edges.append(range((whole - 1) // size * size, whole))
    # fetched as the loader fetches them: a dataset's __getitems__ reads a whole batch at once
    getitems = getattr(loader.dataset, "__getitems__", None)
    try:
        batches = [
            loader.collate_fn(getitems(list(ids)) if getitems else [loader.dataset[i] for i in ids])
            for ids in edges
        ]
    except Exception as error:  # the data's own error surfaces during extraction
        digest.update(f"edges-failed:{type(error).__name__}".encode())
        return
    for batch in batches:
        _update_loose(digest, batch, 0)


def _update_tensor(digest: Any, tensor: torch.Tensor) -> None:
    """The dtype, shape and bytes of a tensor, hashed in place (no copy) when it is a contiguous
    CPU tensor, else in row blocks of at most ``HASH_BLOCK_BYTES``."""
    t = tensor.detach()
    digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16: the same bits, no conversion
    if t.device.type == "cpu" and t.is_contiguous():
        _update_bytes(digest, t.numpy())
        return
    rows = max(1, HASH_BLOCK_BYTES // max(1, t[:1].numel() * t.element_size())) if t.dim() else 1
    if t.dim() == 0:
        _update_bytes(digest, t.cpu().numpy())
        return
    for start in range(0, t.shape[0], rows):
        _update_bytes(digest, t[start : start + rows].contiguous().cpu().numpy())


def _update_array(digest: Any, array: np.ndarray) -> None:
    digest.update(f"{array.dtype}{array.shape}".encode())
    if array.flags.c_contiguous or array.ndim == 0:
        _update_bytes(digest, array)
        return
    rows = max(1, HASH_BLOCK_BYTES // max(1, array[:1].nbytes))
    for start in range(0, array.shape[0], rows):
        _update_bytes(digest, np.ascontiguousarray(array[start : start + rows]))


def _update_bytes(digest: Any, array: np.ndarray) -> None:
    """The raw bytes of a C-contiguous array, through a memoryview: nothing is copied."""
    array = np.ascontiguousarray(array)  # a no-op here, but makes a 0-d array's buffer usable
    digest.update(array.reshape(-1).view(np.uint8).data)


def _update_value(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        _update_tensor(digest, value)
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            digest.update(repr(value.tolist()).encode())
        else:
            _update_array(digest, value)
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
    "callable_digest",
    "data_fingerprint",
    "dataset_folder_identity",
    "files_digest",
    "files_stated_once",
    "identity_digest",
    "known_identity",
    "model_fingerprint",
    "options_key",
    "placed_model_fingerprint",
    "transform_identity",
]
