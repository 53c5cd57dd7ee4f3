"""The recipe book: what each direction made from sample ids is made of, kept by its id.

A recipe is the direction's two groups (sorted sample ids), its name, and what its answer says
(separation, group sizes), so a direction dropped from the cache of made directions is made
again from its id, and listing the directions makes nothing. In memory, the book keeps at most
``max_recipes`` recipes and ``max_bytes`` of sample ids (the oldest is dropped first; the newest
is always kept).

With a ``folder``, the book also writes each recipe there (``<id>.npz``: two int64 arrays and a
JSON header; no pickle), bounded alike by the files' modification times, so a restarted server
makes the directions its pages still probe. A file is only read for the run (and the run's
content, ``version``) and the layer it was written for.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..analysis.directions import Direction

Key = tuple[str, str, str]  # (run id, layer name, direction id)
NO_IDS = np.zeros(0, dtype=np.int64)
DIGEST_ID = re.compile(r"[0-9a-f]{16}")  # the ids whose recipes go to disk (file names)


@dataclass(frozen=True)
class Recipe:
    """What a direction is made of, and what its answer says about it.

    A label direction keeps no groups (empty arrays): its id makes them again."""

    id: str
    run: str
    layer: str
    group_a: np.ndarray  # sorted unique sample ids
    group_b: np.ndarray
    name: str
    labels: tuple[str, str] | None  # the two label names it was made from, if any
    separation: float
    n_a: int
    n_b: int
    version: str = ""  # the run's content (ServedRun.etag_key) it was made on

    @classmethod
    def of(
        cls,
        direction_id: str,
        run: str,
        layer: str,
        made: Direction,
        labels: tuple[str, str] | None,
        *,
        keep_groups: bool,
        version: str = "",
    ) -> Recipe:
        a, b = (made.group_a, made.group_b) if keep_groups else (NO_IDS, NO_IDS)
        n_a, n_b = len(made.group_a), len(made.group_b)
        sep = float(made.separation)
        return cls(direction_id, run, layer, a, b, str(made.name), labels, sep, n_a, n_b, version)

    @property
    def key(self) -> Key:
        return (self.run, self.layer, self.id)

    @property
    def nbytes(self) -> int:
        return int(self.group_a.nbytes + self.group_b.nbytes)


class RecipeBook:
    """Recipes by (run, layer, id): bounded in memory, and written to ``folder`` when given."""

    def __init__(
        self, *, max_recipes: int, max_bytes: int, folder: str | os.PathLike[str] | None = None
    ) -> None:
        self._recipes: OrderedDict[Key, Recipe] = OrderedDict()
        self._lock = threading.Lock()
        self._max_recipes = max_recipes
        self._max_bytes = max_bytes
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._recipes)

    def get(self, key: Key, version: str = "") -> Recipe | None:
        """The recipe of ``key`` from memory, else from the folder (for that run's ``version``)."""
        with self._lock:
            recipe = self._recipes.get(key)
        if recipe is None:
            recipe = self._read(key[2])
            if recipe is None or recipe.key != key or recipe.version != version:
                return None
            self._remember(recipe)
        return recipe if recipe.version == version else None

    def find(self, direction_id: str) -> Recipe | None:
        """A recipe of this id for any run and layer (to say where a direction belongs)."""
        with self._lock:
            found = next((r for r in self._recipes.values() if r.id == direction_id), None)
        return found if found is not None else self._read(direction_id)

    def add(self, recipe: Recipe) -> Recipe:
        """Keep ``recipe`` (or the one already kept under its key), and write it to the folder."""
        kept = self._remember(recipe)
        if kept is recipe and recipe.nbytes and self.folder is not None and DIGEST_ID.fullmatch(recipe.id):
            self._write(recipe)
        return kept

    def of_layer(self, run: str, layer: str) -> list[Recipe]:
        """The recipes of one layer in memory, oldest first."""
        with self._lock:
            return [r for r in self._recipes.values() if r.run == run and r.layer == layer]

    def _remember(self, recipe: Recipe) -> Recipe:
        with self._lock:
            kept = self._recipes.setdefault(recipe.key, recipe)
            total = sum(r.nbytes for r in self._recipes.values())
            while len(self._recipes) > 1 and (
                len(self._recipes) > self._max_recipes or total > self._max_bytes
            ):
                _, dropped = self._recipes.popitem(last=False)
                total -= dropped.nbytes
            return kept

    def _path(self, direction_id: str) -> Path | None:
        if self.folder is None or not DIGEST_ID.fullmatch(direction_id):
            return None  # only digests name files: no id reaches a path the client chose
        return self.folder / f"{direction_id}.npz"

    def _write(self, recipe: Recipe) -> None:
        path = self._path(recipe.id)
        if path is None:
            return
        header = {
            "id": recipe.id,
            "run": recipe.run,
            "layer": recipe.layer,
            "name": recipe.name,
            "labels": list(recipe.labels) if recipe.labels else None,
            "separation": recipe.separation if np.isfinite(recipe.separation) else None,
            "version": recipe.version,
        }
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with tmp.open("wb") as f:
                np.savez(
                    f, group_a=recipe.group_a, group_b=recipe.group_b, header=np.array(json.dumps(header))
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self._prune(path.parent)

    def _read(self, direction_id: str) -> Recipe | None:
        path = self._path(direction_id)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                a, b = data["group_a"].astype(np.int64), data["group_b"].astype(np.int64)
        except (OSError, ValueError, KeyError):  # unreadable (being pruned, or not ours): no recipe
            return None
        labels = tuple(header["labels"]) if header.get("labels") else None
        separation = header["separation"] if header.get("separation") is not None else float("nan")
        return Recipe(
            str(header["id"]),
            str(header["run"]),
            str(header["layer"]),
            a,
            b,
            str(header["name"]),
            labels,
            float(separation),
            len(a),
            len(b),
            str(header.get("version", "")),
        )

    def _prune(self, folder: Path) -> None:
        """Drop the oldest files beyond the book's bounds (the newest is always kept)."""
        files = []
        for path in folder.glob("*.npz"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime_ns, path.name, stat.st_size, path))
        files.sort(reverse=True)
        total = 0
        for i, (_, _, size, path) in enumerate(files):
            total += size
            if i > 0 and (i >= self._max_recipes or total > self._max_bytes):
                path.unlink(missing_ok=True)
