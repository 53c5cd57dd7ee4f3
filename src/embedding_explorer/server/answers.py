"""Helpers that shape answers, shared by the route modules: binary bodies, ETags, JSON numbers,
sample lists, and the compute-once cache of analysis results."""

from __future__ import annotations

import base64
import hashlib
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from fastapi import Response

from .schemas import SampleRef

if TYPE_CHECKING:
    from .registry import ServedRun

T = TypeVar("T")
IMMUTABLE = "max-age=31536000, immutable"
BINARY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "little-endian array"}
}
"""The OpenAPI ``responses`` of a route that answers a binary array."""


class Cache:
    """Compute-once results keyed by their inputs; a lock per key so two requests do not both
    compute the same CKA table."""

    def __init__(self) -> None:
        self._values: dict[tuple[Any, ...], Any] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if key in self._values:
            return self._values[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
        return self._values[key]


def binary(body: bytes, headers: dict[str, str]) -> Response:
    """A little-endian array as ``application/octet-stream`` (``X-Shape``, ``X-Dtype`` headers)."""
    return Response(body, media_type="application/octet-stream", headers=headers)


def etag(served: ServedRun, what: str) -> str:
    """A strong ETag for ``what`` of ``served``: it changes with the run's content."""
    digest = hashlib.blake2b(f"{served.etag_key}:{what}".encode(), digest_size=16).hexdigest()
    return f'"{digest}"'


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``tag`` (or ``*``)."""
    if if_none_match is None:
        return False
    candidates = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return tag in candidates or "*" in candidates


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def finite(value: float) -> float | None:
    """A number for JSON: NaN and infinities (which JSON lacks) become None."""
    return float(value) if math.isfinite(value) else None


def finite_or_none(value: float) -> float | None:
    """A direction's separation for JSON: NaN (single-sample groups) and inf (no spread) become
    None, which the UI shows as "–"."""
    return float(value) if np.isfinite(value) else None


def matrix(values: np.ndarray) -> list[list[float | None]]:
    """A 2-D array as JSON rows, non-finite entries as None."""
    return [[finite(float(v)) for v in row] for row in np.asarray(values, dtype=float)]


def refs(served: ServedRun, ids: np.ndarray, scores: np.ndarray) -> list[SampleRef]:
    """Samples of ``served`` with their scores and label names."""
    values = np.asarray(scores, dtype=float).tolist()
    labels = served.labels.display(ids) if served.labels is not None else [None] * len(ids)
    return [
        SampleRef(id=i, score=s, label=lab) for i, s, lab in zip(ids.tolist(), values, labels, strict=True)
    ]
