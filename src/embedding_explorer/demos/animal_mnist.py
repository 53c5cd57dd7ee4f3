"""Animal-MNIST: 10,000 animal silhouettes in Fashion-MNIST's format, an out-of-distribution set.

The PyPI package ``animal-mnist`` (0.4) ships the images as two gzipped pickles of numpy arrays.
Its own loader imports TensorFlow, so the demo installs it with ``--no-deps`` and reads the files
directly, with an unpickler that accepts numpy arrays and nothing else (a pickle can otherwise
run arbitrary code). The images are already 28 x 28 uint8, white shapes on black like
Fashion-MNIST, so the CNN's own normalisation applies unchanged.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .fashion_mnist import IMAGE_SIZE

ANIMAL_CLASSES: tuple[str, ...] = (
    "Bear",
    "Bird",
    "Cat",
    "Cow",
    "Dog",
    "Elephant",
    "Giraffe",
    "Horse",
    "Sheep",
    "Zebra",
)
"""Class names by label: the package's ten classes in alphabetical order (checked by eye on the
images of each label: 0 are bears, 6 giraffes, 9 zebras)."""

IMAGES_FILE = "animal_data_version_3.gz"
LABELS_FILE = "animal_label_version_3.gz"
INSTALL_HINT = "pip install --no-deps animal-mnist==0.4"


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays only: any other global in the pickle is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np.empty(0).__reduce__()[0]  # numpy's array reconstructor, by its public pickling
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are expected")


def animal_mnist_dir() -> Path:
    """The folder of the installed package's data files (FileNotFoundError with a hint if absent)."""
    spec = importlib.util.find_spec("animal_mnist")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "data" / "Animal_MNIST"
        if (folder / IMAGES_FILE).is_file() and (folder / LABELS_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"Animal-MNIST is not installed (looked for {IMAGES_FILE} in the animal_mnist package); "
        f"install it with: {INSTALL_HINT}"
    )


def _read_array(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            value = _ArrayUnpickler(f).load()
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path}: not a gzipped numpy array ({exc})") from exc
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{path}: expected a numpy array, got {type(value).__name__}")
    return value


def load_animal_mnist(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels int64 (N,) in 0..9 (names in :data:`ANIMAL_CLASSES`).

    The package stores the images grouped by class (1,000 each). ``limit`` keeps a subset of
    ``limit`` images drawn round-robin over the classes (the first of each class, then the
    second, ...), in the package's order, so a small subset still holds every animal.
    """
    folder = animal_mnist_dir()
    images, labels = _read_array(folder / IMAGES_FILE), _read_array(folder / LABELS_FILE)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"{folder / IMAGES_FILE}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.shape != images.shape[:1] or labels.min() < 0 or labels.max() >= len(ANIMAL_CLASSES):
        raise ValueError(f"{folder / LABELS_FILE}: expected {len(images)} labels in 0..9, got {labels.shape}")
    labels = labels.astype(np.int64)
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        rank = pd.Series(labels).groupby(labels).cumcount().to_numpy()  # position within its class
        keep = np.sort(np.lexsort((labels, rank))[:limit])
        images, labels = images[keep], labels[keep]
    return np.ascontiguousarray(images), labels
