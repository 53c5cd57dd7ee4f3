"""The data set's fingerprint, taken before every run: by its files against by sampled items.

A folder of ``--n`` JPEGs (500 x 375, ``--classes`` subfolders) read as 224 x 224 crops, once as
:class:`embedding_explorer.specs.images.ImageFiles` (known by its files: path, size and time of
each, the transform's settings) and once through a plain map-style Dataset over the same files
(no such identity: the length and 256 evenly spaced items are read and hashed, the way any other
Dataset is). Each through a DataLoader of batch 64, as ``explore`` gets it. torchvision's
``ImageFolder`` is timed too where torchvision imports. Best of ``--repeats``; never asserts.

    .venv/bin/python benchmarks/bench_fingerprint.py [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ab import best_seconds
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from embedding_explorer.fingerprint import data_fingerprint
from embedding_explorer.specs.images import ImageFiles, default_transform

WIDTH, HEIGHT = 500, 375


class Sampled(Dataset[torch.Tensor]):
    """The same files and transform as the ImageFiles it wraps, with no identity of its own."""

    def __init__(self, files: ImageFiles) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Any:
        return self.files[index]


def write_folder(root: Path, n: int, classes: int) -> list[Path]:
    """``n`` JPEGs of smooth colour gradients with noise (so they decode like photos)."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    paths = []
    for i in range(n):
        folder = root / f"class{i % classes}"
        folder.mkdir(exist_ok=True)
        base = rng.uniform(0, 255, 3).astype(np.float32)
        slope = rng.uniform(-0.3, 0.3, (3, 2)).astype(np.float32)
        planes = [base[c] + slope[c, 0] * xs + slope[c, 1] * ys for c in range(3)]
        pixels = np.stack(planes, axis=-1) + rng.normal(0, 12, (HEIGHT, WIDTH, 3))
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return sorted(paths)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_folder(Path(tmp), args.n, args.classes)
        labels = [int(p.parent.name.removeprefix("class")) for p in paths]
        files = ImageFiles(paths, default_transform(), labels=labels)
        cases: dict[str, Dataset[Any]] = {
            "known by its files (ImageFiles)": files,
            "sampled items": Sampled(files),
        }
        try:
            from torchvision.datasets import ImageFolder  # type: ignore[import-untyped]
            from torchvision.transforms import CenterCrop, Compose, Resize, ToTensor  # type: ignore[import-untyped]

            cases["torchvision ImageFolder"] = ImageFolder(
                tmp, Compose([Resize(224), CenterCrop(224), ToTensor()])
            )
        except Exception as error:  # not installed, or a build that fails to import
            print(f"(torchvision's ImageFolder left out: {type(error).__name__})")
        start = time.perf_counter()
        for _ in range(20):
            files[0]
        per_item = (time.perf_counter() - start) / 20
        print(f"data_fingerprint of {args.n:,} JPEGs {WIDTH} x {HEIGHT} -> 224 x 224, DataLoader batch 64")
        print(f"  (best of {args.repeats}; reading one item takes {per_item * 1e3:.1f} ms)")
        baseline = None
        for name, data in cases.items():
            seconds = best_seconds(
                lambda data=data: data_fingerprint(DataLoader(data, batch_size=64)), args.repeats
            )
            baseline = baseline or seconds
            print(f"  {name:34s} {seconds * 1e3:8.1f} ms   {seconds / baseline:6.2f}x")


if __name__ == "__main__":
    main()
