"""The web UI: the built single-page app, or a page that says how to build it.

The React app is built separately (``make ui``) into the package's ``static/`` folder. Paths
that are not files get ``index.html``, so the app's own routes load on reload; paths under
``/api`` that no route matched get a JSON 404 instead.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from .prefix import route_path

PACKAGE_STATIC = Path(__file__).resolve().parent.parent / "static"
INDEX = "index.html"
# a missing file with one of these suffixes is a 404; any other path is a route of the app
FILE_SUFFIXES = frozenset(
    {".js", ".mjs", ".css", ".map", ".html", ".json", ".webmanifest", ".txt", ".wasm"}
    | {".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp", ".woff", ".woff2", ".ttf", ".otf"}
)

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Embedding Explorer</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>Embedding Explorer</h1>
<p>The web UI is not built. Build it from a source checkout with <code>make ui</code>
(needs Node.js and npm; it writes the app into <code>src/embedding_explorer/static/</code>),
then restart the server.</p>
<p>The API is up meanwhile: <a href="api/runs">api/runs</a> lists the served runs, and
<a href="docs">docs</a> describes every route.</p>
</body>
</html>
"""


def ui_dir(static_dir: Path | None) -> Path | None:
    """The folder of the built UI (``static_dir`` or the package's), or None when not built."""
    folder = Path(static_dir) if static_dir is not None else PACKAGE_STATIC
    return folder if (folder / INDEX).is_file() else None


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def api_not_found(scope: Scope) -> JSONResponse:
    """The answer for a request no route took: 404 for an API path, 405 for any method but GET."""
    if scope["method"] not in ("GET", "HEAD"):
        return JSONResponse(
            {"detail": "this server is read-only: use GET"}, 405, headers={"Allow": "GET, HEAD"}
        )
    return JSONResponse({"detail": f"no API route {route_path(scope)}; /docs lists them"}, 404)


class SpaFiles(StaticFiles):
    """The built app: files as they are, ``index.html`` for any other path but the API's."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True)
        self.root = Path(directory).resolve()

    def is_asset(self, path: str) -> bool:
        """Whether ``path`` (a URL path) is a file of the app other than its page."""
        relative = path.lstrip("/")
        if not relative or is_api(path):
            return False
        try:
            full = (self.root / relative).resolve()
        except (OSError, ValueError):
            return False
        return full.is_relative_to(self.root) and full.is_file() and full.name != INDEX

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_api(route_path(scope)):
            await api_not_found(scope)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as e:
            if e.status_code != 404 or Path(path).suffix.lower() in FILE_SUFFIXES:
                raise
            return await super().get_response(INDEX, scope)


class NotBuiltPage:
    """What ``/`` serves when the UI is not built: how to build it."""

    def is_asset(self, path: str) -> bool:
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        if is_api(route_path(scope)) or scope["method"] not in ("GET", "HEAD"):
            response: Response = api_not_found(scope)
        else:
            response = HTMLResponse(NOT_BUILT_PAGE)
        await response(scope, receive, send)
