"""``embedding-explorer explore``: a model spec, a data spec and layer names in, a run out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exceptions import SpecError
from ..explore import explore
from ..run import Run
from .data import load_data
from .inputs import per_token, resolve
from .models import load_model

DTYPES = ("float32", "bfloat16", "float16")


def explore_specs(
    model: str,
    data: str,
    layers: Sequence[str],
    *,
    out: str | Path | None = None,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    n_components: int = 10,
    batch_size: int = 64,
    device: str | None = None,
    dtype: str = "float32",
    reduce: str | None = None,
    pretrained: bool = True,
    weights: str | None = None,
    progress: bool = True,
    wait: bool | float = False,
    name: str | None = None,
    workers: int = 0,
) -> Run:
    """What the command does: load both specs, explore ``layers``, return the run.

    The run is named ``name`` or :func:`default_name` (e.g. ``resnet18-scenes``, or
    ``resnet18-scenes-test-n500`` for ``--split test --limit 500``) and saved under
    ``runs/<name>`` unless ``out`` is given. Every check that can fail runs before anything is
    written: a bad spec, column, layer or option leaves nothing on disk.
    """
    if not layers:
        raise SpecError("--layers names no layer; e.g. --layers layer3 or --layers layer2,layer4")
    extra = _dtype_argument(dtype)
    loaded_model = load_model(model, pretrained=pretrained, weights=weights)
    loaded_data = load_data(
        data,
        loaded_model,
        text_column=text_column,
        image_column=image_column,
        label_column=label_column,
        limit=limit,
        split=split,
        batch_size=batch_size,
        workers=workers,
    )
    if per_token(reduce) and loaded_data.kind != "texts":
        raise SpecError(
            f"--reduce tokens makes one sample per token of a text, but data {data!r} holds "
            f"{loaded_data.kind}; use --reduce mean, first, last, max or flatten (or leave it out)"
        )
    name = name or default_name(loaded_model.name, loaded_data.name, split, limit)
    given: dict[str, Any] = {"metadata": None, "render": None, "label_names": None}
    module, batches, reducers, kwargs = resolve(
        loaded_model, loaded_data, list(layers), reduce, given, batch_size
    )
    return explore(
        module,
        batches,
        list(layers),
        out=out if out is not None else Path("runs") / name,
        name=name,
        n_components=n_components,
        batch_size=batch_size,
        reduce=reducers,
        device=device,
        progress=progress,
        wait=wait,
        **kwargs,
        **extra,
    )


def _dtype_argument(dtype: str) -> dict[str, Any]:
    """``dtype=`` for ``explore``: None for float32 (the run's key stays that of a default run)."""
    if dtype not in DTYPES:
        raise SpecError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return {"dtype": None if dtype == "float32" else dtype}


def default_name(model: str, data: str, split: str | None, limit: int | None) -> str:
    """``<model>-<data>``, then ``-<split>`` and ``-n<limit>`` where given: a test split, or a
    subset, is another run beside the train split's or the whole set's, not its replacement."""
    parts = [model, data, *([split] if split else []), *([f"n{limit}"] if limit else [])]
    return _slug("-".join(parts))


def _slug(text: str) -> str:
    """A run name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def split_layers(text: str) -> list[str]:
    """``--layers a,b`` as ``["a", "b"]`` (blank entries dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]
