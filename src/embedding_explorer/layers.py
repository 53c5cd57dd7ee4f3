"""Which layers? Every named module of a model, what it outputs on one real batch, and the
reduction that :func:`~embedding_explorer.explore` would apply to it.

:func:`list_layers` hooks every module, runs the model once on the first batch of ``example``
and records each module's type, output shape, how many times it ran (a shared module runs
several times and then needs a ``"name:i"`` suffix) and what the default reducer makes of it.
:func:`format_layers` prints that as an indented tree; runs of identical blocks
(``encoder.layer.1`` ... ``encoder.layer.10``) fold into one line unless a pattern is given.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .batches import Batch, iter_batches
from .build.plan import _checked_device
from .capture import model_call_error, takes_features_dict
from .exceptions import EmbeddingExplorerError, LayerOutputError
from .extract import evaluating
from .placement import execution_device
from .reducers import Reducer, reduce_output, select_tensor

EXAMPLE_ROWS = 2  # samples of ``example`` run through the model


@dataclass(frozen=True)
class LayerInfo:
    """One named module: what it is, what it gave on the example batch, how it would be reduced.

    ``shape`` is the output's shape (batch first) and ``calls`` how often it ran in one forward
    pass; both None without an example. ``dim`` is the width after the default reduction, or None
    when that reduction fails (``reduction`` then says why); ``name`` is what ``layers=`` takes.
    """

    name: str
    type: str
    depth: int
    n_parameters: int
    shape: tuple[int, ...] | None = None
    calls: int | None = None
    reduction: str = ""
    dim: int | None = None

    @property
    def capturable(self) -> bool:
        """Whether ``layers=[name]`` works with the default reducer as it is."""
        return self.dim is not None and self.calls == 1


def list_layers(
    model: nn.Module,
    example: Any = None,
    *,
    device: str | torch.device | None = None,
    match: str | None = None,
) -> list[LayerInfo]:
    """Every named module of ``model``, in ``named_modules()`` order, with its output on ``example``.

    Parameters
    ----------
    model : torch.nn.Module
    example : data, optional
        Anything ``explore`` accepts as data (a tensor, a Dataset, a DataLoader, a dict batch,
        ``ee.text_batches(...)``); only its first batch (``EXAMPLE_ROWS`` samples where the data
        can be sliced) runs. None: types and parameter counts only.
    device : optional
        Default: the model's own device (an offloaded model stays where accelerate put it).
    match : str, optional
        Keep modules whose name matches: a glob (``"*attention*"``, the whole name) or, where no
        name matches it as a glob, a regular expression (``"attention$"``, anywhere in the name).

    Returns
    -------
    list of LayerInfo
        The first entry is ``"input"`` (the model input) when an example with tensor inputs is given.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    modules = [(name, module) for name, module in model.named_modules() if name]
    if example is None:
        infos = [_info(name, module) for name, module in modules]
    else:
        infos = _probe(model, modules, _first_batch(example), _device(model, device))
    return infos if match is None else _matching(infos, match)


def _info(name: str, module: nn.Module, **seen: Any) -> LayerInfo:
    n_params = sum(p.numel() for p in module.parameters())
    return LayerInfo(name, type(module).__name__, name.count("."), n_params, **seen)


def _first_batch(example: Any) -> Batch:
    try:
        return next(iter(iter_batches(_head(example), EXAMPLE_ROWS)))
    except StopIteration:
        raise EmbeddingExplorerError("example has no samples; give at least one batch") from None


def _head(example: Any) -> Any:
    """The first rows of a whole tensor or a dict batch of tensors (so a data set is not run whole)."""
    if isinstance(example, torch.Tensor) and example.ndim > 0:
        return example[:EXAMPLE_ROWS]
    if isinstance(example, dict) and all(isinstance(v, torch.Tensor) for v in example.values()):
        return [{k: v[:EXAMPLE_ROWS] for k, v in example.items()}]
    return example


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """``device`` checked as explore checks it (a torch device this machine has), else the model's own."""
    checked = _checked_device(device, here=True)
    return checked if checked is not None else execution_device(model)


