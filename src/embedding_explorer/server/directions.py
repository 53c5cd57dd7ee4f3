"""Directions made in the UI, kept by what they are made of, so every id the server gave out can
be made again: a client never has to post a direction twice.

A direction's id says how to make it again:

``label:<a>:<b>``
    From the samples of one label to those of another, ``<a>`` and ``<b>`` being the labels'
    positions among the run's distinct labels (sorted, as ``/api/runs`` lists them; ``1+4`` when
    one name stands for two raw values). Made again from the run itself, on any layer of it, at
    any time, on any server that serves the run: nothing is stored for it.
16 hex digits
    Any other direction (two lists of sample ids, or a custom name): a digest of the run, the
    layer, both groups and the name. Its groups are kept in a recipe book (:mod:`.recipes`) by
    that digest, at most ``MAX_RECIPES`` recipes and ``MAX_RECIPE_BYTES`` of ids together (the
    oldest is dropped first), while the server runs and, when the server has a folder for them
    (``create_app(directions_dir=...)``), across restarts. A recipe is a small part of the
    direction it makes (which holds N scores and their sort order).

Made directions are cached apart from the recipes (:class:`DirectionStore`, bounded by count
and memory): one dropped from the cache is made again from its id when next probed.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from fastapi import HTTPException

from ..analysis.directions import matching_labels
from .errors import NotFoundError
from .recipes import Key, Recipe, RecipeBook

if TYPE_CHECKING:
    from ..analysis.directions import Direction
    from ..run import Layer
    from .columns import LabelCoding
    from .registry import ServedRun

MAX_DIRECTIONS = 256  # made directions cached per server; the least recently used is dropped first
MAX_DIRECTION_BYTES = 512 * 2**20  # ... and this much memory (N scores each, sorted once probed)
MAX_RECIPES = 4096  # recipes per server (and on disk); the oldest is dropped first
MAX_RECIPE_BYTES = 256 * 2**20  # ... and this much memory (their sample ids), and of files
LABEL_ID = re.compile(r"label:(\d+(?:\+\d+)*):(\d+(?:\+\d+)*)")


@dataclass(frozen=True)
class StoredDirection:
    id: str
    run: str
    layer: str
    direction: Direction
    labels: tuple[str, str] | None  # the two label names it was made from, if any

    @property
    def key(self) -> Key:
        return (self.run, self.layer, self.id)


class DirectionStore:
    """Made directions by (run, layer, id): at most ``limit`` of them and ``max_bytes`` of memory
    together (the least recently used is dropped first; the newest is always kept)."""

    def __init__(self, limit: int = MAX_DIRECTIONS, max_bytes: int = MAX_DIRECTION_BYTES) -> None:
        self._items: OrderedDict[Key, StoredDirection] = OrderedDict()
        self._bytes: dict[Key, int] = {}
        self._lock = threading.Lock()
        self._limit = limit
        self._max_bytes = max_bytes

    @property
    def nbytes(self) -> int:
        """The memory the kept directions hold (estimated: see :func:`direction_bytes`)."""
        with self._lock:
            return sum(self._bytes.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: Key) -> StoredDirection | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, item: StoredDirection) -> StoredDirection:
        with self._lock:
            kept = self._items.setdefault(item.key, item)
            self._bytes.setdefault(item.key, direction_bytes(kept.direction))
            self._items.move_to_end(item.key)
            while len(self._items) > 1 and (
                len(self._items) > self._limit or sum(self._bytes.values()) > self._max_bytes
            ):
                dropped, _ = self._items.popitem(last=False)
                del self._bytes[dropped]
            return kept

    def clear(self) -> None:
        """Forget every made direction (they are made again from their ids when next probed)."""
        with self._lock:
            self._items.clear()
            self._bytes.clear()


class Directions:
    """The directions of one server: recipes by id (:class:`.recipes.RecipeBook`, bounded; also
    on disk with ``folder``) and made directions (:class:`DirectionStore`, cached)."""

    def __init__(
        self,
        *,
        made: DirectionStore | None = None,
        max_recipes: int = MAX_RECIPES,
        max_recipe_bytes: int = MAX_RECIPE_BYTES,
        folder: str | os.PathLike[str] | None = None,
    ) -> None:
        self.made = made if made is not None else DirectionStore()
        self.recipes = RecipeBook(max_recipes=max_recipes, max_bytes=max_recipe_bytes, folder=folder)

    def __len__(self) -> int:
        """How many directions this server knows the recipes of (in memory)."""
        return len(self.recipes)

    def make(
        self,
        served: ServedRun,
        layer: Layer,
        direction_id: str,
        groups: tuple[np.ndarray, np.ndarray],
        name: str,
        labels: tuple[str, str] | None,
    ) -> Recipe:
        """The recipe of ``direction_id``, making the direction from ``groups`` the first time."""
        known = self.recipes.get((served.id, layer.name, direction_id), served.etag_key)
        if known is not None:
            return known
        stored = self._made(served, layer, direction_id, groups, name, labels)
        keep = LABEL_ID.fullmatch(direction_id) is None  # a label direction's id makes its groups
        recipe = Recipe.of(
            direction_id,
            served.id,
            layer.name,
            stored.direction,
            labels,
            keep_groups=keep,
            version=served.etag_key,
        )
        return self.recipes.add(recipe)

    def get(self, served: ServedRun, layer: Layer, direction_id: str) -> StoredDirection:
        """The direction ``direction_id`` of ``layer``, made again from its id when not cached."""
        key = (served.id, layer.name, direction_id)
        stored = self.made.get(key)
        if stored is not None:
            return stored
        if LABEL_ID.fullmatch(direction_id):
            codes = parse_label_id(served.id, labels_of(served), direction_id)
            groups, name, labels = label_groups(labels_of(served), *codes)
            self.make(served, layer, direction_id, groups, name, labels)  # listed from now on
            return self.made.get(key) or self._made(served, layer, direction_id, groups, name, labels)
        recipe = self.recipes.get(key, served.etag_key)
        if recipe is None:
            raise self._unknown(served, layer, direction_id)
        return self._made(
            served, layer, direction_id, (recipe.group_a, recipe.group_b), recipe.name, recipe.labels
        )

    def of_layer(self, run: str, layer: str) -> list[Recipe]:
        """The recipes of one layer, oldest first."""
        return self.recipes.of_layer(run, layer)

    def _made(
        self,
        served: ServedRun,
        layer: Layer,
        direction_id: str,
        groups: tuple[np.ndarray, np.ndarray],
        name: str,
        labels: tuple[str, str] | None,
    ) -> StoredDirection:
        made = layer.direction(groups[0], groups[1], name=name)  # the library's errors: 422
        return self.made.put(StoredDirection(direction_id, served.id, layer.name, made, labels))

    def _unknown(self, served: ServedRun, layer: Layer, direction_id: str) -> Exception:
        elsewhere = self.recipes.find(direction_id)
        if elsewhere is not None and (elsewhere.run, elsewhere.layer) != (served.id, layer.name):
            return HTTPException(
                422,
                f"direction {direction_id!r} belongs to layer {elsewhere.layer!r} of run {elsewhere.run!r}, "
                f"not to layer {layer.name!r} of run {served.id!r}",
            )
        return NotFoundError(
            f"no direction {direction_id!r} on this server (directions made from sample ids are kept "
            f"while the server runs: make it with POST /api/runs/{served.id}/layers/{layer.name}/directions)"
        )


def content_id(run: str, layer: str, ids_a: np.ndarray, ids_b: np.ndarray, name: str | None = None) -> str:
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


def label_id(codes_a: Sequence[int], codes_b: Sequence[int]) -> str:
    """``label:<a>:<b>``: the positions of two labels among the run's distinct labels."""
    return f"label:{'+'.join(map(str, sorted(codes_a)))}:{'+'.join(map(str, sorted(codes_b)))}"


