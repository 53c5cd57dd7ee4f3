"""Fashion-MNIST for the demos: find (or download) and read the data, normalise the images.

Pure numpy + torch (no torchvision): the IDX files are parsed directly, so the demo works
offline on a laptop once the data are present. The CNN is in :mod:`.cnn`, its training in
:mod:`.training`.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import math
import os
import shutil
import struct
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .cache import atomic_write, cache_root

logger = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Class names, indexed by label."""

MEAN: float = 0.2860
"""Mean pixel value of the 60k training images, on a 0..1 scale."""
STD: float = 0.3530
"""Standard deviation of the training pixels, on a 0..1 scale."""

IMAGE_SIZE = 28

_SPLIT_STEMS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ALL_STEMS = tuple(stem for pair in _SPLIT_STEMS.values() for stem in pair)
_DATA_ENV_VAR = "EMBEDDING_EXPLORER_DATA"
_SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
_DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_DOWNLOAD_TIMEOUT_S = 30.0

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# --------------------------------------------------------------------------------------------
# Locating and reading the data
# --------------------------------------------------------------------------------------------


def _user_data_dir() -> Path:
    return cache_root() / "fashion-mnist"


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The IDX file `stem` in `folder`, plain or gzipped, or None when absent."""
    for name in (stem, stem + ".gz"):
        path = folder / name
        if path.is_file():
            return path
    return None


def _has_all_files(folder: Path) -> bool:
    return all(_idx_file(folder, stem) is not None for stem in _ALL_STEMS)


def _candidate_dirs(data_dir: str | Path | None) -> list[Path]:
    """Folders searched for the data, in order of preference."""
    folders = []
    if data_dir is not None:
        folders.append(Path(data_dir).expanduser())
    env_dir = os.environ.get(_DATA_ENV_VAR)
    if env_dir:
        folders.append(Path(env_dir).expanduser() / "fashion-mnist")
    folders += [_user_data_dir(), _SYSTEM_DATA_DIR]
    return folders


def find_fashion_mnist(data_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """Return the folder holding the four Fashion-MNIST IDX files (plain or gzipped).

    Searches `data_dir`, `$EMBEDDING_EXPLORER_DATA/fashion-mnist`,
    `~/.cache/embedding-explorer/fashion-mnist` and `/usr/share/datasets/fashion-mnist`
    (Debian package `dataset-fashion-mnist`). If none has them and `download` is true, the
    official files are downloaded into the user cache. Raises FileNotFoundError, saying where
    it looked and how to get the data, when all of that fails.
    """
    searched = _candidate_dirs(data_dir)
    for folder in searched:
        if _has_all_files(folder):
            return folder
    error: Exception | None = None
    if download:
        try:
            return _download_fashion_mnist(_user_data_dir())
        except (OSError, ValueError, http.client.HTTPException) as exc:
            logger.warning("Downloading Fashion-MNIST failed: %s", exc)
            error = exc
    raise FileNotFoundError(_missing_data_message(searched, error)) from error


def _missing_data_message(searched: list[Path], error: Exception | None) -> str:
    places = "\n".join(f"  - {folder}" for folder in searched)
    files = ", ".join(f"{stem}.gz" for stem in _ALL_STEMS)
    download = (
        f"Downloading from {_DOWNLOAD_URL} failed: {error}\n"
        if error is not None
        else "Downloading was not allowed (download=False).\n"
    )
    return (
        f"Fashion-MNIST data not found. Searched:\n{places}\n{download}"
        "To get the data, either:\n"
        "  - install the Debian/Ubuntu package: apt-get install dataset-fashion-mnist\n"
        f"  - download {files} from {_DOWNLOAD_URL} into {_user_data_dir()}\n"
        f"  - or pass data_dir (or set ${_DATA_ENV_VAR}) to a folder holding them"
    )


def _download_fashion_mnist(folder: Path) -> Path:
    """Download whichever of the four files `folder` lacks; return `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in _ALL_STEMS:
        if _idx_file(folder, stem) is None:
            _download_file(f"{_DOWNLOAD_URL}{stem}.gz", folder / f"{stem}.gz")
    return folder


def _download_file(url: str, dest: Path) -> None:
    """Fetch `url` into `dest`, atomically, after checking that it parses as an IDX file."""
    logger.info("Downloading %s", url)

    def fetch(out: IO[bytes]) -> None:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            shutil.copyfileobj(response, out)

    atomic_write(dest, fetch, validate=read_idx)


def _read_bytes(path: Path) -> bytes:
    """The content of `path`, decompressed when it is gzipped (detected by its magic bytes)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (the MNIST family's format), gzipped or not, into a native-endian array.

    Raises ValueError naming `path` when the file is not a well-formed IDX file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02x}")
    dtype = _IDX_DTYPES[code]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    count = math.prod(shape)
    if len(raw) - header_size != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX data size mismatch: shape {shape} needs {count * dtype.itemsize} "
            f"bytes, found {len(raw) - header_size}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a writable native-endian copy


def _split_stems(split: str) -> tuple[str, str]:
    try:
        return _SPLIT_STEMS[split]
    except KeyError:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'") from None


def _require_idx_file(folder: Path, stem: str) -> Path:
    path = _idx_file(folder, stem)
    if path is None:
        raise FileNotFoundError(f"{folder}: missing {stem} (or {stem}.gz)")
    return path


def load_fashion_mnist(
    split: str = "test", data_dir: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split: images uint8 (N, 28, 28) and labels int64 (N,) in 0..9."""
    image_stem, label_stem = _split_stems(split)
    folder = find_fashion_mnist(data_dir)
    image_path = _require_idx_file(folder, image_stem)
    label_path = _require_idx_file(folder, label_stem)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"{image_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.shape != images.shape[:1]:
        raise ValueError(f"{label_path}: expected {len(images)} labels, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"{label_path}: labels outside 0..{len(CLASSES) - 1}")
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def normalize_tensor(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (..., 28, 28) -> float32 (..., 1, 28, 28), standardised with MEAN and STD."""
    return images.float().div_(255.0).sub_(MEAN).div_(STD).unsqueeze(-3)


def normalize_images(images: np.ndarray) -> torch.Tensor:
    """Turn uint8 images (..., 28, 28) into the float32 (..., 1, 28, 28) input `FashionCNN` expects.

    Computes (pixel / 255 - MEAN) / STD. Raises ValueError for anything but uint8 28x28 images.
    """
    if images.dtype != np.uint8 or images.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected uint8 images of shape (..., 28, 28), got {images.dtype} {images.shape}")
    return normalize_tensor(torch.from_numpy(np.array(images, copy=True)))


class FashionMNIST(Dataset[tuple[torch.Tensor, int]]):
    """One Fashion-MNIST split, held in memory, yielding (image tensor, label) pairs.

    Images are normalised to float32 (1, 28, 28) by default; `transform`, when given, instead
    maps each uint8 (28, 28) array to a tensor. `limit` keeps only the first `limit` samples.
    """

    def __init__(
        self,
        split: str = "test",
        data_dir: str | Path | None = None,
        *,
        limit: int | None = None,
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
    ) -> None:
        images, labels = load_fashion_mnist(split, data_dir)
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            images, labels = images[:limit].copy(), labels[:limit].copy()
        self.split = split
        self.images: np.ndarray = images
        self.labels: np.ndarray = labels
        self.classes: tuple[str, ...] = CLASSES
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        x = self.transform(image) if self.transform is not None else normalize_images(image)
        return x, int(self.labels[index])


def image_metadata(images: np.ndarray) -> pd.DataFrame:
    """The share of each image the garment covers (``ink``), beside the input statistics that
    ``explore`` records itself (``brightness``, ``contrast``, ``edge_density``; the seed's
    finding: early layers' top components follow brightness)."""
    pixels = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return pd.DataFrame({"ink": (pixels > 0.1).mean(axis=1)})
