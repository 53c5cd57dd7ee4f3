"""A committed run's generation: which commit of a run directory a reader opened.

Every committed manifest carries a random ``generation`` (:class:`.build.manifest.Manifest`);
a run made before it is identified by a hash of its manifest's bytes. A reader remembers the
generation it opened and, after each read, checks that the directory still holds it, so data
read across a replacement (``explore`` run again to the same ``out``) are refused, never mixed:
a read that overlapped a swap finds a changed or missing manifest when it is done.

The check is cheap: locally one ``stat`` of ``manifest.json`` (its inode, size and times: an
atomic rename always makes a new file), elsewhere one ``info`` call; the manifest is read again
only when that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from ..exceptions import RunReplacedError
from ..locations import Location
from .format import MANIFEST


def generation_of(manifest: dict[str, Any], raw: bytes) -> str:
    """The manifest's ``generation``, or (a run made before generations) a hash of its bytes."""
    generation = manifest.get("generation")
    if isinstance(generation, str) and generation:
        return generation
    return "sha-" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def stamp(manifest: Location) -> Any:
    """What changes whenever ``manifest.json`` is replaced; None when it is missing."""
    try:
        if manifest.local is not None:
            st = os.stat(manifest.local)
            return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return repr(sorted(manifest.fs.info(manifest.fs_path).items()))
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_generation(manifest: Location) -> str | None:
    """The generation now at ``manifest``; None when there is no readable manifest."""
    try:
        raw = manifest.read_bytes()
        value = json.loads(raw)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return generation_of(value, raw) if isinstance(value, dict) else None


class GenerationWatch:
    """The generation a reader opened, and a cheap check that its directory still holds it."""

    def __init__(self, run: Location, generation: str, opened_stamp: Any) -> None:
        self.run = run
        self.generation = generation
        self._manifest = run / MANIFEST
        self._stamp = opened_stamp
        self._lock = threading.Lock()

    def current(self) -> str | None:
        """The generation the run's directory holds now (None: no finished run there now)."""
        now = stamp(self._manifest)
        if now is not None and now == self._stamp:
            return self.generation
        generation = read_generation(self._manifest)
        if generation == self.generation and now is not None:
            with self._lock:
                self._stamp = now  # the same manifest, touched or copied: no need to read it again
        return generation

    def check(self) -> None:
        """Raise :class:`RunReplacedError` when the directory no longer holds the opened run."""
        now = self.current()
        if now != self.generation:
            raise replaced(self.run, self.generation, now)


def replaced(run: Location, opened: str, now: str | None) -> RunReplacedError:
    what = f"(generation {opened} -> {now})" if now is not None else f"(generation {opened} -> none: deleted)"
    return RunReplacedError(
        f"run at {run.url} was replaced {what} since it was opened; open it again with "
        f"ee.open_run({run.url!r})"
    )
