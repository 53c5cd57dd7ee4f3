"""Capture: layer names, hooks, shared modules, eval mode, and cleanup after errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import LayerNotFoundError, LayerOutputError, MultipleCallsError
from embedding_explorer.batches import parse_batch
from embedding_explorer.capture import LayerCapture, LayerRef, resolve_layers
from embedding_explorer.reducers import Reducer, reducers_for
from support import MLP, SharedReluBlock, leftovers

CPU = torch.device("cpu")


def capture(model: nn.Module | None, layers: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    refs = resolve_layers(model, layers)
    with LayerCapture(model, refs, reducers_for(layers, None)) as cap, torch.no_grad():
        return cap.forward(parse_batch(x), CPU)


def hook_counts(model: nn.Module) -> dict[str, int]:
    return {name: len(m._forward_hooks) for name, m in model.named_modules() if m._forward_hooks}


# ---- resolving names ---------------------------------------------------------------------------
def test_resolve_layers_parses_call_suffix() -> None:
    refs = resolve_layers(SharedReluBlock(), ["fc1", "relu:1", "input"])
    assert refs == [LayerRef("fc1", "fc1"), LayerRef("relu:1", "relu", 1), LayerRef("input", "input")]
    assert resolve_layers(MLP(), "fc1") == [LayerRef("fc1", "fc1")]


def test_unknown_layer_suggests_closest_names() -> None:
    with pytest.raises(
        LayerNotFoundError, match="the model has no module 'fc_1'; closest names: fc1"
    ) as info:
        resolve_layers(MLP(), ["fc_1"])
    assert str(info.value).startswith("the model has no module")  # not quoted like a KeyError
    assert isinstance(info.value, KeyError)


def test_unknown_layer_without_close_names_lists_valid_ones() -> None:
    with pytest.raises(LayerNotFoundError, match="some valid names: fc1, act, fc2"):
        resolve_layers(MLP(), ["zzzzzz"])


def test_layer_name_errors() -> None:
    with pytest.raises(ValueError, match="layers is empty"):
        resolve_layers(MLP(), [])
    with pytest.raises(ValueError, match=r"layers lists \['fc1'\] more than once"):
        resolve_layers(MLP(), ["fc1", "fc2", "fc1"])
    with pytest.raises(ValueError, match="with model=None only 'input' can be captured"):
        resolve_layers(None, ["fc1"])
    with pytest.raises(ValueError, match="the part after ':' must be a call index"):
        resolve_layers(MLP(), ["fc1:x"])
    with pytest.raises(LayerNotFoundError, match="no module ''"):
        resolve_layers(MLP(), [""])
    with pytest.raises(TypeError, match="layer names are strings, got 3"):
        resolve_layers(MLP(), [3])  # type: ignore[list-item]


# ---- what is captured --------------------------------------------------------------------------
def test_captured_values_equal_manual_forward() -> None:
    model, x = MLP(), torch.randn(5, 8)
    out = capture(model, ["fc1", "act", "fc2", "input"], x)
    with torch.no_grad():
        h = model.fc1(x)
        torch.testing.assert_close(out["fc1"], h)
        torch.testing.assert_close(out["act"], torch.relu(h))
        torch.testing.assert_close(out["fc2"], model.fc2(torch.relu(h)))
    assert torch.equal(out["input"], x)


def test_input_only_does_not_run_the_model() -> None:
    model = MLP()
    out = capture(model, ["input"], torch.randn(3, 8))
    assert model.calls == 0
    assert out["input"].shape == (3, 8)


def test_shared_module_called_twice_is_refused() -> None:
    with pytest.raises(
        MultipleCallsError, match="module 'relu' was called 2 times in one forward pass"
    ) as info:
        capture(SharedReluBlock(), ["relu"], torch.randn(4, 6))
    assert "'relu:0' or 'relu:1'" in str(info.value)


def test_choosing_a_call_captures_that_call() -> None:
    model, x = SharedReluBlock(), torch.randn(4, 6)
    out = capture(model, ["relu:0", "relu:1"], x)
    with torch.no_grad():
        first = torch.relu(model.fc1(x))
        second = torch.relu(model.fc2(first) + x)
    torch.testing.assert_close(out["relu:0"], first)
    torch.testing.assert_close(out["relu:1"], second)
    assert not torch.allclose(out["relu:0"], out["relu:1"])
    torch.testing.assert_close(capture(model, ["relu:1"], x)["relu:1"], second)


def test_call_index_beyond_the_calls_made() -> None:
    with pytest.raises(MultipleCallsError, match="asks for call 2 of module 'relu', which ran only 2 time"):
        capture(SharedReluBlock(), ["relu:2"], torch.randn(4, 6))


class WithUnused(MLP):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(8, 2)


def test_module_that_did_not_run() -> None:
    with pytest.raises(LayerOutputError, match="module 'unused' did not run in the forward pass"):
        capture(WithUnused(), ["fc1", "unused"], torch.randn(2, 8))


def test_model_run_outside_forward_is_ignored() -> None:
    model = MLP()
    refs = resolve_layers(model, ["fc1"])
    with LayerCapture(model, refs, {"fc1": Reducer()}) as cap:
        model(torch.randn(2, 8))  # e.g. the user's own call inside the context: nothing recorded
        out = cap.forward(parse_batch(torch.ones(3, 8)), CPU)
    assert out["fc1"].shape == (3, 16)


class KeywordNet(nn.Module):
    """A text-like model: ``forward(input_ids, attention_mask)``; wants 8 features per token."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 4)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.embed(input_ids.float())


