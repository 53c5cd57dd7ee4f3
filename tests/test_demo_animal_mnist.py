"""Animal-MNIST, the demo's out-of-distribution data set, read from the installed package."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from embedding_explorer.demos import animal_mnist
from embedding_explorer.demos.animal_mnist import ANIMAL_CLASSES, load_animal_mnist

try:
    animal_mnist.animal_mnist_dir()
except FileNotFoundError:  # pragma: no cover - the test command installs it
    pytest.skip(f"Animal-MNIST is not installed ({animal_mnist.INSTALL_HINT})", allow_module_level=True)


@pytest.fixture(scope="module")
def animals() -> tuple[np.ndarray, np.ndarray]:
    return load_animal_mnist()


def test_loads_all_images_in_fashion_mnist_format(animals: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = animals
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [1000] * len(ANIMAL_CLASSES)
    # white shapes on a black background, as Fashion-MNIST: dark borders, some ink in every image
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.mean() < 10
    assert ((images > 25).mean(axis=(1, 2)) > 0.02).all()
    assert images.max() == 255


def test_restricted_unpickler_reads_what_pickle_reads(animals: tuple[np.ndarray, np.ndarray]) -> None:
    folder = animal_mnist.animal_mnist_dir()
    for name, ours in ((animal_mnist.IMAGES_FILE, animals[0]), (animal_mnist.LABELS_FILE, animals[1])):
        with gzip.open(folder / name, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core in the pickle, on numpy 2
            expected = pickle.load(f)  # the package's own way (trusted here: the test knows the file)
        np.testing.assert_array_equal(ours, expected)
        assert ours.dtype == expected.dtype or name == animal_mnist.LABELS_FILE


def test_limit_keeps_every_class_in_package_order(animals: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = load_animal_mnist(limit=25)
    assert np.bincount(labels).tolist() == [3] * 5 + [2] * 5
    all_images, all_labels = animals
    first = [int(np.flatnonzero(all_labels == c)[0]) for c in range(10)]
    np.testing.assert_array_equal(images[labels == 4][0], all_images[first[4]])
    assert labels.tolist() == sorted(labels.tolist())  # the package groups by class, and so does the subset
    assert load_animal_mnist(limit=0)[0].shape == (0, 28, 28)
    with pytest.raises(ValueError, match="limit must be >= 0"):
        load_animal_mnist(limit=-1)


def test_refuses_a_pickle_that_is_not_an_array(tmp_path: Path) -> None:
    path = tmp_path / "evil.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(os.getcwd, f)  # any global other than numpy's array pieces
    with pytest.raises(ValueError, match=r"refusing to load posix.getcwd"):
        animal_mnist._read_array(path)
    with gzip.open(path, "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(ValueError, match="expected a numpy array, got list"):
        animal_mnist._read_array(path)


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps animal-mnist==0.4")):
        load_animal_mnist()
