"""Model specs: one string names a model and how its inputs are prepared.

``hf:<id or dir>`` (transformers), ``st:<id or dir>`` (sentence-transformers),
``timm:<name>``, ``torchvision:<name>`` and ``path/to/file.py:factory``. Each library is
imported only when its spec is used; a missing one is a :class:`MissingExtraError` naming the
pip extra that installs it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..exceptions import EmbeddingExplorerError, SpecError
from ..extras import require
from ..models import from_state_dict
from ..reducers import Reducer
from .images import ImageTransform, default_transform, hf_transform

PREFIXES = ("hf", "st", "timm", "torchvision")
GENERIC_FOLDERS = ("model", "models", "checkpoint", "weights", "snapshot")


@dataclass
class LoadedModel:
    """A model built from a spec, with the preprocessing its spec knows.

    Attributes
    ----------
    module : torch.nn.Module
        What :func:`~embedding_explorer.explore` hooks (in eval mode).
    spec : str
        The spec it was loaded from.
    image_transform : callable or None
        PIL image -> ``(C, H, W)`` tensor, as the model's own preprocessing does it (timm data
        config, torchvision weights' transforms, the HF image processor); None when the spec
        does not know it (a data set of images then uses :func:`default_transform`).
    feature_extractor : callable or None
        Loads the model's audio feature extractor (HF ``AutoFeatureExtractor``: wav2vec2,
        whisper...); None when the spec knows none (audio then goes in as raw waveforms).
    reduce : dict
        Reducers this kind of model needs for some layers (sentence-transformers' pooling
        modules return dicts: their ``sentence_embedding``).
    """

    module: nn.Module
    spec: str
    image_transform: ImageTransform | None = None
    reduce: dict[str, Reducer] = field(default_factory=dict)
    _tokenizer: Callable[[], Any] | None = None
    feature_extractor: Callable[[], Any] | None = None

    @property
    def name(self) -> str:
        """A short name for runs: the last part of the spec (``resnet18``, ``all-MiniLM-L6-v2``)."""
        body = self.spec.split(":", 1)[1] if _prefix(self.spec) else self.spec
        path = Path(body.rstrip("/").split(":")[0])
        if path.name.lower() in GENERIC_FOLDERS and path.parent.name:
            path = path.parent  # e.g. a package's own "model" folder
        return path.stem or type(self.module).__name__

    def tokenizer(self) -> Any:
        """The model's tokenizer, for text data; a :class:`SpecError` when it has none."""
        if self._tokenizer is None:
            raise SpecError(f"model {self.spec!r} has no tokenizer, so it cannot read texts")
        return self._tokenizer()


def load_model(spec: str, *, pretrained: bool = True, weights: str | Path | None = None) -> LoadedModel:
    """The model a spec names, in eval mode, with its preprocessing.

    Parameters
    ----------
    spec : str
        ``hf:<id or dir>``: ``transformers.AutoModel`` (its tokenizer or image processor with it);
        ``st:<id or dir>``: a ``SentenceTransformer``; ``timm:<name>``: ``timm.create_model``;
        ``torchvision:<name>``: ``torchvision.models.get_model`` with the default weights;
        ``path/to/file.py:factory``: a function in that file returning a module.
    pretrained : bool, default=True
        False builds ``timm:``, ``torchvision:`` and ``hf:`` models with random weights (the
        preprocessing stays that of the pretrained model).
    weights : path, optional
        A ``torch.save(model.state_dict())`` file loaded into the model (``weights_only=True``).

    Examples
    --------
    >>> model = ee.load_model("timm:resnet18")                       # doctest: +SKIP
    >>> model = ee.load_model("net.py:build", weights="net.pt")      # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec:
        raise SpecError(f"model spec {spec!r} must be a non-empty string such as 'timm:resnet18'")
    prefix = _prefix(spec)
    if prefix is None:
        loaded = _load_file(spec, pretrained)
    else:
        body = spec.split(":", 1)[1]
        if not body:
            raise SpecError(f"model spec {spec!r} names no model after {prefix + ':'!r}")
        loaded = _LOADERS[prefix](spec, body, pretrained)
    if weights is not None:
        loaded.module = _with_weights(loaded.module, Path(weights), spec)
    loaded.module.eval()
    return loaded


def _prefix(spec: str) -> str | None:
    """The spec's library prefix, None for a ``file.py:factory`` spec; unknown ones refused."""
    head, sep, _ = spec.partition(":")
    if not sep or head.endswith(".py") or "/" in head or "\\" in head or len(head) == 1:
        return None  # a path (``C:\\...`` on Windows has a one-letter head)
    if head not in PREFIXES:
        raise SpecError(
            f"model spec {spec!r}: unknown prefix {head + ':'!r}; use hf:, st:, timm:, torchvision: "
            "or path/to/file.py:factory"
        )
    return head


