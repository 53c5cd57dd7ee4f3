"""Forward hooks that turn named modules' outputs into one vector per sample.

Layers are named as in ``model.named_modules()``; ``"input"`` is the model input itself. A
module that runs more than once per forward pass (a shared ReLU) is refused unless the name
picks one call with a suffix, e.g. ``"layer1.0.relu:1"`` for its second call.

Dict batches are keyword arguments (``model(**batch)``), except for a model whose forward takes
one features dict (sentence-transformers: ``forward(input, **kwargs)``), which gets the dict.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import torch
from torch import nn

from .batches import Batch, input_tensor
from .exceptions import LayerNotFoundError, LayerOutputError, MultipleCallsError
from .reducers import Reducer, reduce_output, select_tensor

INPUT_LAYER = "input"


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

    Call :meth:`forward` per batch; it returns ``{layer: (batch, D) tensor}``.
    """

    model: nn.Module | None
    refs: Sequence[LayerRef]
    reducers: Mapping[str, Reducer]
    _slots: dict[str, list[_Slot]] = field(default_factory=dict, init=False)
    _handles: list[torch.utils.hooks.RemovableHandle] = field(default_factory=list, init=False)
    _batch: Batch | None = field(default=None, init=False)

    @property
    def _dtype(self) -> torch.dtype | None:
        """The floating dtype of the model's parameters (inputs of another float dtype are cast)."""
        if self.model is None:
            return None
        return next((p.dtype for p in self.model.parameters() if p.is_floating_point()), None)

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
        try:
            if self.model is not None and self._slots:
                args, kwargs = batch.model_args(device, self._dtype)
                if kwargs and takes_features_dict(self.model, kwargs):
                    args, kwargs = (kwargs,), {}
                self.model(*args, **kwargs)
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
