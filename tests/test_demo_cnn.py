"""Tests for the demo's CNN: named layers, output shapes, seeded initial weights."""

from __future__ import annotations

import torch
from torch import nn

from embedding_explorer.demos.cnn import DEMO_LAYERS, FashionCNN, untrained_cnn


def test_cnn_shapes_and_named_layers() -> None:
    model = untrained_cnn()
    assert not model.training
    modules = dict(model.named_modules())
    assert set(DEMO_LAYERS[1:]) <= modules.keys()
    assert DEMO_LAYERS[0] == "input"
    shapes: dict[str, tuple[int, ...]] = {}
    calls: dict[str, int] = {}

    def record(name: str) -> None:
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape)
            calls[name] = calls.get(name, 0) + 1

        modules[name].register_forward_hook(hook)

    for name in ("block1", "block2", "block3", "flatten", "fc1", "relu", "dropout", "fc2"):
        record(name)
    with torch.inference_mode():
        logits = model(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert shapes["block1"] == (5, 32, 14, 14)
    assert shapes["block2"] == (5, 64, 7, 7)
    assert shapes["block3"] == (5, 128, 3, 3)
    assert shapes["fc1"] == (5, 128)
    assert shapes["fc2"] == (5, 10)
    assert set(calls.values()) == {1}  # every module runs exactly once per forward


def test_cnn_seed_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = FashionCNN(seed=0), FashionCNN(seed=0), FashionCNN(seed=1)
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)
    untrained = untrained_cnn(seed=1)
    assert torch.equal(untrained.fc2.weight, c.fc2.weight)
