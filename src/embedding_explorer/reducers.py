"""Turn one layer's output for a batch into one vector per sample.

Rank 2 ``(B, D)`` is kept. Rank 3 ``(B, T, D)`` token sequences: ``"mean"`` over tokens (honouring
an attention mask), ``"first"`` or ``"last"`` (the last *unmasked* token). Rank 4 ``(B, C, H, W)``
feature maps: ``"mean"`` or ``"max"`` over space, or ``"flatten"``. ``"tokens"`` keeps every
real token of a ``(B, T, D)`` output as its own row (a per-token run, see :mod:`tokens`). Other
ranks are flattened only when asked. Tuple, list, dict and ``ModelOutput`` outputs use their
first tensor unless a :class:`Reducer` names an index or key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .exceptions import LayerOutputError
from .fingerprint import callable_digest

_NUMPY_GATHER = (torch.float32, torch.float64, torch.float16)  # CPU dtypes numpy gathers

METHODS = ("auto", "mean", "first", "last", "max", "flatten", "tokens")

ReduceFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Reducer:
    """How one layer's output becomes one vector per sample.

    Parameters
    ----------
    method : {"auto", "mean", "first", "last", "max", "flatten", "tokens"} or callable
        ``"auto"`` keeps rank 2, means tokens of rank 3 and space of rank 4. ``"tokens"`` makes
        every real (non-padding) token its own sample. A callable receives the selected output
        tensor (batch first) and returns a ``(B, D)`` tensor.
    select : int or str, optional
        Which element of a tuple/list (index) or dict/ModelOutput (key) output to use.
        Default: the first tensor.
    skip_special : bool, default=False
        With ``"tokens"``: leave special tokens ([CLS], [SEP], <bos>...) out of the samples.
    """

    method: str | ReduceFn = "auto"
    select: int | str | None = None
    skip_special: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.method, str) and self.method not in METHODS:
            raise ValueError(f"reduce method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.skip_special and self.method != "tokens":
            raise ValueError(f"skip_special=True is for reduce 'tokens', not {self.describe()!r}")

    def describe(self) -> str:
        """A stable text form, for the manifest and run fingerprints."""
        if callable(self.method):
            fn = self.method
            name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
            name += f"#{callable_digest(fn)[:16]}"  # code, defaults, closure: two lambdas differ
        else:
            name = self.method
            if self.skip_special:
                name += "(skip_special)"
        return name if self.select is None else f"{name}[{self.select!r}]"


ReduceSpec = str | ReduceFn | Reducer | None


def as_reducer(spec: ReduceSpec) -> Reducer:
    """Normalise a user's reduce spec (None, a method name, a callable or a Reducer)."""
    if spec is None:
        return Reducer()
    if isinstance(spec, Reducer):
        return spec
    if isinstance(spec, str) or callable(spec):
        return Reducer(spec)
    raise TypeError(f"reduce must be a method name, a callable or a Reducer, not {type(spec).__name__}")


def reducers_for(layers: Sequence[str], reduce: ReduceSpec | Mapping[str, ReduceSpec]) -> dict[str, Reducer]:
    """One Reducer per layer from ``reduce``: None, one spec for all, or ``{layer: spec}``."""
    if isinstance(reduce, Mapping):
        unknown = sorted(set(reduce) - set(layers))
        if unknown:
            raise ValueError(f"reduce names layers that are not captured: {unknown}; layers: {list(layers)}")
        return {layer: as_reducer(reduce.get(layer)) for layer in layers}
    reducer = as_reducer(reduce)
    return {layer: reducer for layer in layers}


