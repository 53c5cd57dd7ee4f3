"""Helpers that shape answers, shared by the route modules: binary bodies, ETags, JSON numbers,
sample lists, and the compute-once cache of analysis results."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio.to_thread
import numpy as np
import pandas as pd
from anyio.lowlevel import RunVar
from fastapi import Request, Response

from .schemas import SampleRef

if TYPE_CHECKING:
    from .registry import ServedRun

T = TypeVar("T")
IMMUTABLE = "max-age=31536000, immutable"
BINARY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "little-endian array"}
}
"""The OpenAPI ``responses`` of a route that answers a binary array."""


MAX_CACHED = 512  # results per cache; the least recently used is dropped first
MAX_CACHED_BYTES = 256 * 2**20  # ... and this much memory (estimated: :func:`nbytes_of`)
HEAVY_THREADS = 2  # threads that compute analyses (CKA, associations...) at once, per server


class Cache:
    """Compute-once results keyed by their inputs, bounded: at most ``max_entries`` results and
    ``max_bytes`` of memory (the least recently used is dropped first; the newest is always
    kept). A lock per key (dropped once computed) so two requests do not both compute the same
    CKA table."""

    def __init__(self, max_entries: int = MAX_CACHED, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self._values: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._sizes: dict[tuple[Any, ...], int] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        with self._guard:
            return len(self._values)

    @property
    def nbytes(self) -> int:
        with self._guard:
            return sum(self._sizes.values())

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        with self._guard:
            return key in self._values

    def get(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        found, value = self._lookup(key)
        if found:
            return cast(T, value)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                found, value = self._lookup(key)
                if not found:
                    value = compute()
                    self._keep(key, value)
        finally:
            with self._guard:
                self._locks.pop(key, None)
        return cast(T, value)

    def _lookup(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        with self._guard:
            if key not in self._values:
                return False, None
            self._values.move_to_end(key)
            return True, self._values[key]

    def _keep(self, key: tuple[Any, ...], value: Any) -> None:
        with self._guard:
            self._values[key] = value
            self._sizes[key] = nbytes_of(value)
            self._values.move_to_end(key)
            total = sum(self._sizes.values())
            while len(self._values) > 1 and (len(self._values) > self.max_entries or total > self.max_bytes):
                dropped, _ = self._values.popitem(last=False)
                total -= self._sizes.pop(dropped)


def nbytes_of(value: Any, depth: int = 0) -> int:
    """The memory a cached result holds, estimated: its arrays and tables, and those of its
    attributes and items two levels down (objects it only refers to, such as runs, count little)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, pd.DataFrame | pd.Series):
        return int(np.asarray(value.memory_usage(index=True)).sum())
    if depth >= 3:
        return 64
    if isinstance(value, dict):
        return sum(nbytes_of(v, depth + 1) for v in value.values()) + 64 * len(value)
    if isinstance(value, list | tuple):
        return sum(nbytes_of(v, depth + 1) for v in value) + 8 * len(value)
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict):
        return nbytes_of(fields, depth + 1)
    return sys.getsizeof(value)


async def heavy(request: Request, compute: Callable[[], T], *, ready: bool = False) -> T:
    """``compute()`` (an analysis: CKA, associations...) in the server's analysis threads, at
    most ``HEAVY_THREADS`` at once: a slow first CKA, and the requests waiting for it, hold no
    thread of the pool the cheap answers (galleries, scores, thumbnails) run in. ``ready``: the
    result is cached already, so the answer is cheap and runs in that common pool."""
    if ready:
        return await anyio.to_thread.run_sync(compute)
    limiters = _HEAVY_LIMITERS.get(None)
    if limiters is None:  # one set per event loop (a limiter belongs to the loop it waits in)
        limiters = {}
        _HEAVY_LIMITERS.set(limiters)
    state = request.app.state
    limiter = limiters.get(id(state))
    if limiter is None:
        limiter = limiters[id(state)] = anyio.CapacityLimiter(getattr(state, "heavy_threads", HEAVY_THREADS))
    return await anyio.to_thread.run_sync(compute, limiter=limiter)


_HEAVY_LIMITERS: RunVar[dict[int, anyio.CapacityLimiter]] = RunVar("embedding_explorer_heavy")


def binary(body: bytes, headers: dict[str, str]) -> Response:
    """A little-endian array as ``application/octet-stream`` (``X-Shape``, ``X-Dtype`` headers);
    the app's :class:`.compression.Compression` gzips it or not by its kind."""
    return Response(body, media_type="application/octet-stream", headers=headers)


def narrow_codes(codes: np.ndarray) -> np.ndarray:
    """Category codes (-1 for missing) in the narrowest little-endian int type that holds them:
    int8 for up to 127 categories, then int16, then int32 (a million labels: 1 MB, not 4)."""
    top = int(codes.max(initial=-1))
    dtype = "<i1" if top <= np.iinfo(np.int8).max else "<i2" if top <= np.iinfo(np.int16).max else "<i4"
    return codes.astype(dtype, copy=False)


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
