"""The data-set comparison part of the image demo: the trained CNN over shifted and foreign images.

Beside the trained CNN's run over the Fashion-MNIST test images (the reference), the demo
explores the same CNN over

- the same test images inverted (``255 - pixel``: a real transformation, light garments on a
  dark background become dark on light), labelled with the garment classes;
- Animal-MNIST's animal silhouettes, an out-of-distribution set in the same format;

then builds the joint PCA of the test images and the animals (labels = data set), and an
input-space run of the test images without any model (PCA of the pixels themselves).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..analysis.datasets import DatasetComparison, compare_datasets
from ..explore import explore
from ..render import ImageRender
from ..run import Run
from .animal_mnist import ANIMAL_CLASSES, load_animal_mnist
from .cnn import DEMO_LAYERS
from .fashion_mnist import CLASSES, MEAN, STD, FashionMNIST, image_metadata, normalize_images

INVERTED = "fashion-cnn-trained · inverted"
ANIMALS = "fashion-cnn-trained · animal-mnist"
JOINT = "fashion-mnist + animal-mnist (joint)"
INPUT_SPACE = "input space · fashion-mnist test"
FOLDERS = {
    INVERTED: "fashion-cnn-trained-inverted",
    ANIMALS: "fashion-cnn-trained-animal-mnist",
    JOINT: "fashion-mnist+animal-mnist",
    INPUT_SPACE: "input-space",
}
"""Run folder of each data-set run, under the demo's output folder."""
DATASET_RUNS = tuple(FOLDERS)


def invert(images: np.ndarray) -> np.ndarray:
    """uint8 images with every pixel ``p`` replaced by ``255 - p`` (a photographic negative)."""
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return np.subtract(255, images, dtype=np.uint8)


def explore_images(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    out: Path,
    name: str,
    *,
    progress: bool = True,
) -> Run:
    """The demo layers of ``model`` over uint8 images, normalised as the CNN was trained, with the
    same thumbnails and pixel metadata (ink; brightness and the other input statistics are
    recorded by explore) as the reference run."""
    return explore(
        model,
        (normalize_images(images), torch.from_numpy(labels)),
        list(DEMO_LAYERS),
        out=out,
        name=name,
        render=ImageRender(mean=MEAN, std=STD),
        metadata=image_metadata(images),
        label_names=list(label_names),
        progress=progress,
    )


def build_dataset_runs(
    out: Path,
    reference: Run,
    model: nn.Module,
    *,
    limit: int | None = None,
    progress: bool = True,
    data_dir: str | Path | None = None,
) -> list[Run]:
    """The inverted, Animal-MNIST, joint and input-space runs (in :data:`DATASET_RUNS` order).

    ``reference`` is the trained CNN's run over the test images; ``limit`` keeps the first
    ``limit`` test images and a class-balanced ``limit`` animals. Finished runs are reused.
    """
    test = FashionMNIST("test", data_dir, limit=limit)
    inverted = explore_images(
        model, invert(test.images), test.labels, CLASSES, out / FOLDERS[INVERTED], INVERTED, progress=progress
    )
    images, labels = load_animal_mnist(limit)
    animals = explore_images(
        model, images, labels, ANIMAL_CLASSES, out / FOLDERS[ANIMALS], ANIMALS, progress=progress
    )
    joint = compare_datasets(reference, animals).joint(out / FOLDERS[JOINT], name=JOINT)
    input_space = explore(
        None,
        test,
        ["input"],
        out=out / FOLDERS[INPUT_SPACE],
        name=INPUT_SPACE,
        render=ImageRender(mean=MEAN, std=STD),
        metadata=image_metadata(test.images),
        progress=progress,
    )
    return [inverted, animals, joint, input_space]


def predicted_classes(run: Run, top: int = 3) -> list[tuple[str, float]]:
    """What the CNN calls the run's images: the most common predicted garment classes and their
    shares, from the stored logits (layer ``fc2``), with no second pass through the model."""
    logits = run["fc2"].activations[...]
    counts = Counter(np.argmax(logits, axis=1).tolist())
    return [(CLASSES[c], n / run.n_samples) for c, n in counts.most_common(top)]


def accuracy(run: Run) -> float:
    """The share of the run's images whose stored logits pick their garment label."""
    logits = run["fc2"].activations[...]
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(run.labels)))


def describe_shift(comparison: DatasetComparison, top: int = 2) -> list[str]:
    """Per layer: the ``top`` most shifted reference components (smd, KS) and how much of the
    other set's variance the reference's components capture against its own."""
    lines = []
    for name in comparison.layers:
        ranked = comparison.ranked(name).head(top)
        shifts = "   ".join(
            f"{pc:<4} smd {row.smd:+6.2f} ks {row.ks:.2f}"
            for pc, row in zip(ranked.index, ranked.itertuples(), strict=True)
        )
        captured = comparison.captured_variance(name).iloc[-1]
        lines.append(
            f"    {name:<7} {shifts}   variance captured {captured.reference_components:4.0%}"
            f" (own PCs {captured.own_components:4.0%})"
        )
    return lines


def describe_datasets(reference: Run, runs: Sequence[Run]) -> str:
    """The demo's data-set summary: each other set against the reference, and the joint run."""
    lines = [f"Data sets through the trained CNN, on the components of {reference.name}:"]
    for run in runs:
        if run.name == INVERTED:
            head = f"accuracy {accuracy(run):.1%} (test images {accuracy(reference):.1%})"
        elif run.name == ANIMALS:
            calls = ", ".join(f"{share:.0%} {name}" for name, share in predicted_classes(run))
            head = f"the CNN calls them {calls}"
        else:
            continue
        lines.append(f"  {run.name} ({run.n_samples:,} images): {head}")
        lines += describe_shift(compare_datasets(reference, run))
    for run in runs:
        if run.name == JOINT:
            lines.append(
                f"  {run.name}: the component that best separates the two sets (eta2 of the data set)"
            )
            for layer in run:
                eta2 = layer.association()["eta2"]
                lines.append(f"    {layer.name:<7} {eta2.idxmax()} eta2 {eta2.max():.2f}")
    return "\n".join(lines)