def test_a_model_that_fails_on_the_first_batch_names_the_call_and_its_inputs() -> None:
    model = MLP()  # 8 features in; the data have 6
    with pytest.raises(ee.EmbeddingExplorerError) as raised:
        capture(model, ["fc1"], torch.randn(3, 6))
    assert str(raised.value).startswith(
        "the model (MLP) failed on the first batch, called as model((3, 6) float32): RuntimeError: "
        "mat1 and mat2 shapes cannot be multiplied (3x6 and 8x16) (at "
    )
    assert "linear.py, line " in str(raised.value) and str(raised.value).endswith(", in forward)")  # where
    assert isinstance(raised.value.__cause__, RuntimeError)  # chained: the traceback keeps the model's
    batch = parse_batch({"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.ones(2, 5)})
    net = KeywordNet()
    called = r"called as model\(input_ids=\(2, 5\) int64, attention_mask=\(2, 5\) float32\): RuntimeError"
    with (
        LayerCapture(net, resolve_layers(net, ["embed"]), {"embed": Reducer()}) as cap,
        pytest.raises(ee.EmbeddingExplorerError, match=called),
    ):
        cap.forward(batch, CPU)


class OutOfMemoryAbove(nn.Module):
    """Runs out of memory on batches of more than ``most`` samples (as a GPU would)."""

    def __init__(self, most: int) -> None:
        super().__init__()
        self.fc, self.most = nn.Linear(8, 4), most

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > self.most:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.fc(x)


def test_running_out_of_memory_on_the_first_batch_keeps_its_type() -> None:
    """A caller that catches an out-of-memory error to retry with smaller batches still can; the
    call is noted on it."""
    with pytest.raises(torch.OutOfMemoryError) as raised:
        capture(OutOfMemoryAbove(8), ["fc"], torch.randn(16, 8))
    assert "called as model((16, 8) float32)" in "\n".join(getattr(raised.value, "__notes__", []))
    assert capture(OutOfMemoryAbove(8), ["fc"], torch.randn(8, 8))["fc"].shape == (8, 4)


def test_a_reducer_s_error_and_a_later_batch_s_are_raised_as_they_are() -> None:
    def broken(x: torch.Tensor) -> torch.Tensor:
        raise ZeroDivisionError("my reducer")

    with pytest.raises(ZeroDivisionError, match="my reducer"):
        _capture_with(MLP(), "fc1", broken)
    model = MLP()
    with LayerCapture(model, resolve_layers(model, ["fc1"]), {"fc1": Reducer()}) as cap:
        cap.forward(parse_batch(torch.randn(3, 8)), CPU)
        with pytest.raises(RuntimeError, match="mat1 and mat2"):  # the first batch fitted: not the setup
            cap.forward(parse_batch(torch.randn(3, 6)), CPU)


def _capture_with(model: nn.Module, layer: str, method: Any) -> dict[str, torch.Tensor]:
    with LayerCapture(model, resolve_layers(model, [layer]), {layer: Reducer(method)}) as cap:
        return cap.forward(parse_batch(torch.randn(3, 8)), CPU)


# ---- hooks and modes after explore -------------------------------------------------------------
def test_hooks_removed_after_capture_and_after_errors() -> None:
    model = SharedReluBlock()
    capture(model, ["fc1", "relu:1"], torch.randn(2, 6))
    assert hook_counts(model) == {}
    with pytest.raises(MultipleCallsError):
        capture(model, ["fc1", "relu"], torch.randn(2, 6))
    assert hook_counts(model) == {}


def test_hooks_removed_after_explore(explore_quiet, run_dir, xy_dataset) -> None:
    model = MLP()
    explore_quiet(model, xy_dataset, ["fc1", "act", "fc2"])
    assert hook_counts(model) == {}
    assert all(not m._forward_pre_hooks for m in model.modules())


class Exploding(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls == 1:  # counted by super().forward: the second batch
            raise RuntimeError("boom in batch 2")
        return super().forward(x)


def test_hooks_removed_after_explore_fails(explore_quiet, run_dir, xy_dataset) -> None:
    model = Exploding()
    with pytest.raises(RuntimeError, match="boom in batch 2"):
        explore_quiet(model, xy_dataset, ["fc1", "fc2"], batch_size=32)
    assert hook_counts(model) == {}
    assert leftovers(run_dir) == []
    shared = SharedReluBlock()
    with pytest.raises(MultipleCallsError, match="relu"):
        explore_quiet(shared, torch.randn(10, 6), ["fc1", "relu"])
    assert hook_counts(shared) == {}


class RecordsMode(MLP):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return super().forward(self.drop(x))


def test_eval_mode_during_explore_and_flags_restored(explore_quiet, xy) -> None:
    model = RecordsMode()
    model.train()
    model.fc1.eval()  # a submodule the user froze stays frozen
    run = explore_quiet(model, xy[0], ["drop", "fc1"], batch_size=50)
    assert model.modes == [False, False, False]  # eval while extracting
    assert model.training and model.drop.training and model.fc2.training
    assert not model.fc1.training
    # eval mode means dropout is off: the captured input of fc1 is the data itself
    assert torch.equal(torch.from_numpy(run["drop"].activations[:]), xy[0])


def test_training_flags_restored_after_an_error(explore_quiet, xy) -> None:
    model = Exploding()
    model.train()
    model.fc2.eval()
    with pytest.raises(RuntimeError, match="boom"):
        explore_quiet(model, xy[0], ["fc1"], batch_size=50)
    assert model.training and model.fc1.training and not model.fc2.training


def test_eval_model_stays_in_eval(explore_quiet, xy) -> None:
    model = MLP().eval()
    explore_quiet(model, xy[0], ["fc1"])
    assert not any(m.training for m in model.modules())


def test_explore_with_call_suffixes(explore_quiet) -> None:
    model, x = SharedReluBlock(), torch.randn(40, 6)
    run = explore_quiet(model, x, ["relu:0", "relu:1"], batch_size=16)
    with torch.no_grad():
        first = torch.relu(model.fc1(x))
        second = torch.relu(model.fc2(first) + x)
    np.testing.assert_allclose(run["relu:0"].activations[:], first.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run["relu:1"].activations[:], second.numpy(), rtol=1e-6, atol=1e-7)
    assert [info["call"] for info in run.manifest["layers"]] == [0, 1]
    assert hook_counts(model) == {}


def test_in_place_ops_after_a_hooked_layer_do_not_change_what_was_captured(tmp_path: Path) -> None:
    """torchvision-style ``ReLU(inplace=True)`` after a hooked layer must not leak into it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True))
    x = torch.randn(64, 6)
    images = torch.randn(64, 1, 8, 8)
    run = ee.explore(model, x, ["0"], out=tmp_path / "mlp", progress=False)
    with torch.no_grad():
        expected = model[0](x).numpy()
    assert (expected < 0).any()  # the pre-ReLU values, negatives included
    np.testing.assert_allclose(run["0"].activations[:], expected, rtol=1e-6, atol=1e-6)
    run = ee.explore(conv, images, ["0"], out=tmp_path / "conv", reduce="flatten", progress=False)
    with torch.no_grad():
        expected = conv[0](images).flatten(1).numpy()
    np.testing.assert_allclose(run["0"].activations[:], expected, rtol=1e-6, atol=1e-6)


def _count_calls(modules: dict[str, nn.Module]) -> dict[str, int]:
    """Calls of each named module, counted by forward hooks of the test's own."""
    counts = dict.fromkeys(modules, 0)
    for name, module in modules.items():
        module.register_forward_hook(lambda *_, name=name: counts.__setitem__(name, counts[name] + 1))
    return counts


def test_the_forward_pass_stops_after_the_last_hooked_layer(tmp_path: Path) -> None:
    model = MLP()
    counts = _count_calls({"fc1": model.fc1, "act": model.act, "fc2": model.fc2})
    x = torch.randn(100, 8)
    run = ee.explore(model, x, ["fc1"], out=tmp_path / "early", batch_size=10, outputs=None, progress=False)
    # the first batch runs whole (so a module that runs twice is seen); the nine after stop at fc1
    assert counts == {"fc1": 10, "act": 1, "fc2": 1}
    np.testing.assert_allclose(run["fc1"].activations[:], model.fc1(x).detach().numpy(), rtol=1e-6)


def test_recorded_outputs_keep_every_forward_pass_whole(tmp_path: Path) -> None:
    """The model's class scores are recorded (``outputs="auto"`` finds them on the first batch):
    then no pass stops early, and every sample gets its prediction."""
    model = MLP()
    counts = _count_calls({"fc1": model.fc1, "act": model.act, "fc2": model.fc2})
    x = torch.randn(100, 8)
    run = ee.explore(model, x, ["fc1"], out=tmp_path / "whole", batch_size=10, progress=False)
    assert counts == {"fc1": 10, "act": 10, "fc2": 10}
    with torch.no_grad():
        np.testing.assert_array_equal(run.samples["predicted"].to_numpy(), model(x).argmax(1).numpy())


def test_early_stop_waits_for_the_call_a_layer_keeps(tmp_path: Path) -> None:
    model = SharedReluBlock()
    counts = _count_calls({"relu": model.relu, "fc2": model.fc2})
    x = torch.randn(40, 6)
    run = ee.explore(
        model, x, ["relu:0"], out=tmp_path / "call0", batch_size=10, outputs=None, progress=False
    )
    assert counts == {"relu": 2 + 3, "fc2": 1}  # batches 2-4 stop after relu's first call
    np.testing.assert_allclose(run["relu:0"].activations[:], model.relu(model.fc1(x)).detach().numpy())
    counts.update(relu=0, fc2=0)
    ee.explore(model, x, ["relu:1"], out=tmp_path / "call1", batch_size=10, outputs=None, progress=False)
    assert counts == {"relu": 8, "fc2": 4}  # the last call: every module runs
    counts.update(relu=0, fc2=0)
    ee.explore(
        model, x, {"in": "input", "first": "fc1"}, out=tmp_path / "input", batch_size=10, outputs=None,
        progress=False,
    )  # fmt: skip
    assert counts == {"relu": 2, "fc2": 1}  # "input" needs no hook: after the first batch, fc1 ends it


def test_a_shared_module_named_without_a_call_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(MultipleCallsError, match="called 2 times"):
        ee.explore(SharedReluBlock(), torch.randn(40, 6), ["relu"], out=tmp_path / "r", batch_size=10)
