"""How errors become HTTP answers: every detail is one message that names what is valid.

- :class:`NotFoundError`: what a request names does not exist (a run, a layer, a column, a
  sample id, a component, a direction): 404.
- the library's errors about a request's values (``EmbeddingExplorerError``): 422, except a
  layer the run lacks (``LayerNotFoundError``): 404.
- a run replaced on disk while a request read it (``RunReplacedError``): 503, ask again (the
  next request finds the new run).
- a served run that cannot be read (a file of it missing or damaged, ``OSError``; or the
  library's ``IncompleteRunError`` or ``DamagedRunError``): 409, naming the file and saying how
  to rebuild the run. It is no bug of the server and no fault of the request: the run changed
  under it.
- a request that does not parse (FastAPI's validation): 422 naming the parameter; the input it
  quotes is cut to ``MAX_ECHO`` characters (a 100 MB body is never echoed back).

Every error answer reads ``{"detail": "<one message>"}``; a validation error adds ``errors``
(where, what, which kind: never the input). The OpenAPI schema documents exactly that
(:class:`ErrorAnswer`, see :func:`document_errors`).

Nothing else is caught: an ``IndexError`` or ``KeyError`` from a bug is a 500, not a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..exceptions import (
    DamagedRunError,
    EmbeddingExplorerError,
    IncompleteRunError,
    LayerNotFoundError,
    RunReplacedError,
)

MAX_ECHO = 200  # characters of a request's input quoted back in a 422


class ErrorItem(BaseModel):
    """One thing wrong with a request, as FastAPI's validation finds it."""

    loc: list[str | int] = Field(description="where: ['query', 'n'], ['body', 'group_a', 3]")
    msg: str
    type: str


class ErrorAnswer(BaseModel):
    """What every error answer (404, 413, 422...) reads."""

    detail: str = Field(description="one message naming the parameter and what is valid")
    errors: list[ErrorItem] | None = Field(None, description="a validation error's parts (422 only)")


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
        if isinstance(exc, (IncompleteRunError, DamagedRunError)):
            return JSONResponse({"detail": unreadable_run(exc)}, 409)
        status = 404 if isinstance(exc, LayerNotFoundError) else 422
        return JSONResponse({"detail": str(exc)}, status)

    async def run_unreadable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": unreadable_run(exc)}, 409)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        return JSONResponse({"detail": validation_message(errors), "errors": jsonable(errors)}, 422)

    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(EmbeddingExplorerError, library_error)
    app.add_exception_handler(OSError, run_unreadable)
    app.add_exception_handler(RequestValidationError, invalid_request)


def unreadable_run(exc: Exception) -> str:
    """``"a served run cannot be read: ... (file ...)"`` and what to do."""
    if isinstance(exc, OSError) and exc.filename is not None:
        what = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    else:
        what = str(exc) or type(exc).__name__
    return (
        f"a served run cannot be read ({what}); it was damaged or replaced while served: "
        "rebuild it with explore(...)"
    )


def validation_message(errors: Sequence[object]) -> str:
    """``"query parameter 'n': Input should be less than or equal to 200 (got '500')"``."""
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        loc = [str(p) for p in error.get("loc", ())]
        where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else ".".join(loc)
        got = f" (got {shortened(error['input'])})" if error.get("input") is not None else ""
        parts.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return "; ".join(parts) or "invalid request"


def shortened(value: object) -> str:
    """``repr(value)``, cut to ``MAX_ECHO`` characters."""
    text = repr(value) if not isinstance(value, str | bytes) else repr(value[: MAX_ECHO + 1])
    if len(text) <= MAX_ECHO:
        return text
    return text[:MAX_ECHO] + f"... ({len(value) if isinstance(value, str | bytes) else 'long'} in all)"


def jsonable(errors: Sequence[object]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    for error in errors:
        if isinstance(error, dict):
            loc = [p if isinstance(p, int) else str(p)[:MAX_ECHO] for p in error.get("loc", ())]
            items.append(
                {"loc": loc, "msg": str(error.get("msg", ""))[:MAX_ECHO], "type": str(error.get("type", ""))}
            )
    return items


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the error answers as they are sent (:class:`ErrorAnswer`)
    rather than FastAPI's default 422 (a list of errors, with their input)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_error_answers(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_error_answers(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    answer = ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(answer.pop("$defs", {}))
    schemas["ErrorAnswer"] = answer
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" not in responses:
                continue  # takes no parameters, reads no run
            for status, description in ERROR_ANSWERS.items():
                if status != "413" or "requestBody" in operation:
                    responses[status] = {"description": description, "content": content}
            responses["503"]["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
    return spec


ERROR_ANSWERS = {
    "404": "Not found: a run, layer, column, sample, component or direction the request names",
    "409": "A served run cannot be read (damaged, or removed while served): the file and how to rebuild it",
    "413": "The request's body is larger than the server takes (1 MiB)",
    "422": "Invalid request",
    "503": "The run was replaced on disk while the request read it: ask again",
}
