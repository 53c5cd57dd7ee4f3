"""``create_app``: the explorer's web application, API routes first and the UI mounted last."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .._version import __version__
from ..run import Run
from . import (
    analysis_routes,
    basis_routes,
    dataset_routes,
    export_routes,
    routes,
    sample_routes,
    token_routes,
)
from .answers import HEAVY_THREADS, IMMUTABLE, Cache
from .apidocs import add_docs_page
from .auth import TokenAuth
from .compression import Compression
from .directions import Directions
from .errors import add_error_handlers, document_errors
from .guards import MAX_BODY_BYTES, BodyLimit, SecurityHeaders
from .prefix import RootPath, normalize_root_path
from .registry import Registry
from .static import NotBuiltPage, SpaFiles, ui_dir

MAX_HISTOGRAMS = 4096  # histograms kept per server (by run, layer, basis, component, bins)
MAX_HISTOGRAM_BYTES = 64 * 2**20  # ... and this much memory


def create_app(
    runs: Sequence[Run],
    *,
    static_dir: Path | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    directions_dir: str | os.PathLike[str] | None = None,
    max_body: int = MAX_BODY_BYTES,
    frame_ancestors: Sequence[str] = (),
    heavy_threads: int = HEAVY_THREADS,
    root_path: str = "",
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
        When given, requests whose Host header is not one of these are refused (400): with no
        token, a web page whose domain an attacker points at this machine (DNS rebinding) must
        not read the runs. :func:`.launch.serve` always gives it without a token.
    directions_dir : path, optional
        A folder where the recipes of directions made from sample ids are kept (bounded), so a
        restarted server still makes the directions its open pages probe. Default: memory only
        (directions between two labels never need it: their ids make them again).
    max_body : int, default=1 MiB
        Request bodies over this many bytes are refused with 413 before they are read.
    frame_ancestors : list of str, optional
        Origins besides the page itself and a notebook on this machine (``http://localhost:*``,
        ``http://127.0.0.1:*``) that may embed the page in a frame, e.g. a JupyterHub's
        ``https://hub.example.org`` (:mod:`.guards`).
    heavy_threads : int, default=2
        Analyses (CKA, associations, data-set shift) computed at once, in their own threads, so
        cheap answers keep flowing while one is computed (:func:`.answers.heavy`).
    root_path : str, optional
        The path prefix the browser reaches the app under behind a proxy (``/proxy/8031``), whether
        the proxy strips it or passes it on (:mod:`.prefix`). The UI works under any prefix without
        it; it places the docs' links, the token cookie and the redirect to ``prefix/``.

    Every answer carries ``X-Content-Type-Options: nosniff`` and a CSP ``frame-ancestors``;
    answers of 1 KiB or more are gzipped for clients that accept it (per-sample arrays at level 1,
    score matrices not at all: :mod:`.compression`). ``/docs`` lists the routes
    on a page that needs no internet (:mod:`.apidocs`).
    """
    runs = list(runs)
    root_path = normalize_root_path(root_path)
    wrong = [type(r).__name__ for r in runs if not isinstance(r, Run)]
    if wrong:
        raise TypeError(f"create_app takes Run objects (ee.open_run(path)); got {', '.join(wrong)}")
    if heavy_threads < 1:
        raise ValueError(f"heavy_threads={heavy_threads} must be >= 1")
    # /docs is our own offline page (Swagger UI would load from a CDN); no ReDoc either
    app = FastAPI(title="Embedding Explorer", version=__version__, docs_url=None, redoc_url=None)
    app.state.heavy_threads = heavy_threads
    # what the route handlers get as dependencies (:mod:`.params`)
    app.state.registry = Registry(runs)
    app.state.directions = Directions(folder=directions_dir)
    app.state.registry.on_reopen.append(lambda run_id: app.state.directions.made.clear())
    app.state.histograms = Cache(max_entries=MAX_HISTOGRAMS, max_bytes=MAX_HISTOGRAM_BYTES)
    app.state.cache_control = ("private, " if token is not None else "public, ") + IMMUTABLE
    for module in (
        routes,
        analysis_routes,
        basis_routes,
        dataset_routes,
        export_routes,
        sample_routes,
        token_routes,
    ):
        app.include_router(module.router)
    add_error_handlers(app)
    document_errors(app)
    add_docs_page(app)
    folder = ui_dir(static_dir)
    site = SpaFiles(folder) if folder is not None else NotBuiltPage()
    app.mount("/", site, name="ui")
    if token is not None:
        app.add_middleware(TokenAuth, token=token, is_public=site.is_asset)
    app.add_middleware(BodyLimit, max_body=max_body)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(Compression)  # the bundle, JSON, text and per-sample arrays, for gzip clients
    app.add_middleware(SecurityHeaders, extra_frame_ancestors=list(frame_ancestors))
    app.add_middleware(RootPath, root_path=root_path)  # outermost: every layer sees the prefix
    return app
