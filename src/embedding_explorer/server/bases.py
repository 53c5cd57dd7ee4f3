"""What a layer's samples are probed along: its PCA, its ICA, or a direction made in the UI.

Every probing route takes ``basis=pca|ica|dir:<id>``; :func:`resolve_basis` turns that into a
:class:`Basis` whose ``probe`` answers ``extremes``, ``quantile_samples``, ``histogram`` and
``percentiles`` alike (the library's ``ScoreProbe``), so one code path serves all three.

Directions live in server memory (:class:`DirectionStore`). Their id is a digest of the run, the
layer and the two groups, so asking again for the same direction (a reloaded page recreating it
from its link) gets the same id without computing it twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from fastapi import HTTPException

from ..probe import ScoreProbe
from ..run import Layer
from .registry import ServedRun

if TYPE_CHECKING:
    from ..analysis.directions import Direction

BasisKind = Literal["pca", "ica", "direction"]
MAX_DIRECTIONS = 256  # kept per server; the oldest is forgotten first
MAX_DIRECTION_BYTES = 512 * 2**20  # ... and this much memory (N scores each, sorted once probed)


@dataclass(frozen=True)
class Basis:
    """One basis of one layer: the probe, and how its components read."""

    key: str  # "pca", "ica" or "dir:<id>": part of cache keys
    kind: BasisKind
    layer: Layer
    probe: ScoreProbe
    names: list[str]  # "PC 1", "IC 1", or the direction's name
    explained_variance_ratio: list[float] | None  # PCA only
    kurtosis: list[float] | None  # ICA only: excess kurtosis per component
    separation: float | None  # a direction only: how far apart its two groups are

    @property
    def n_components(self) -> int:
        return int(self.probe.scores.shape[1])


@dataclass(frozen=True)
class StoredDirection:
    id: str
    run: str
    layer: str
    direction: Direction
    labels: tuple[str, str] | None  # the two label names it was made from, if any


class DirectionStore:
    """Directions made through the API, by id: at most ``limit`` of them and ``max_bytes`` of
    memory together (the oldest is dropped first; the newest is always kept)."""

    def __init__(self, limit: int = MAX_DIRECTIONS, max_bytes: int = MAX_DIRECTION_BYTES) -> None:
        self._items: OrderedDict[str, StoredDirection] = OrderedDict()
        self._bytes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._limit = limit
        self._max_bytes = max_bytes

    @staticmethod
    def key(run: str, layer: str, ids_a: np.ndarray, ids_b: np.ndarray, name: str | None = None) -> str:
        """A digest of the run, the layer, both groups and the requested name (None: the default
        name), so the same request gets the same id and a new name a new direction."""
        h = hashlib.blake2b(digest_size=8)
        for part in (
            run.encode(),
            layer.encode(),
            ids_a.astype("<i8").tobytes(),
            ids_b.astype("<i8").tobytes(),
            b"" if name is None else b"\x01" + name.encode(),
        ):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return h.hexdigest()

    @property
    def nbytes(self) -> int:
        """The memory the kept directions hold (estimated: see :func:`direction_bytes`)."""
        with self._lock:
            return sum(self._bytes.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, direction_id: str) -> StoredDirection | None:
        with self._lock:
            return self._items.get(direction_id)

    def put(self, item: StoredDirection) -> StoredDirection:
        with self._lock:
            kept = self._items.setdefault(item.id, item)
            self._bytes.setdefault(item.id, direction_bytes(kept.direction))
            self._items.move_to_end(item.id)
            while len(self._items) > 1 and (
                len(self._items) > self._limit or sum(self._bytes.values()) > self._max_bytes
            ):
                dropped, _ = self._items.popitem(last=False)
                del self._bytes[dropped]
            return kept

    def of_layer(self, run: str, layer: str) -> list[StoredDirection]:
        with self._lock:
            return [d for d in self._items.values() if d.run == run and d.layer == layer]


def resolve_basis(served: ServedRun, layer: Layer, basis: str, store: DirectionStore) -> Basis:
    """``pca``, ``ica`` or ``dir:<id>`` of ``layer`` (404/422 naming what is valid)."""
    if basis == "pca":
        ratios = [
            float(r) for r in layer.info.get("explained_variance_ratio", layer.explained_variance_ratio)
        ]
        names = [f"PC {i + 1}" for i in range(layer.n_components)]
        return Basis("pca", "pca", layer, layer, names, ratios, None, None)
    if basis == "ica":
        ica = layer.ica()  # fitted once per layer (cached on it)
        m = int(ica.scores.shape[1])
        kurt = [float(k) for k in np.asarray(ica.kurtosis, dtype=float)]
        return Basis("ica", "ica", layer, ica, [f"IC {i + 1}" for i in range(m)], None, kurt, None)
    if basis.startswith("dir:"):
        direction_id = basis[4:]
        item = store.get(direction_id)
        if item is None:
            raise HTTPException(
                404,
                f"no direction {direction_id!r} on this server (directions are kept in memory: make it "
                f"again with POST /api/runs/{served.id}/layers/{layer.name}/directions)",
            )
        if item.run != served.id or item.layer != layer.name:
            raise HTTPException(
                422,
                f"direction {direction_id!r} belongs to layer {item.layer!r} of run {item.run!r}, "
                f"not to layer {layer.name!r} of run {served.id!r}",
            )
        d = item.direction
        return Basis(basis, "direction", layer, d, [str(d.name)], None, None, finite_or_none(d.separation))
    raise HTTPException(422, f"basis={basis!r} must be 'pca', 'ica' or 'dir:<id>' (a direction's id)")


def direction_bytes(d: Direction) -> int:
    """Memory a direction holds once probed: its float32 scores, their sort order (int64) and
    sorted float64 copy (:meth:`ScoreProbe.sorted_scores`), its groups and its D-vectors."""
    n = int(d.scores.shape[0])
    vectors = 3 * int(np.asarray(d.vector).nbytes)  # vector, mean_a, mean_b
    return n * (4 + 8 + 8) + int(d.group_a.nbytes) + int(d.group_b.nbytes) + vectors


def finite_or_none(value: float) -> float | None:
    """A direction's separation for JSON: NaN (single-sample groups) and inf (no spread) become
    None, which the UI shows as "–"."""
    return float(value) if np.isfinite(value) else None


def variance_ratios(layer: Layer) -> list[float]:
    """From the manifest: reading the PCA arrays would load the (k, D) components."""
    ratios = layer.info.get("explained_variance_ratio")
    return [float(r) for r in (ratios if ratios is not None else layer.explained_variance_ratio)]


def check_group(ids: Sequence[int], served: ServedRun, which: str) -> np.ndarray:
    """A group of sample ids as an int64 array: not empty, in range, no repeats."""
    if len(ids) == 0:
        raise HTTPException(422, f"{which} is empty: a direction needs at least one sample in each group")
    try:
        array = np.asarray(ids, dtype=np.int64)
    except OverflowError:  # an id beyond int64: name it rather than fail with a server error
        huge = next(i for i in ids if not -(2**63) <= i < 2**63)
        raise HTTPException(
            422,
            f"{which} holds sample id {huge}, out of range; run {served.id!r} has samples "
            f"0..{served.run.n_samples - 1}",
        ) from None
    bad = array[(array < 0) | (array >= served.run.n_samples)]
    if len(bad):
        raise HTTPException(
            422,
            f"{which} holds sample ids out of range ({', '.join(map(str, bad[:5].tolist()))}); "
            f"run {served.id!r} has samples 0..{served.run.n_samples - 1}",
        )
    return np.unique(array)
