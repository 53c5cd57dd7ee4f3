"""One background thread that takes work items in order, so the CPU-side work of a batch
(checks, moments, writes; hashing and rendering where the model sees a copy of the inputs)
overlaps the forward pass of the next one instead of following it.

The queue is bounded, so at most ``depth`` batches of host rows wait in memory; an error in the
thread is raised in the caller at its next :meth:`Background.submit` or at :meth:`Background.drain`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

_STOP = object()


class Background:
    """Runs ``work(item)`` for each submitted item, in submission order, on one thread."""

    def __init__(self, work: Callable[[Any], None], *, depth: int = 2, name: str = "ee-background") -> None:
        self._work = work
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:  # the caller failed: stop without doing the rest
            self._error = self._error or exc
        self._queue.put(_STOP)
        self._thread.join()
        if exc is None:
            self._raise()

    def submit(self, item: Any) -> None:
        """Queue ``item`` (waiting while ``depth`` items are queued); raises the thread's error."""
        self._raise()
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                self._raise()  # the thread died: nothing would take the item

    def drain(self) -> None:
        """Wait until every submitted item is done (e.g. before a checkpoint); raises its error."""
        self._queue.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:  # after an error, items are only taken off the queue
                    self._work(item)
            except BaseException as error:  # re-raised in the caller
                self._error = error
            finally:
                self._queue.task_done()
