"""Forward hooks that turn named modules' outputs into one vector per sample.

Layers are named as in ``model.named_modules()``; ``"input"`` is the model input itself. A
module that runs more than once per forward pass (a shared ReLU) is refused unless the name
picks one call with a suffix, e.g. ``"layer1.0.relu:1"`` for its second call.

The forward pass stops as soon as the last hooked layer has fired: the first batch runs whole
(so a module that runs several times is seen), and later batches stop after the call of the
module that fired last in it; the layers after it never run.

Dict batches are keyword arguments (``model(**batch)``), except for a model whose forward takes
one features dict (sentence-transformers: ``forward(input, **kwargs)``), which gets the dict.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import torch
from torch import nn

from .batches import Batch, input_tensor
from .exceptions import EmbeddingExplorerError, LayerNotFoundError, LayerOutputError, MultipleCallsError
from .reducers import Reducer, reduce_output, select_tensor

INPUT_LAYER = "input"
# torch >= 2.5 names it at the top level; before, only torch.cuda.OutOfMemoryError
_OUT_OF_MEMORY: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
FORWARD_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def forward_dtype(name: str | None) -> torch.dtype | None:
    """The torch dtype of ``explore(dtype=...)``; None keeps the model's own."""
    if name is None:
        return None
    if name not in FORWARD_DTYPES:
        raise ValueError(f"dtype={name!r}: use one of {', '.join(map(repr, FORWARD_DTYPES))} (or None)")
    return FORWARD_DTYPES[name]


@dataclass(frozen=True)
class LayerRef:
    """A layer name resolved to a module path and, optionally, which of its calls to keep."""

    name: str
    module: str
    call: int | None = None


def resolve_layers(
    model: nn.Module | None, layers: Sequence[str] | Mapping[str, str] | str
) -> list[LayerRef]:
    """Check layer names against the model and parse ``"module:call"`` suffixes.

    ``layers`` is a name, a list of names, or ``{shown name: module path}`` to give long paths
    (``"0.model.encoder.layer.3"``) short names in the run and the UI.
    """
    if isinstance(layers, str):
        layers = [layers]
    pairs = list(layers.items()) if isinstance(layers, Mapping) else [(n, n) for n in layers]
    if not pairs:
        raise ValueError("layers is empty; name at least one module (or 'input')")
    targets = [target for _, target in pairs]
    duplicates = sorted({t for t in targets if isinstance(t, str) and targets.count(t) > 1})
    if duplicates:
        raise ValueError(f"layers lists {duplicates} more than once")
    modules = dict(model.named_modules()) if model is not None else {}
    refs = []
    for shown, name in pairs:
        if not isinstance(name, str) or not isinstance(shown, str):
            raise TypeError(f"layer names are strings, got {shown!r}: {name!r}")
        if name == INPUT_LAYER:
            refs.append(LayerRef(shown, INPUT_LAYER))
            continue
        if model is None:
            raise ValueError(f"layer {name!r} needs a model; with model=None only 'input' can be captured")
        module, _, call_text = name.partition(":")
        call = None
        if call_text:
            if not call_text.isdigit():
                raise ValueError(f"layer {name!r}: the part after ':' must be a call index (0, 1, ...)")
            call = int(call_text)
        if module not in modules or module == "":
            raise LayerNotFoundError(_unknown_layer_message(name, module, list(modules)))
        refs.append(LayerRef(shown, module, call))
    return refs


def _unknown_layer_message(name: str, module: str, valid: list[str]) -> str:
    valid = [v for v in valid if v]
    close = difflib.get_close_matches(module, valid, n=5, cutoff=0.4)
    hint = f"closest names: {', '.join(close)}" if close else f"some valid names: {', '.join(valid[:8])}"
    return f"the model has no module {name!r}; {hint} (or 'input' for the model input)"


@dataclass
class _Slot:
    """What one hooked layer saw during the current batch."""

    ref: LayerRef
    reducer: Reducer
    calls: int = 0
    value: torch.Tensor | None = None


