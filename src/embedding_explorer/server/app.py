"""``create_app``: the explorer's web application, API routes first and the UI mounted last."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .._version import __version__
from ..exceptions import EmbeddingExplorerError, LayerNotFoundError
from ..run import Run
from .analysis_routes import analysis_router
from .auth import TokenAuth
from .bases import DirectionStore
from .basis_routes import basis_router
from .dataset_routes import dataset_router
from .export_routes import export_router
from .registry import Registry
from .routes import api_router
from .static import NotBuiltPage, SpaFiles, ui_dir


def create_app(
    runs: Sequence[Run],
    *,
    static_dir: Path | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
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
        When given, every API request and the page need it (see :mod:`.auth`).
    allowed_hosts : list of str, optional
        When given, requests whose Host header is not one of these are refused (400).
    """
    runs = list(runs)
    wrong = [type(r).__name__ for r in runs if not isinstance(r, Run)]
    if wrong:
        raise TypeError(f"create_app takes Run objects (ee.open_run(path)); got {', '.join(wrong)}")
    registry = Registry(runs)
    app = FastAPI(title="Embedding Explorer", version=__version__)
    app.state.registry = registry
    directions = DirectionStore()
    app.state.directions = directions
    app.include_router(api_router(registry, directions, private=token is not None))
    app.include_router(analysis_router(registry))
    app.include_router(basis_router(registry, directions))
    app.include_router(dataset_router(registry))
    app.include_router(export_router(registry, directions))
    add_error_handlers(app)
    folder = ui_dir(static_dir)
    site = SpaFiles(folder) if folder is not None else NotBuiltPage()
    app.mount("/", site, name="ui")
    if token is not None:
        app.add_middleware(TokenAuth, token=token, is_public=site.is_asset)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app


def add_error_handlers(app: FastAPI) -> None:
    """The library's errors about a request's values become 4xx; every detail is one message."""

    async def library_error(request: Request, exc: Exception) -> JSONResponse:
        status = 404 if isinstance(exc, (LayerNotFoundError, IndexError)) else 422
        return JSONResponse({"detail": str(exc)}, status)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        return JSONResponse({"detail": validation_message(errors), "errors": jsonable(errors)}, 422)

    app.add_exception_handler(EmbeddingExplorerError, library_error)
    app.add_exception_handler(IndexError, library_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


def validation_message(errors: Sequence[object]) -> str:
    """``"query parameter 'n': Input should be less than or equal to 200 (got '500')"``."""
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        loc = [str(p) for p in error.get("loc", ())]
        where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else ".".join(loc)
        got = f" (got {error['input']!r})" if error.get("input") is not None else ""
        parts.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return "; ".join(parts) or "invalid request"


def jsonable(errors: Sequence[object]) -> list[dict[str, object]]:
    keep = ("loc", "msg", "type")
    return [{k: error[k] for k in keep if k in error} for error in errors if isinstance(error, dict)]