def _probe(
    model: nn.Module, modules: Sequence[tuple[str, nn.Module]], batch: Batch, device: torch.device
) -> list[LayerInfo]:
    outputs: dict[str, list[Any]] = {name: [] for name, _ in modules}
    handles = []

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            outputs[name].append(_summary(output, name, batch))

        return hook

    try:
        handles = [module.register_forward_hook(hook_for(name)) for name, module in modules]
        with evaluating(model, device), torch.inference_mode():
            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
            args, kwargs = batch.model_args(device, dtype)
            if kwargs and takes_features_dict(model, kwargs):
                args, kwargs = (kwargs,), {}
            try:
                model(*args, **kwargs)
            except EmbeddingExplorerError:
                raise
            except Exception as e:  # the example does not fit the model: say how it was called
                raise model_call_error(model, args, kwargs, e) from e
    finally:
        for handle in handles:
            handle.remove()
    infos = []
    if isinstance(batch.inputs, torch.Tensor):
        shape, reduction, dim = _summary(batch.inputs, "input", batch, Reducer("flatten"))
        infos.append(LayerInfo("input", "input", 0, 0, shape, 1, reduction, dim))
    for name, module in modules:
        seen = outputs[name]
        if not seen:
            why = "a container: not called" if isinstance(module, (nn.ModuleList, nn.ModuleDict)) else ""
            infos.append(_info(name, module, calls=0, reduction=why or "did not run"))
            continue
        shape, reduction, dim = seen[0]
        if len(seen) > 1:
            reduction = f"runs {len(seen)} times: name one call, e.g. '{name}:0'; {reduction}"
        infos.append(_info(name, module, shape=shape, calls=len(seen), reduction=reduction, dim=dim))
    return infos


def _summary(
    output: Any, name: str, batch: Batch, reducer: Reducer | None = None
) -> tuple[tuple[int, ...] | None, str, int | None]:
    """(output shape, what the default reducer does to it, the resulting width)."""
    reducer = reducer or Reducer()
    try:
        x = select_tensor(output, None, name)
    except LayerOutputError:
        return None, f"outputs {type(output).__name__}: needs a callable reducer", None
    shape = tuple(int(s) for s in x.shape)
    prefix = "" if isinstance(output, torch.Tensor) else f"{_element(output, x)} of {type(output).__name__}: "
    try:
        dim = int(reduce_output(output, reducer, name, batch.size, batch.attention_mask).shape[1])
    except LayerOutputError as error:
        return shape, prefix + _short(str(error)), None
    return shape, prefix + _describe(shape, reducer, batch.attention_mask is not None, dim), dim


def _element(output: Any, x: torch.Tensor) -> str:
    """Which element of a tuple or dict output the default reducer takes (``[0]``, ``['key']``)."""
    items = output.items() if isinstance(output, dict) or hasattr(output, "keys") else enumerate(output)
    return next((f"[{key!r}]" for key, value in items if value is x), "[?]")


def _describe(shape: tuple[int, ...], reducer: Reducer, masked: bool, dim: int) -> str:
    rank = len(shape)
    if reducer.method == "flatten" and rank > 2:
        return f"flatten -> {dim}"
    if rank <= 2:
        return f"kept -> {dim}"
    if rank == 3:
        return f"mean over {shape[1]} tokens{' (mask-aware)' if masked else ''} -> {dim}"
    return f"mean over {shape[2]}x{shape[3]} positions -> {dim}"


def _short(message: str) -> str:
    """An error's first clause, for a table cell."""
    text = message.split(";")[0]
    return re.sub(r"^layer '[^']*' ", "", text)