def _import(module: str, extra: str, spec: str) -> Any:
    """Import an optional library, or say which extra installs it."""
    return require(module, extra, f"model spec {spec!r}")


def _load_hf(spec: str, source: str, pretrained: bool) -> LoadedModel:
    transformers = _import("transformers", "hf", spec)
    _check_local_or_id(spec, source)
    try:
        if pretrained:
            module = transformers.AutoModel.from_pretrained(source)
        else:
            module = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(source))
    except (OSError, ValueError) as e:
        raise SpecError(f"model spec {spec!r}: transformers cannot load it: {first_line(e)}") from e

    def tokenizer() -> Any:
        try:
            return transformers.AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as e:
            raise SpecError(f"model spec {spec!r} has no tokenizer: {first_line(e)}") from e

    transform = None
    folder = Path(source)
    if not folder.is_dir() or (folder / "preprocessor_config.json").is_file():
        try:
            transform = hf_transform(transformers.AutoImageProcessor.from_pretrained(source))
        except (OSError, ValueError):
            transform = None  # a text model: no image processor

    def feature_extractor() -> Any:
        try:
            return transformers.AutoFeatureExtractor.from_pretrained(source)
        except (OSError, ValueError) as e:
            raise SpecError(f"model spec {spec!r} has no audio feature extractor: {first_line(e)}") from e

    return LoadedModel(module, spec, transform, _tokenizer=tokenizer, feature_extractor=feature_extractor)


def _load_st(spec: str, source: str, pretrained: bool) -> LoadedModel:
    if not pretrained:
        raise SpecError(f"model spec {spec!r}: --no-pretrained is not available for st: models")
    st = _import("sentence_transformers", "hf", spec)
    _check_local_or_id(spec, source)
    try:
        module = st.SentenceTransformer(source, device="cpu")
    except (OSError, ValueError) as e:
        raise SpecError(f"model spec {spec!r}: sentence-transformers cannot load it: {first_line(e)}") from e
    pooled = {
        name: Reducer(select="sentence_embedding")
        for name, child in module.named_children()
        if type(child).__name__ in ("Pooling", "Normalize", "Dense")
    }
    return LoadedModel(module, spec, None, pooled, _tokenizer=lambda: module.tokenizer)


def _load_timm(spec: str, name: str, pretrained: bool) -> LoadedModel:
    timm = _import("timm", "timm", spec)
    try:
        module = timm.create_model(name, pretrained=pretrained)
    except RuntimeError as e:  # timm: "Unknown model (name)"
        raise SpecError(f"model spec {spec!r}: {first_line(e)}") from e
    config = timm.data.resolve_data_config({}, model=module)
    return LoadedModel(module, spec, timm.data.create_transform(**config))


def _load_torchvision(spec: str, name: str, pretrained: bool) -> LoadedModel:
    models = _import("torchvision.models", "vision", spec)
    try:
        default = models.get_model_weights(name).DEFAULT
    except ValueError as e:  # "Unknown model name"
        raise SpecError(f"model spec {spec!r}: torchvision has no model {name!r}") from e
    module = models.get_model(name, weights=default if pretrained else None)
    return LoadedModel(module, spec, default.transforms())


