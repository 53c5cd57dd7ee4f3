"""Tiny IDX files and a fake Fashion-MNIST folder, for the tests of the Fashion-MNIST demo."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

STEMS = {
    "train-images-idx3-ubyte": 60,
    "train-labels-idx1-ubyte": 60,
    "t10k-images-idx3-ubyte": 20,
    "t10k-labels-idx1-ubyte": 20,
}
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode `array` in the IDX format (big-endian), as the official files are."""
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_fake_data(folder: Path, *, gz: bool = True, seed: int = 0) -> Path:
    """A tiny but well-formed Fashion-MNIST folder (60 training, 20 test images)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for stem, count in STEMS.items():
        if "images" in stem:
            array = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        else:
            array = (np.arange(count) % 10).astype(np.uint8)
        write_idx(folder / f"{stem}{suffix}", array, gz=gz)
    return folder
