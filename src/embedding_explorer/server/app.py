"""``create_app``: the explorer's web application, API routes first and the UI mounted last."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .._version import __version__
from ..run import Run
from . import analysis_routes, basis_routes, dataset_routes, export_routes, routes
from .answers import IMMUTABLE
from .auth import TokenAuth
from .directions import Directions
from .errors import add_error_handlers
from .registry import Registry
from .static import NotBuiltPage, SpaFiles, ui_dir


def create_app(
    runs: Sequence[Run],
    *,
    static_dir: Path | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    directions_dir: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """The web application serving ``runs``: the ``/api`` routes and the UI.

    Parameters
    ----------
    runs : sequence of Run
        The runs to serve, and only these; their ids are slugs of their names.
    static_dir : path, optional
        The built UI; default: the package's ``static/`` folder. Without an ``index.html`` there,
        ``/`` serves a page that says how to build the UI.
    token : str, optional
        When given, every API request and the page need it (see :mod:`.auth`), and cacheable
        answers are marked private.
    allowed_hosts : list of str, optional
        When given, requests whose Host header is not one of these are refused (400).
    directions_dir : path, optional
        A folder where the recipes of directions made from sample ids are kept (bounded), so a
        restarted server still makes the directions its open pages probe. Default: memory only
        (directions between two labels never need it: their ids make them again).
    """
    runs = list(runs)
    wrong = [type(r).__name__ for r in runs if not isinstance(r, Run)]
    if wrong:
        raise TypeError(f"create_app takes Run objects (ee.open_run(path)); got {', '.join(wrong)}")
    app = FastAPI(title="Embedding Explorer", version=__version__)
    # what the route handlers get as dependencies (:mod:`.params`)
    app.state.registry = Registry(runs)
    app.state.directions = Directions(folder=directions_dir)
    app.state.registry.on_reopen.append(lambda run_id: app.state.directions.made.clear())
    app.state.cache_control = ("private, " if token is not None else "public, ") + IMMUTABLE
    for module in (routes, analysis_routes, basis_routes, dataset_routes, export_routes):
        app.include_router(module.router)
    add_error_handlers(app)
    folder = ui_dir(static_dir)
    site = SpaFiles(folder) if folder is not None else NotBuiltPage()
    app.mount("/", site, name="ui")
    if token is not None:
        app.add_middleware(TokenAuth, token=token, is_public=site.is_asset)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
