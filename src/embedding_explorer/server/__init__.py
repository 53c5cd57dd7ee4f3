"""The explorer's web server: a JSON + binary API over finished runs, and the web UI.

>>> import embedding_explorer as ee
>>> from embedding_explorer.server import serve
>>> serve([ee.open_run("runs/resnet18")])          # doctest: +SKIP
"""

from __future__ import annotations

from .app import create_app
from .launch import ServerHandle, serve, show

__all__ = ["ServerHandle", "create_app", "serve", "show"]