def _matching(infos: list[LayerInfo], pattern: str) -> list[LayerInfo]:
    """The modules ``pattern`` matches: as a glob (the whole name) where it has glob characters
    and matches some name so, else as a regular expression (anywhere in the name), so both
    ``"blocks.1*"`` and ``"layer.[0-3].attention$"`` (a regex) work; a pattern that is no valid regular
    expression matches as a substring."""
    if any(c in pattern for c in "*?["):
        globbed = [i for i in infos if fnmatch.fnmatchcase(i.name, pattern)]
        if globbed:
            return globbed
    try:
        expression = re.compile(pattern)
    except re.error:
        return [i for i in infos if pattern in i.name]
    return [i for i in infos if expression.search(i.name)]


def format_layers(infos: Sequence[LayerInfo], *, tree: bool = True) -> str:
    """A table of ``infos``: name, type, output shape, calls, reduction.

    With ``tree``, names are indented by depth and the middle of a run of three or more sibling
    blocks of the same type (``layer.0`` ... ``layer.11``) is one line naming them, so a
    100-layer model fits a screen; without it (for a ``match``), every row is shown flat.
    """
    rows = list(_folded(infos) if tree else infos)
    if not rows:
        return "no module matches"
    header = ("name", "type", "output", "calls", "reduction")
    cells = [_cells(row, tree) for row in rows]
    table = [header, *(c for c in cells if c is not None)]
    widths = [max(len(c[i]) for c in table) for i in range(len(header) - 1)]
    lines = []
    for row, c in zip([None, *rows], [header, *cells], strict=True):
        if c is None and isinstance(row, _Fold):
            lines.append(_fold_line(row))
        elif c is not None:
            lines.append("  ".join(v.ljust(w) for v, w in zip(c[:-1], widths, strict=True)) + "  " + c[-1])
    return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True)
class _Fold:
    """The middle blocks of a repeated run, shown as one line."""

    first: LayerInfo
    last: LayerInfo
    count: int
    n_modules: int


def _fold_line(row: _Fold) -> str:
    return (
        f"{'  ' * row.first.depth}... {row.count} more {row.first.type} blocks "
        f"({row.first.name} .. {row.last.name}, {row.n_modules} modules)"
    )


def _cells(row: LayerInfo | _Fold, indent: bool) -> tuple[str, ...] | None:
    if isinstance(row, _Fold):
        return None  # one line across the columns
    shape = "" if row.shape is None else "(" + ", ".join(map(str, row.shape)) + ")"
    calls = "" if row.calls is None else str(row.calls)
    return ("  " * row.depth * indent + row.name, row.type, shape, calls, row.reduction)


def _folded(infos: Sequence[LayerInfo]) -> Iterator[LayerInfo | _Fold]:
    """``infos`` with the middle of each run of numbered same-type siblings folded away: the first
    and last block stay whole, so both ends of a stack are in view."""
    i = 0
    while i < len(infos):
        run = _numbered_run(infos, i)
        if len(run) < 3:
            yield infos[i]
            i += 1
            continue
        first, *middle, last = run
        yield from infos[first[0] : first[1]]
        yield _Fold(infos[middle[0][0]], infos[middle[-1][0]], len(middle), middle[-1][1] - middle[0][0])
        yield from infos[last[0] : last[1]]
        i = last[1]


def _numbered_run(infos: Sequence[LayerInfo], start: int) -> list[tuple[int, int]]:
    """Spans ``[begin, end)`` of the sibling blocks ``prefix.0``, ``prefix.1``... of one type
    starting at ``start`` (each block with its submodules), or [] if ``start`` begins none."""
    head = infos[start]
    prefix, _, index = head.name.rpartition(".")
    if not index.isdigit():
        return []
    spans: list[tuple[int, int]] = []
    i, expected = start, int(index)
    while i < len(infos) and infos[i].name == _join(prefix, expected) and infos[i].type == head.type:
        end = i + 1
        while end < len(infos) and infos[end].name.startswith(infos[i].name + "."):
            end += 1
        spans.append((i, end))
        i, expected = end, expected + 1
    return spans


def _join(prefix: str, index: int) -> str:
    return f"{prefix}.{index}" if prefix else str(index)


__all__ = ["LayerInfo", "format_layers", "list_layers"]
