"""The image demo: a trained and an untrained Fashion-MNIST CNN explored over the test images,
and the trained CNN over other data sets (inverted test images, Animal-MNIST; see :mod:`.shifts`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from ..explore import explore
from ..render import ImageRender
from ..run import Layer, Run
from .cnn import DEMO_LAYERS, untrained_cnn
from .fashion_mnist import MEAN, STD, FashionMNIST, image_metadata
from .shifts import ANIMALS, INVERTED, JOINT, build_dataset_runs, describe_datasets
from .training import load_or_train_cnn

TRAINED = "fashion-cnn-trained"
UNTRAINED = "fashion-cnn-untrained"


def build_demo_runs(
    out: Path,
    *,
    limit: int | None = None,
    progress: bool = True,
    data_dir: str | Path | None = None,
    model: nn.Module | None = None,
    datasets: bool = True,
) -> list[Run]:
    """Explore the trained CNN (trained and cached on first use) and the same CNN untrained.

    Both runs cover the same test images (``limit``: the first ``limit`` only), the layers from
    the input to the logits. With ``datasets``, the data-set runs of
    :func:`.shifts.build_dataset_runs` follow (inverted, Animal-MNIST, joint, input space).
    Finished runs are reused on later calls.
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
    if datasets:
        runs += build_dataset_runs(out, runs[0], model, limit=limit, progress=progress, data_dir=data_dir)
    return runs


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


def describe_demo(runs: Sequence[Run], top: int = 3) -> str:
    """The demo's printed summary: :func:`describe_run` for each run over its own data, then the
    data-set comparison against the trained CNN's run (when the demo built one)."""
    compared = (INVERTED, ANIMALS, JOINT)
    parts = [describe_run(run, top) for run in runs if run.name not in compared]
    reference = next((run for run in runs if run.name == TRAINED), None)
    others = [run for run in runs if run.name in compared]
    if reference is not None and others:
        parts.append(describe_datasets(reference, others))
    if reference is not None:
        parts.append(describe_insights(reference, [run for run in runs if run is not reference]))
    return "\n\n".join(parts)


def describe_insights(reference: Run, runs: Sequence[Run], top: int = 6) -> str:
    """The reference run's strongest findings (``run.insights()``) against the runs that can be
    compared with it (the untrained CNN, the inverted images)."""
    from ..analysis.insights import comparable

    table = reference.insights(compare=[run for run in runs if comparable(reference, run)])
    lines = [f"Insights for {reference.name} (strongest first; all in the UI's Insights tab)"]
    lines += [f"  {row.strength:4.2f}  {row.sentence}" for row in table.head(top).itertuples(index=False)]
    return "\n".join(lines)