def parse_label_id(run: str, coding: LabelCoding, direction_id: str) -> tuple[list[int], list[int]]:
    """The label positions a ``label:<a>:<b>`` id names (404 when the run has no such labels)."""
    match = LABEL_ID.fullmatch(direction_id)
    if match is None:
        raise NotFoundError(f"no direction {direction_id!r}: a label direction's id reads 'label:<a>:<b>'")
    codes = [sorted({int(c) for c in part.split("+")}) for part in match.groups()]
    if label_id(*codes) != direction_id:  # one id per direction: no "label:00:2", no "label:1+0:2"
        raise NotFoundError(f"no direction {direction_id!r}: did you mean {label_id(*codes)!r}?")
    k = len(coding.values)
    if any(not 0 <= c < k for part in codes for c in part):
        raise NotFoundError(f"no direction {direction_id!r} in run {run!r}: its labels are at 0..{k - 1}")
    if any(len({coding.names[c] for c in part}) > 1 for part in codes):
        raise NotFoundError(
            f"no direction {direction_id!r} in run {run!r}: 'a+b' joins labels of one name only"
        )
    return codes[0], codes[1]


def label_groups(
    coding: LabelCoding, codes_a: Sequence[int], codes_b: Sequence[int]
) -> tuple[tuple[np.ndarray, np.ndarray], str, tuple[str, str]]:
    """The groups, default name and label names of the direction between two labels."""
    groups = (label_ids(coding, codes_a), label_ids(coding, codes_b))
    if np.array_equal(groups[0], groups[1]):
        raise HTTPException(422, "group A and group B are the same samples: a direction needs two groups")
    names = (coding.names[codes_a[0]], coding.names[codes_b[0]])
    return groups, f"{names[0]} → {names[1]}", names


def labels_of(served: ServedRun) -> LabelCoding:
    """The run's labels, or 422 for a run without: a label direction needs them."""
    if served.labels is None:
        raise HTTPException(422, f"run {served.id!r} has no labels: make the direction from two selections")
    return served.labels


def label_codes(run: str, coding: LabelCoding, label: str | int | float | bool, which: str) -> list[int]:
    """The positions of the labels that ``label`` reads as (a display name or a stored value),
    resolved as the library resolves it (:func:`~..analysis.directions.matching_labels`)."""
    codes = matching_labels(coding.values, coding.names, label)
    if not codes:
        valid = ", ".join(repr(n) for n in coding.names[:30])
        raise HTTPException(422, f"{which}={label!r} is no label of run {run!r}; its labels: {valid}")
    return codes


def label_ids(coding: LabelCoding, codes: Sequence[int]) -> np.ndarray:
    """The sample ids whose label is at one of ``codes``."""
    return np.flatnonzero(np.isin(coding.codes, list(codes))).astype(np.int64)


def check_group(ids: Sequence[int], served: ServedRun, which: str) -> np.ndarray:
    """A group of sample ids as sorted unique int64: not empty, in range (422 otherwise)."""
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


def direction_bytes(d: Direction) -> int:
    """Memory a direction holds once probed: its float32 scores, their sort order (int64) and
    sorted float64 copy (:meth:`ScoreProbe.sorted_scores`), its groups and its D-vectors."""
    n = int(d.scores.shape[0])
    vectors = 3 * int(np.asarray(d.vector).nbytes)  # vector, mean_a, mean_b
    return n * (4 + 8 + 8) + int(d.group_a.nbytes) + int(d.group_b.nbytes) + vectors
