"""How errors become HTTP answers: every detail is one message that names what is valid.

- :class:`NotFoundError`: what a request names does not exist (a run, a layer, a column, a
  sample id, a component, a direction): 404.
- the library's errors about a request's values (``EmbeddingExplorerError``): 422, except a
  layer the run lacks (``LayerNotFoundError``): 404.
- a run replaced on disk while a request read it (``RunReplacedError``): 503, ask again (the
  next request finds the new run).
- a request that does not parse (FastAPI's validation): 422 naming the parameter.

Nothing else is caught: an ``IndexError`` or ``KeyError`` from a bug is a 500, not a 404.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..exceptions import EmbeddingExplorerError, LayerNotFoundError, RunReplacedError


class NotFoundError(LookupError):
    """Something a request names does not exist; the message says what does (answered 404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def add_error_handlers(app: FastAPI) -> None:
    """Not found -> 404; the library's errors about a request's values -> 422; invalid -> 422."""

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 404)

    async def library_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, RunReplacedError):
            return JSONResponse({"detail": f"{exc}; ask again"}, 503, headers={"Retry-After": "1"})
        status = 404 if isinstance(exc, LayerNotFoundError) else 422
        return JSONResponse({"detail": str(exc)}, status)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        return JSONResponse({"detail": validation_message(errors), "errors": jsonable(errors)}, 422)

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(EmbeddingExplorerError, library_error)
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
