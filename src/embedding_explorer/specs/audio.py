"""A folder of audio files (.wav, .flac...) as a data spec: decoded, resampled, cut to one length.

Each file is decoded with ``soundfile`` (the ``[audio]`` extra), mixed down to mono, resampled
to the model's rate and cut to its first :data:`DEFAULT_SECONDS` seconds (shorter files are
padded with silence), so every sample has the same length. An ``hf:`` model with a feature
extractor (wav2vec2, whisper...) gets that extractor's features at its own sampling rate; any
other model (e.g. a ``file.py:factory``) gets the raw waveform, a ``(B, T)`` float32 tensor at
:data:`DEFAULT_RATE` Hz. Class subfolders become labels, as for image folders. Each sample is
shown as a short clip with its spectrogram (see :mod:`embedding_explorer.clips`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.signal import resample_poly
from torch.utils.data import Dataset

from ..clips import AudioClip, clip_of
from ..exceptions import SpecError
from ..extras import require
from ..fingerprint import files_digest
from .data import FOLDER_OPTIONS, DataKind, DataOptions, LoadedData, class_folders, register_data_kind
from .images import folder_files
from .models import LoadedModel

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
DEFAULT_RATE = 16_000  # Hz
DEFAULT_SECONDS = 1.0


def find_audio(folder: Path) -> list[Path]:
    """Audio files directly in ``folder`` and one level of subfolders, sorted by path; hidden
    files and subfolders are skipped."""
    return sorted(
        p for p in folder_files(folder) if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    )


def decode(path: Path, rate: int, seconds: float) -> np.ndarray:
    """The first ``seconds`` of a file as mono float32 at ``rate`` Hz, padded with zeros."""
    soundfile = require("soundfile", "audio", f"audio file {path}")
    try:
        samples, file_rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise SpecError(f"audio file {path} cannot be read: {str(e).splitlines()[0]}") from e
    mono = samples.mean(axis=1)
    if file_rate != rate:
        divisor = int(np.gcd(int(file_rate), rate))
        mono = resample_poly(mono, rate // divisor, int(file_rate) // divisor)
    length = round(rate * seconds)
    out = np.zeros(length, dtype=np.float32)
    kept = mono[:length]
    out[: len(kept)] = kept
    return out


class AudioFiles(Dataset[Any]):
    """Audio files as model inputs: items are ``(input, label)``, or the input alone without
    labels; the input is the waveform ``(T,)``, or the feature extractor's features as a dict of
    keyword tensors. ``original(i)`` is the sample's clip, for the UI."""

    def __init__(
        self,
        paths: list[Path],
        *,
        labels: np.ndarray | None = None,
        classes: list[str] | None = None,
        rate: int = DEFAULT_RATE,
        seconds: float = DEFAULT_SECONDS,
        extractor: Any = None,
    ) -> None:
        self.paths, self.labels, self.classes = paths, labels, classes
        self.extractor = extractor
        self.rate = int(extractor.sampling_rate) if extractor is not None else rate
        self.seconds = seconds

    def __len__(self) -> int:
        return len(self.paths)

    def waveform(self, index: int) -> np.ndarray:
        """Sample ``index`` decoded: mono float32, ``rate * seconds`` values."""
        return decode(self.paths[index], self.rate, self.seconds)

    def original(self, index: int) -> AudioClip:
        return clip_of(self.waveform(index), self.rate)

    def __getitem__(self, index: int) -> Any:
        wave = self.waveform(index)
        x: Any = torch.from_numpy(wave)
        if self.extractor is not None:
            features = self.extractor(wave, sampling_rate=self.rate, return_tensors="pt")
            x = {key: torch.as_tensor(value[0]) for key, value in features.items()}
        return x if self.labels is None else (x, int(self.labels[index]))

    def content_fingerprint(self) -> str:
        """The files (path, size, modification time), labels, rate, length and extractor."""
        extractor = self.extractor.to_json_string() if self.extractor is not None else "waveform"
        return files_digest(f"{self.rate}|{self.seconds}|{extractor}", self.paths, self.labels)


def _is_audio_folder(spec: str) -> bool:
    path = Path(spec)
    return path.is_dir() and bool(find_audio(path))


def _load_audio_folder(spec: str, model: LoadedModel | None, options: DataOptions) -> LoadedData:
    """Class subfolders become labels (sorted names); a folder with audio both in and outside
    class folders is refused."""
    folder = Path(spec)
    paths, labels, classes = class_folders(spec, find_audio(folder), "audio files", options.limit)
    extractor = None
    if model is not None and model.feature_extractor is not None:
        extractor = model.feature_extractor()
        if not hasattr(extractor, "sampling_rate"):
            raise SpecError(f"model spec {model.spec!r}: its feature extractor is not for audio")
    dataset = AudioFiles(paths, labels=labels, classes=classes, extractor=extractor)
    table = pd.DataFrame({"file": [str(p.relative_to(folder)) for p in paths]})
    return LoadedData(dataset, spec, "audio", len(paths), classes, table, dataset)


register_data_kind(
    DataKind(
        "audio",
        _is_audio_folder,
        _load_audio_folder,
        f"audio files ({', '.join(AUDIO_SUFFIXES)})",
        FOLDER_OPTIONS,
        "a folder of audio files (class subfolders are its labels)",
    )
)
