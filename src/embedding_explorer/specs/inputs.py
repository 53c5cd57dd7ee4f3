"""What ``explore`` does with a model or data given as a spec string (or as loaded specs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..reducers import Reducer, ReduceSpec
from .data import LoadedData, load_data
from .models import LoadedModel, load_model


def is_spec(model: Any, data: Any) -> bool:
    """Whether ``explore`` was given a spec (or loaded spec) for the model or the data."""
    return isinstance(model, (str, LoadedModel)) or isinstance(data, (str, Path, LoadedData))


def resolve(
    model: Any,
    data: Any,
    layers: Sequence[str] | Mapping[str, str] | str,
    reduce: ReduceSpec | Mapping[str, ReduceSpec],
    kwargs: dict[str, Any],
    batch_size: int = 64,
    *,
    input_stats: bool = True,
) -> tuple[Any, Any, ReduceSpec | Mapping[str, ReduceSpec], dict[str, Any]]:
    """The module, data, reducers and ``explore`` keyword arguments that specs stand for.

    A model spec is loaded with :func:`load_model`, a data spec with :func:`load_data` (default
    options) for that model. The data's metadata, renderings and label names fill the
    ``kwargs`` the caller left as None, and its batches are :meth:`LoadedData.batches` (image
    files decoded once, for the model and the thumbnails, the thumbnails' input statistics taken
    there with ``input_stats``); the model's own reducers
    (sentence-transformers' pooled outputs) apply to the captured layers when ``reduce`` is None
    or one method name.
    """
    loaded_model = load_model(model) if isinstance(model, str) else model
    module = loaded_model.module if isinstance(loaded_model, LoadedModel) else loaded_model
    if isinstance(data, (str, Path)):
        data = load_data(data, loaded_model if isinstance(loaded_model, LoadedModel) else None)
    kwargs = dict(kwargs)
    if isinstance(data, LoadedData):
        for key, value in data.explore_kwargs().items():
            if kwargs.get(key) is None:
                kwargs[key] = value
        if per_token(reduce) and data.kind == "texts":
            kwargs["render"] = None  # each token is shown within its own text, from the tokens
        # decoded once with their thumbnails where the data's own renderings are the ones shown
        shown = kwargs.get("render") is data.render
        data = data.batches(batch_size, input_stats=input_stats) if shown else data.data
    if (
        isinstance(reduce, (str, type(None)))
        and isinstance(loaded_model, LoadedModel)
        and loaded_model.reduce
    ):
        reduce = _with_model_selects(reduce, _shown_names(layers), loaded_model.reduce)
    return module, data, reduce, kwargs


def per_token(reduce: ReduceSpec | Mapping[str, ReduceSpec]) -> bool:
    """Whether ``reduce`` makes a per-token run (``"tokens"``, for one layer or all)."""
    specs = list(reduce.values()) if isinstance(reduce, Mapping) else [reduce]
    return any(spec == "tokens" or (isinstance(spec, Reducer) and spec.method == "tokens") for spec in specs)


def _with_model_selects(
    method: str | None, shown: Mapping[str, str], selects: Mapping[str, Reducer]
) -> ReduceSpec | dict[str, ReduceSpec]:
    """``method`` for every layer, reading the model's own output key where it names one (the
    ``sentence_embedding`` of a sentence-transformers pooling module)."""
    picked = {name: selects[path] for name, path in shown.items() if path in selects}
    if not picked:
        return method
    return {
        name: Reducer(method or "auto", select=picked[name].select) if name in picked else method
        for name in shown
    }


def _shown_names(layers: Sequence[str] | Mapping[str, str] | str) -> dict[str, str]:
    """``{shown name: module path}`` of explore's ``layers`` argument (``"name:i"`` calls kept)."""
    if isinstance(layers, str):
        layers = [layers]
    pairs = layers.items() if isinstance(layers, Mapping) else ((name, name) for name in layers)
    return {str(name): str(path).split(":")[0] for name, path in pairs}