def _load_file(spec: str, pretrained: bool) -> LoadedModel:
    """``path/to/file.py:factory``: the file is run as a module and ``factory()`` called; a
    ``preprocess(image) -> tensor`` function in the same file is used for images."""
    path_text, sep, factory_name = spec.rpartition(":")
    if not sep and Path(spec).suffix in (".pt", ".pth", ".bin", ".safetensors", ".ckpt"):
        raise SpecError(
            f"model spec {spec!r} is a path to weights, not a model: pass path/to/file.py:factory with "
            f"weights={spec!r} (--weights), or ee.from_state_dict(MyNet, {spec!r})"
        )
    if not sep or not path_text.endswith(".py") or not factory_name.isidentifier():
        raise SpecError(
            f"model spec {spec!r} is not hf:, st:, timm:, torchvision: or path/to/file.py:factory"
        )
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"model spec {spec!r}: no file {path}")
    if not pretrained:
        raise SpecError(
            f"model spec {spec!r}: --no-pretrained is for hf:, timm: and torchvision:; a factory "
            "builds its own weights"
        )
    name = "_ee_model_" + hashlib.blake2b(str(path.resolve()).encode(), digest_size=8).hexdigest()
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None  # a .py file always has one
    source = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = source  # dataclasses and pickling look classes up by module name
    # its folder first on the import path while it runs, so it imports the modules beside it
    # rather than installed ones of the same name; then last, so loader worker processes that
    # unpickle its classes find those modules, and a later import of an installed package (a
    # "datasets.py" beside it) still gets the package
    folder = str(path.resolve().parent)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    try:
        module_spec.loader.exec_module(source)
    except Exception as e:
        del sys.modules[name]
        raise SpecError(f"model spec {spec!r}: running {path} failed: {first_line(e)}") from e
    finally:
        sys.path.remove(folder)
        sys.path.append(folder)
    factory = getattr(source, factory_name, None)
    if not callable(factory):
        defined = [k for k, v in vars(source).items() if inspect.isfunction(v) and v.__module__ == name]
        listed = ", ".join(defined) or "none"
        raise SpecError(f"model spec {spec!r}: {path} has no function {factory_name!r}; it defines {listed}")
    try:
        model = factory()
    except Exception as e:
        raise SpecError(f"model spec {spec!r}: {factory_name}() failed: {first_line(e)}") from e
    if not isinstance(model, nn.Module):
        raise SpecError(
            f"model spec {spec!r}: {factory_name}() returned {type(model).__name__}, not a module"
        )
    preprocess = getattr(source, "preprocess", None)
    return LoadedModel(model, spec, preprocess if callable(preprocess) else None)


def _with_weights(module: nn.Module, path: Path, spec: str) -> nn.Module:
    if not path.is_file():
        raise SpecError(f"--weights {path}: no such file (for model {spec!r})")
    try:
        return from_state_dict(lambda: module, path)()
    except EmbeddingExplorerError as e:
        raise SpecError(f"--weights {path}: {e}") from e
    except Exception as e:  # not a state dict saved by torch.save, or unsafe to load
        raise SpecError(f"--weights {path} is not a state_dict torch can load safely: {first_line(e)}") from e


def _check_local_or_id(spec: str, source: str) -> None:
    """A source that looks like a path must exist (a hub id is ``name`` or ``org/name``)."""
    looks_local = source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source
    if looks_local and not Path(source).expanduser().is_dir():
        raise SpecError(f"model spec {spec!r}: no model folder {source}")


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


_LOADERS: dict[str, Callable[[str, str, bool], LoadedModel]] = {
    "hf": _load_hf,
    "st": _load_st,
    "timm": _load_timm,
    "torchvision": _load_torchvision,
}

__all__ = ["PREFIXES", "LoadedModel", "default_transform", "load_model"]
