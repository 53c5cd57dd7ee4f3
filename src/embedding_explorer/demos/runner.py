"""The image demo: a trained and an untrained Fashion-MNIST CNN explored over the test images."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from ..explore import explore
from ..render import ImageRender
from ..run import Layer, Run
from .fashion_mnist import DEMO_LAYERS, MEAN, STD, FashionMNIST, load_or_train_cnn, untrained_cnn

TRAINED = "fashion-cnn-trained"
UNTRAINED = "fashion-cnn-untrained"


def build_demo_runs(
    out: Path,
    *,
    limit: int | None = None,
    progress: bool = True,
    data_dir: str | Path | None = None,
    model: nn.Module | None = None,
) -> list[Run]:
    """Explore the trained CNN (trained and cached on first use) and the same CNN untrained.

    Both runs cover the same test images (``limit``: the first ``limit`` only), the layers from
    the input to the logits. Finished runs are reused on later calls.
    """
    if model is None:
        model, accuracy = load_or_train_cnn(progress=progress, data_dir=data_dir)
        if progress:
            print(f"Fashion-MNIST CNN: {accuracy:.1%} accuracy on the 10,000 test images")
    test = FashionMNIST("test", data_dir, limit=limit)
    render = ImageRender(mean=MEAN, std=STD)
    metadata = image_metadata(test.images)
    runs = []
    for name, net in ((TRAINED, model), (UNTRAINED, untrained_cnn(seed=0))):
        runs.append(
            explore(
                net,
                test,
                list(DEMO_LAYERS),
                out=out / name,
                name=name,
                render=render,
                metadata=metadata,
                progress=progress,
            )
        )
    return runs


def image_metadata(images: np.ndarray) -> pd.DataFrame:
    """Simple pixel statistics per image, so the UI can show which components track them
    (the seed's finding: early layers' top components follow brightness)."""
    pixels = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return pd.DataFrame(
        {
            "brightness": pixels.mean(axis=1),  # mean pixel value, 0..1
            "ink": (pixels > 0.1).mean(axis=1),  # share of the image the garment covers
        }
    )


def extreme_labels(layer: Layer, component: int, n: int = 10) -> tuple[str, str]:
    """The label make-up of both ends of a component, e.g. ``("9/10 Trouser", "6/10 Bag")``."""
    run = layer.run
    if run.labels is None:
        return "", ""
    ends = []
    for ids in layer.extremes(component, n):
        counts = Counter(run.label_name(label) for label in np.asarray(run.labels)[ids].tolist())
        ends.append(", ".join(f"{c}/{len(ids)} {name}" for name, c in counts.most_common(2)))
    return ends[0], ends[1]


def describe_run(run: Run, top: int = 3) -> str:
    """A short summary: per layer, the top components, their variance and their extremes."""
    lines = [f"{run.name}  ({run.n_samples:,} samples)"]
    for layer in run:
        for c in range(min(top, layer.n_components)):
            low, high = extreme_labels(layer, c)
            head = layer.name if c == 0 else ""
            lines.append(
                f"  {head:<7} PC{c + 1} {100 * layer.explained_variance_ratio[c]:5.1f}%"
                f"   low: {low:<34} high: {high}"
            )
    return "\n".join(lines)
