"""Audio clips as stored sample renderings: 16-bit PCM WAV bytes, and their spectrogram as PNG.

A run over audio stores each sample's clip (mono, :data:`CLIP_RATE` Hz, at most
:data:`CLIP_SECONDS` seconds: about 32 KB) as its rendering, kind :data:`AUDIO`. The UI plays
it; thumbnails are its spectrogram, computed when read (:func:`spectrogram_png`), so nothing
but the sound is stored.
"""

from __future__ import annotations

import io
import itertools
import wave
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from .records import encode_png

AUDIO = "audio/wav"
CLIP_RATE = 8000  # Hz: telephone quality, enough to hear what a sample is
CLIP_SECONDS = 2.0
SPECTROGRAM_HEIGHT = 64  # frequency rows of a thumbnail
SPECTROGRAM_WIDTH = 128  # time columns
DYNAMIC_RANGE_DB = 80.0


@dataclass(frozen=True)
class AudioClip:
    """One sample's sound as WAV bytes (what a data set's ``original(i)`` returns for audio)."""

    wav: bytes


def clip_of(waveform: np.ndarray, rate: int) -> AudioClip:
    """``waveform`` (mono, floats in [-1, 1], at ``rate`` Hz) as a clip: resampled to
    :data:`CLIP_RATE`, cut to :data:`CLIP_SECONDS`, encoded as 16-bit PCM WAV."""
    samples = np.asarray(waveform, dtype=np.float64).reshape(-1)
    if rate != CLIP_RATE:
        divisor = np.gcd(int(rate), CLIP_RATE)
        samples = resample_poly(samples, CLIP_RATE // divisor, int(rate) // divisor)
    samples = samples[: int(CLIP_RATE * CLIP_SECONDS)]
    return AudioClip(encode_wav(samples, CLIP_RATE))


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV bytes of floats in [-1, 1] (clipped)."""
    pcm = np.clip(np.rint(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buf.getvalue()


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """The samples (floats in [-1, 1]) and rate of a mono 16-bit WAV made by :func:`encode_wav`."""
    with wave.open(io.BytesIO(data), "rb") as clip:
        rate, frames = clip.getframerate(), clip.readframes(clip.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0, rate


def spectrogram(samples: np.ndarray, rate: int) -> np.ndarray:
    """A log-magnitude spectrogram as uint8 ``(SPECTROGRAM_HEIGHT, SPECTROGRAM_WIDTH)``: low
    frequencies at the bottom, the loudest bin white, :data:`DYNAMIC_RANGE_DB` below it black.

    Hann-windowed frames of 256 samples (32 ms at 8 kHz), hopped to give the fixed width; the
    129 frequency bins are averaged down to the height.
    """
    frame = 256
    padded = np.concatenate([samples, np.zeros(max(0, frame - len(samples)))])
    starts = np.linspace(0, len(padded) - frame, SPECTROGRAM_WIDTH).astype(int)
    frames = np.stack([padded[s : s + frame] for s in starts]) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (width, 129)
    edges = np.linspace(0, power.shape[1], SPECTROGRAM_HEIGHT + 1).astype(int)
    bands = np.stack([power[:, a:b].mean(axis=1) for a, b in itertools.pairwise(edges)], axis=1)
    db = 10.0 * np.log10(bands + 1e-12)
    top = float(db.max())
    scaled = np.clip((db - (top - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0)
    return np.rint(scaled.T[::-1] * 255.0).astype(np.uint8)


# a dark-to-bright colour ramp (black, indigo, magenta, orange, pale yellow), 256 steps
_ANCHORS = np.asarray([[0, 0, 4], [59, 15, 112], [183, 55, 121], [252, 137, 97], [252, 253, 191]], float)
_RAMP = np.stack(
    [np.interp(np.arange(256), np.linspace(0, 255, len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def spectrogram_png(wav: bytes) -> bytes:
    """The spectrogram of a stored clip as an RGB PNG (the thumbnail of an audio sample)."""
    samples, rate = decode_wav(wav)
    return encode_png(_RAMP[spectrogram(samples, rate)])