@dataclass
class LayerCapture:
    """Context manager: hooks on the named modules, always removed on exit.

    Call :meth:`forward` per batch; it returns ``{layer: (batch, D) tensor}``. ``dtype`` runs the
    forward pass in that floating dtype: inputs are cast to it, and a model whose weights are in
    another dtype runs under ``torch.autocast`` (its weights are never changed).

    The first batch runs the whole model; later ones stop as soon as the last hooked layer has
    fired, unless ``keep_output`` says, given the first batch's output, that the model's output
    is needed (``explore(outputs=...)`` records it): then every pass runs whole. The model's
    output of a whole pass is :attr:`last_output` (None after a pass that stopped early).
    """

    model: nn.Module | None
    refs: Sequence[LayerRef]
    reducers: Mapping[str, Reducer]
    dtype: torch.dtype | None = None
    keep_output: Callable[[Any], bool] | None = None
    last_output: Any = field(default=None, init=False)  # the model's output for the last batch
    _slots: dict[str, list[_Slot]] = field(default_factory=dict, init=False)
    _handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list, init=False)
    _batch: Batch | None = field(default=None, init=False)
    _fired: dict[str, int] = field(default_factory=dict, init=False)  # calls per hooked module, this batch
    _events: list[tuple[str, int]] = field(default_factory=list, init=False)  # hook calls, first pass
    _stop_at: tuple[str, int] | None = field(default=None, init=False)  # learned from the first batch
    _hook_failed: bool = field(default=False, init=False)  # a hook (a reducer) raised in this pass

    @property
    def _dtype(self) -> torch.dtype | None:
        """The dtype floating inputs are cast to: ``dtype``, else the model's parameters' own."""
        if self.model is None:
            return None
        if self.dtype is not None:
            return self.dtype
        return next((p.dtype for p in self.model.parameters() if p.is_floating_point()), None)

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """Autocast to ``dtype`` when the model's weights are in another floating dtype."""
        if self.model is None or self.dtype is None:
            return contextlib.nullcontext()
        weights = {p.dtype for p in self.model.parameters() if p.is_floating_point()}
        if weights <= {self.dtype}:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    def __enter__(self) -> LayerCapture:
        modules = dict(self.model.named_modules()) if self.model is not None else {}
        try:
            for ref in self.refs:
                if ref.module == INPUT_LAYER:
                    continue
                slot = _Slot(ref, self.reducers[ref.name])
                if ref.module not in self._slots:
                    self._slots[ref.module] = []
                    self._handles.append(modules[ref.module].register_forward_hook(self._hook(ref.module)))
                self._slots[ref.module].append(slot)
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._slots.clear()

    def _hook(self, module_name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            batch = self._batch
            if batch is None:  # the model ran outside our forward (e.g. inside a reducer)
                return
            try:
                call_index = self._fired.get(module_name, 0)
                self._fired[module_name] = call_index + 1
                if self._stop_at is None:
                    self._events.append((module_name, call_index))
                for slot in self._slots[module_name]:
                    call = slot.calls
                    slot.calls += 1
                    if slot.ref.call is None and call > 0:
                        slot.value = None  # several calls: reported after the forward pass
                    elif slot.ref.call is None or slot.ref.call == call:
                        _check_real_output(output, slot)
                        slot.value = reduce_output(
                            output,
                            slot.reducer,
                            slot.ref.name,
                            batch.size,
                            batch.attention_mask,
                            batch.tokens.keep if batch.tokens is not None else None,
                        )
            except Exception:
                self._hook_failed = True  # not the model's own failure: raised as it is
                raise
            if self._stop_at == (module_name, call_index):
                raise _StopForward

        return hook

    def forward(self, batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
        """Run the model on one batch and return each layer's reduced output."""
        for slots in self._slots.values():
            for slot in slots:
                slot.calls, slot.value = 0, None
        # the input first: a model may change its input in place (a leading inplace ReLU)
        inputs = {
            ref.name: reduce_output(
                input_tensor(batch, ref.name).to(device, non_blocking=True),
                self.reducers[ref.name],
                ref.name,
                batch.size,
            )
            for ref in self.refs
            if ref.module == INPUT_LAYER
        }
        self._batch = batch
        self._fired.clear()
        try:
            if self.model is not None and self._slots:
                args, kwargs = batch.model_args(device, self._dtype)
                if kwargs and takes_features_dict(self.model, kwargs):
                    args, kwargs = (kwargs,), {}
                self.last_output = None
                self._hook_failed = False
                try:
                    with self._autocast(device):
                        self.last_output = self.model(*args, **kwargs)
                except Exception as e:
                    # a hook's error (a reducer's) is raised as it is, as is a later batch's (the
                    # first one ran, so the model and the data fit)
                    if (
                        self._hook_failed
                        or self._stop_at is not None
                        or isinstance(e, EmbeddingExplorerError)
                    ):
                        raise
                    error = model_call_error(self.model, args, kwargs, e)
                    if isinstance(e, (MemoryError, _OUT_OF_MEMORY)):  # a caller may retry
                        e.add_note(str(error))  # with smaller batches: its type is kept
                        raise
                    raise error from e
                if self._stop_at is None:  # a whole pass: later ones stop where this one's hooks ended
                    keep = self.keep_output is not None and self.keep_output(self.last_output)
                    self._stop_at = _WHOLE_PASSES if keep else self._last_needed()
            else:
                self.last_output = None
        except _StopForward:
            self.last_output = None
        finally:
            self._batch = None
        out: dict[str, torch.Tensor] = {}
        for ref in self.refs:
            if ref.module == INPUT_LAYER:
                out[ref.name] = inputs[ref.name]
                continue
            slot = next(s for s in self._slots[ref.module] if s.ref == ref)
            out[ref.name] = self._checked_value(slot)
        return out

    def _last_needed(self) -> tuple[str, int] | None:
        """The hook call of the first (whole) pass after which every layer has what it keeps:
        call ``i`` of a ``"name:i"`` layer, the last call of the others (so a second call is seen)."""
        needed = []
        for slots in self._slots.values():
            for slot in slots:
                call = slot.ref.call if slot.ref.call is not None else slot.calls - 1
                needed.append((slot.ref.module, call))
        order = {event: i for i, event in enumerate(self._events)}
        if not all(event in order for event in needed):
            return None  # a layer did not run (or not that often): reported by _checked_value
        return max(needed, key=order.__getitem__)

    @staticmethod
    def _checked_value(slot: _Slot) -> torch.Tensor:
        ref = slot.ref
        if slot.calls == 0:
            raise LayerOutputError(f"module {ref.module!r} did not run in the forward pass")
        if ref.call is None and slot.calls > 1:
            choices = " or ".join(f"'{ref.module}:{i}'" for i in range(min(slot.calls, 3)))
            raise MultipleCallsError(
                f"module {ref.module!r} was called {slot.calls} times in one forward pass "
                f"(a shared module), so its outputs do not map one-to-one to samples; "
                f"name one call, e.g. {choices}"
            )
        if ref.call is not None and slot.calls <= ref.call:
            raise MultipleCallsError(
                f"layer {ref.name!r} asks for call {ref.call} of module {ref.module!r}, "
                f"which ran only {slot.calls} time(s) per forward pass"
            )
        if slot.value is None:  # pragma: no cover - guarded by the checks above
            raise LayerOutputError(f"layer {ref.name!r} captured nothing")
        return slot.value


_WHOLE_PASSES = ("", -1)  # a stop point no hook call matches: every pass runs the whole model


class _StopForward(BaseException):
    """Raised by the hook of the last hooked layer to end the forward pass there (a
    BaseException, so a model's own ``except Exception`` does not swallow it)."""


FEATURES_PARAMS = ("input", "features")


def takes_features_dict(model: nn.Module, kwargs: Mapping[str, Any]) -> bool:
    """Whether ``model.forward`` wants the batch dict as its one positional argument.

    True for sentence-transformers models (``forward(input: dict, **kwargs)``): the first
    parameter is named ``input`` or ``features`` and no batch key names a parameter.
    """
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional or params[0].name not in FEATURES_PARAMS:
        return False
    named = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return not named & set(kwargs)


def _check_real_output(output: Any, slot: _Slot) -> None:
    """Refuse a complex layer output (unless a callable reducer decides what to keep): its
    imaginary part would be lost."""
    if callable(slot.reducer.method):
        return
    x = select_tensor(output, slot.reducer.select, slot.ref.name)
    if x.is_complex():
        raise LayerOutputError(
            f"layer {slot.ref.name!r} outputs complex numbers ({x.dtype}); PCA here is over reals and "
            "the imaginary part would be lost: give it a callable reducer, e.g. "
            "reduce={layer: lambda z: torch.view_as_real(z).flatten(1)}"
        )


def model_call_error(
    model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any], error: Exception
) -> EmbeddingExplorerError:
    """The error for a model whose forward pass fails on the first batch (the data do not fit
    it): the call as it was made, with its inputs' shapes or keys, and the model's own message."""
    call = ", ".join(
        [*(describe_input(a) for a in args), *(f"{k}={describe_input(v)}" for k, v in kwargs.items())]
    )
    reason = str(error).strip() or "(no message)"
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {frames[-1].filename}, line {frames[-1].lineno}, in {frames[-1].name})" if frames else ""
    return EmbeddingExplorerError(
        f"the model ({type(model).__name__}) failed on the first batch, called as "
        f"model({call}): {type(error).__name__}: {reason}{where}"
    )


def describe_input(value: Any) -> str:
    """A forward argument in a few words: a tensor's shape and dtype, a dict's keys and shapes."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"{tuple(value.shape)} {dtype}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe_input(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe_input(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{type(value).__name__}[{inner}]"
    return type(value).__name__
