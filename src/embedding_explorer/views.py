"""The one seam between a run and the ways it is shown: the web UI and the HTML report.

A run is data: :mod:`.run`, :mod:`.probe` and :mod:`.analysis` sit below the server
(:mod:`.server`) and the report (:mod:`.report`), which read runs. ``run.show()`` and
``run.report(path)`` are conveniences for notebooks that belong to those upper layers, so
:mod:`.run` must not import them (that made the data model, the server and every analysis it
serves one import circle). Instead it asks this module, which knows the views only by name, the
way an entry point names a plugin: ``"package.module:attribute"``. The named module is imported
on the first call, never before, so importing a run loads neither FastAPI nor the report.

>>> from embedding_explorer.views import VIEWS
>>> VIEWS["report"]
'embedding_explorer.report:write_report'

The link stays honest: the table below is the only place where the data model names a view,
and ``tests/test_imports.py`` checks that every name in it resolves, that importing the run,
the probe or the analyses does not import any of them, and that the package's static import
graph has no circle but the documented one (:class:`.run.Layer`'s analysis methods).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

VIEWS: dict[str, str] = {
    "show": "embedding_explorer.server.notebook:show",  # (runs, *, height, mode) -> ServerHandle
    "report": "embedding_explorer.report:write_report",  # (run, path, *, n) -> Path
}
"""The views a run offers, by name: where each entry point lives, as ``module:attribute``."""


def view(name: str) -> Callable[..., Any]:
    """The entry point of the view ``name`` (a key of :data:`VIEWS`), importing its module."""
    try:
        target = VIEWS[name]
    except KeyError:
        raise KeyError(f"no view {name!r}; the views: {', '.join(VIEWS)}") from None
    module, _, attribute = target.partition(":")
    entry: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return entry