def select_tensor(output: Any, select: int | str | None, layer: str) -> torch.Tensor:
    """The tensor of a module output that the reducer works on."""
    if isinstance(output, torch.Tensor):
        if select is not None:
            raise LayerOutputError(f"layer {layer!r} returns a single tensor; remove select={select!r}")
        return output
    if isinstance(output, Mapping):  # dicts and transformers' ModelOutput
        if select is None:
            for value in output.values():
                if isinstance(value, torch.Tensor):
                    return value
            raise LayerOutputError(f"layer {layer!r} returned a mapping without tensors: keys {list(output)}")
        if select not in output:
            raise LayerOutputError(f"layer {layer!r} output has no key {select!r}; keys: {list(output)}")
        return _require_tensor(output[select], layer, f"key {select!r}")
    if isinstance(output, (tuple, list)):
        if select is None:
            for value in output:
                if isinstance(value, torch.Tensor):
                    return value
            raise LayerOutputError(f"layer {layer!r} returned a {type(output).__name__} without tensors")
        if not isinstance(select, int) or not -len(output) <= select < len(output):
            raise LayerOutputError(
                f"layer {layer!r} returns a {type(output).__name__} of {len(output)} elements; "
                f"select={select!r} is not a valid index"
            )
        return _require_tensor(output[select], layer, f"element {select}")
    raise LayerOutputError(
        f"layer {layer!r} returned {type(output).__name__}, not a tensor; give a callable reducer "
        "(reduce={layer: fn}) that maps it to a (batch, features) tensor"
    )


