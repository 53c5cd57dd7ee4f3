"""The runs a server serves, under URL-safe ids, with what is derived from them once.

Only the runs given at start are served: every lookup goes through :class:`Registry`, which
raises :class:`.errors.NotFoundError` (404) naming the valid ids, so no request reaches a path
the client chose.

A served run may be replaced on disk (``explore`` run again to the same ``out``) or deleted
while the server is up: each lookup checks the run's generation (one ``stat`` of its manifest)
and opens a replaced run again, with fresh caches; a deleted one answers 404 saying so. A
request whose reads overlap a replacement fails with :class:`.RunReplacedError` (answered 503:
ask again), never with a mix of the two runs.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any

from ..exceptions import EmbeddingExplorerError, IncompleteRunError
from ..run import Histogram, Layer, Run, open_run
from .answers import Cache
from .columns import Column, LabelCoding, label_coding, run_columns
from .errors import NotFoundError


def slug(name: str) -> str:
    """A URL-safe id from a run name: ``"Fashion CNN (trained)"`` -> ``"fashion-cnn-trained"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "run"


def unique_ids(names: Sequence[str]) -> list[str]:
    """One slug per name, made unique with ``-2``, ``-3``... in order."""
    taken: set[str] = set()
    ids = []
    for name in names:
        base = candidate = slug(name)
        k = 1
        while candidate in taken:
            k += 1
            candidate = f"{base}-{k}"
        taken.add(candidate)
        ids.append(candidate)
    return ids


class ServedRun:
    """One run as the server sees it: its id, and what is derived from it once and cached."""

    def __init__(self, run_id: str, run: Run) -> None:
        self.id = run_id
        self.run = run
        self._histograms: dict[tuple[Any, int, int, bool], Histogram] = {}

    @cached_property
    def etag_key(self) -> str:
        """Identifies this run's content: stored renderings never change under one key."""
        m = self.run.manifest
        data = m.get("data", {})
        parts = [m.get("key"), m.get("created"), data.get("content_hash"), self.run.url, self.run.generation]
        return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()

    @cached_property
    def labels(self) -> LabelCoding | None:
        return label_coding(self.run)

    @cached_property
    def metadata_columns(self) -> list[str]:
        return [str(c) for c in self.run.metadata.columns]

    @cached_property
    def columns(self) -> dict[str, Column]:
        return {c.name: c for c in run_columns(self.run, self.labels)}

    def column(self, name: str) -> Column:
        try:
            return self.columns[name]
        except KeyError:
            valid = ", ".join(repr(c) for c in self.columns) or "none"
            raise NotFoundError(f"run {self.id!r} has no column {name!r}; its columns: {valid}") from None

    def layer(self, name: str) -> Layer:
        if name not in self.run.layers:
            valid = ", ".join(repr(n) for n in self.run.layers)
            raise NotFoundError(f"run {self.id!r} has no layer {name!r}; its layers: {valid}")
        return self.run[name]

    def check_sample(self, sample_id: int) -> int:
        if not 0 <= sample_id < self.run.n_samples:
            raise NotFoundError(
                f"run {self.id!r} has no sample {sample_id}; sample ids are 0..{self.run.n_samples - 1}"
            )
        return sample_id

    def histogram(self, probe: Any, what: Any, component: int, bins: int, by_label: bool) -> Histogram:
        """``probe.histogram`` (a layer, its ICA, a direction), computed once per
        (``what`` names the probe, e.g. ``(layer, basis)``, component, bins, by_label)."""
        key = (what, component, bins, by_label)
        cached = self._histograms.get(key)
        if cached is None:
            cached = self._histograms[key] = probe.histogram(component, bins, by_label=by_label)
        return cached


class Registry:
    """The served runs by id, and the analyses over them computed once (``cache``, keyed by
    :meth:`key`: the runs at the generations served, so a run replaced on disk and opened again
    never meets an analysis of its old files, and the other runs' analyses are kept).

    ``on_reopen`` are called with a run's id after it was opened again (to drop what else the
    server derived from the old run, e.g. made directions)."""

    def __init__(self, runs: Sequence[Run]) -> None:
        ids = unique_ids([run.name for run in runs])
        self.runs = {run_id: ServedRun(run_id, run) for run_id, run in zip(ids, runs, strict=True)}
        self.cache = Cache()
        self.on_reopen: list[Callable[[str], None]] = []
        self._reopen_lock = threading.Lock()

    def __iter__(self) -> Iterator[ServedRun]:
        """The served runs that are still there (each opened again if it was replaced)."""
        for run_id in list(self.runs):
            try:
                yield self.get(run_id)
            except NotFoundError:
                continue

    def get(self, run_id: str) -> ServedRun:
        try:
            served = self.runs[run_id]
        except KeyError:
            valid = ", ".join(repr(i) for i in self.runs) or "none"
            raise NotFoundError(f"no run {run_id!r}; the served runs: {valid}") from None
        if served.run.current_generation() == served.run.generation:
            return served
        return self._reopen(run_id, served)

    def key(self, kind: str, run_ids: Sequence[str], *rest: Any) -> tuple[Any, ...]:
        """A ``cache`` key for an analysis of ``run_ids``: each run at the generation served now
        (the old generation's entries are never read again and age out of the bounded cache)."""
        return (kind, *((r, self.get(r).run.generation) for r in run_ids), *rest)

    def _reopen(self, run_id: str, served: ServedRun) -> ServedRun:
        """The run at ``served``'s location opened again (it was replaced), or a 404 when it is gone."""
        with self._reopen_lock:
            current = self.runs[run_id]
            if current is not served and current.run.current_generation() == current.run.generation:
                return current  # another request opened it again already
            try:
                run = open_run(served.run.location)
            except (FileNotFoundError, IncompleteRunError, EmbeddingExplorerError) as error:
                raise NotFoundError(
                    f"run {run_id!r} at {served.run.url} is gone: it was deleted or replaced by an "
                    f"unfinished or damaged run since the server started ({error})"
                ) from None
            fresh = ServedRun(run_id, run)
            self.runs[run_id] = fresh
            for callback in self.on_reopen:
                callback(run_id)
            return fresh
