"""The demo's small CNN for Fashion-MNIST, its layers named so the demo can hook them."""

from __future__ import annotations

import torch
from torch import nn

from .fashion_mnist import CLASSES

DEMO_LAYERS: tuple[str, ...] = ("input", "block1", "block2", "block3", "fc1", "fc2")
"""Layers the demo explores: the raw input, then `FashionCNN` modules by name."""

_CHANNELS = (32, 64, 128)  # of block1..3


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv, batch norm, ReLU, 2x2 max pool: halves the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class FashionCNN(nn.Module):
    """A small CNN for 28x28 grey images: three conv blocks (28->14->7->3), then two linear layers.

    The submodules are named so the demo can hook them: block1..3 (32, 64, 128 channels), fc1
    (128 features) and fc2 (10 logits). `seed` makes the initial weights deterministic without
    touching the global random state.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            c1, c2, c3 = _CHANNELS
            self.block1 = _conv_block(1, c1)
            self.block2 = _conv_block(c1, c2)
            self.block3 = _conv_block(c2, c3)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(c3 * 3 * 3, 128)
            self.relu = nn.ReLU()
            self.dropout = nn.Dropout(0.25)
            self.fc2 = nn.Linear(128, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10) for normalised images (N, 1, 28, 28)."""
        x = self.block3(self.block2(self.block1(x)))
        logits: torch.Tensor = self.fc2(self.dropout(self.relu(self.fc1(self.flatten(x)))))
        return logits


def untrained_cnn(seed: int = 0) -> FashionCNN:
    """A randomly initialised `FashionCNN` in eval mode, as a baseline for the trained one.

    With the same seed it equals the starting point of :func:`.training.train_cnn`.
    """
    return FashionCNN(seed=seed).eval()