def _require_tensor(value: Any, layer: str, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise LayerOutputError(
            f"layer {layer!r}: {where} of its output is {type(value).__name__}, not a tensor"
        )
    return value


def reduce_output(
    output: Any,
    reducer: Reducer,
    layer: str,
    batch_size: int,
    attention_mask: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce a module output to a ``(batch_size, D)`` tensor (same device and dtype).

    For ``"tokens"``, ``keep`` is the batch's ``(B, T)`` choice of token samples and
    ``batch_size`` the number of them."""
    x = source = select_tensor(output, reducer.select, layer)
    if callable(reducer.method):
        x = reducer.method(x)
        if not isinstance(x, torch.Tensor):
            raise LayerOutputError(
                f"the reducer of layer {layer!r} returned {type(x).__name__}, not a tensor"
            )
        if x.ndim != 2:
            raise LayerOutputError(
                f"the reducer of layer {layer!r} returned shape {tuple(x.shape)}; "
                "it must be (batch, features)"
            )
    else:
        if x.is_complex():
            raise LayerOutputError(_complex_message(layer))
        if not x.is_floating_point():  # integer maps or token ids: means need a float dtype
            x = x.float()
        if reducer.method == "tokens":
            x = _token_rows(x, layer, keep)
        else:
            x = _reduce_by_name(x, reducer.method, layer, attention_mask, batch_size)
    if x.shape[0] != batch_size:
        raise LayerOutputError(
            f"layer {layer!r} gave {x.shape[0]} rows for a batch of {batch_size} samples; "
            "its output is not batch-first (use a callable reducer)"
        )
    if x.is_complex():  # never drop the imaginary part silently
        raise LayerOutputError(_complex_message(layer))
    if not x.is_floating_point():
        x = x.float()
    if _shares_memory(x, source):
        # a view of the module's own output: a later in-place op (ReLU(inplace=True) in a
        # ResNet) would change the captured values, so keep a copy
        x = x.clone()
    return x


def _token_rows(x: torch.Tensor, layer: str, keep: torch.Tensor | None) -> torch.Tensor:
    """The rows of the kept tokens of a ``(B, T, D)`` output, in row-major (text, position) order."""
    if keep is None:
        raise LayerOutputError(
            f"layer {layer!r} reduces by 'tokens' but the batch has no token selection; "
            "pass data=ee.text_batches(texts, tokenizer)"
        )
    if x.ndim != 3 or tuple(x.shape[:2]) != tuple(keep.shape):
        raise LayerOutputError(
            f"layer {layer!r} output has shape {tuple(x.shape)}; reduce 'tokens' needs "
            f"(batch, tokens, features) with (batch, tokens) = {tuple(keep.shape)}"
        )
    grid = x.reshape(-1, x.shape[-1])  # (B*T, D): the kept rows are one gather
    if grid.device.type == "cpu" and grid.dtype in _NUMPY_GATHER:
        # numpy's take on the calling thread: torch's gathers (x[keep], index_select) go
        # through its thread pool, where a batch's gather of ~1 ms waited for a time slice on
        # a busy machine (measured: means of 0.4-7 ms against 0.1 ms for take)
        flat = np.flatnonzero(keep.cpu().numpy().reshape(-1))
        return torch.from_numpy(np.take(grid.detach().numpy(), flat, axis=0))
    return grid.index_select(0, keep.reshape(-1).nonzero().squeeze(1).to(device=grid.device))


def _complex_message(layer: str) -> str:
    return (
        f"layer {layer!r} gives complex values; PCA needs real features: reduce them with a "
        "callable that returns real ones, e.g. ee.Reducer(lambda x: torch.view_as_real(x).flatten(1))"
    )


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _reduce_by_name(
    x: torch.Tensor, method: str, layer: str, attention_mask: torch.Tensor | None, batch_size: int
) -> torch.Tensor:
    rank = x.ndim
    scalar_head = method in ("auto", "mean", "flatten")
    one_each = rank == 1 and (attention_mask is None or x.shape[0] == batch_size)
    if scalar_head and (one_each or (rank == 0 and batch_size == 1)):
        # one value per sample, e.g. a squeezed regression head (a batch of one squeezes to ())
        return x.reshape(-1, 1)
    if rank < 2:
        raise LayerOutputError(f"layer {layer!r} output has shape {tuple(x.shape)}: not one row per sample")
    if method == "flatten":
        return x.reshape(x.shape[0], -1)
    if rank == 2:
        if method in ("auto", "mean"):
            return x
        raise LayerOutputError(
            f"layer {layer!r} output is (batch, features); reduce {method!r} needs rank 3 or 4"
        )
    if rank == 3:
        return _reduce_tokens(x, "mean" if method == "auto" else method, layer, attention_mask)
    if rank == 4:
        if method in ("auto", "mean"):
            return x.mean(dim=(2, 3))
        if method == "max":
            return x.amax(dim=(2, 3))
        raise LayerOutputError(
            f"layer {layer!r} output is a (B, C, H, W) map; reduce {method!r} is not for maps "
            "(mean, max, flatten)"
        )
    raise LayerOutputError(
        f"layer {layer!r} output has rank {rank} (shape {tuple(x.shape)}); choose reduce='flatten' "
        "or a callable reducer"
    )


def _reduce_tokens(
    x: torch.Tensor, method: str, layer: str, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    keep = None  # (B, T) bool: the tokens that count
    if attention_mask is not None and attention_mask.shape[:2] == x.shape[:2]:
        keep = attention_mask.to(device=x.device) > 0
    if method == "mean":
        if keep is None:
            return x.mean(dim=1)
        # masked_fill, not a product: a NaN at a padded position (some attention kernels emit
        # them) must not leak in; float32 sums so half-precision outputs do not overflow (float64
        # stays float64, as the unmasked mean keeps it)
        wide = x if x.dtype == torch.float64 else x.float()
        total = wide.masked_fill(~keep.unsqueeze(-1), 0.0).sum(dim=1)
        return total / keep.sum(dim=1, keepdim=True).clamp_min(1)
    if method in ("first", "last"):
        end = 0 if method == "first" else -1
        if keep is None:
            return x[:, end]
        # the first or last unmasked position, whether padding is on the right or the left (a
        # row with every token masked: position 0)
        length = x.shape[1]
        positions = torch.arange(length, device=x.device).expand(x.shape[0], -1)
        if method == "first":
            at = torch.where(keep, positions, torch.full_like(positions, length)).amin(dim=1)
            at = at.masked_fill(at == length, 0)
        else:
            at = torch.where(keep, positions, torch.full_like(positions, -1)).amax(dim=1).clamp_min(0)
        return x[torch.arange(x.shape[0], device=x.device), at]
    if method == "max":
        if keep is None:
            return x.amax(dim=1)
        # a row with every token masked gives zeros rather than -inf
        keep = keep | ~keep.any(dim=1, keepdim=True)
        return x.masked_fill(~keep.unsqueeze(-1), float("-inf")).amax(dim=1)
    raise LayerOutputError(f"layer {layer!r} output is (B, T, D) tokens; reduce {method!r} is not for tokens")
