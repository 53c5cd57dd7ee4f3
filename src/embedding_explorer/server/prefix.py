"""Serving under a path prefix: ``serve --root-path /some/prefix`` and behind a proxy.

The UI asks for everything relative to its page (``api/runs``, ``./assets/...``), so it works
under any prefix as it is. The server needs the prefix only for what it writes itself: the
OpenAPI docs' links, the token cookie's path, and the one redirect from ``/some/prefix`` to
``/some/prefix/`` (without the slash, the page's relative URLs would leave the prefix).

A proxy either strips the prefix (nginx ``proxy_pass http://127.0.0.1:8031/;``,
jupyter-server-proxy's ``/proxy/PORT/``) or passes the path whole; :class:`RootPath` answers
both: it sets the ASGI ``root_path`` and leaves the path, and :func:`route_path` takes the prefix
off a path that has it (as Starlette's own routing does).
"""

from __future__ import annotations

import re

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX_PATTERN = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")


def normalize_root_path(root_path: str) -> str:
    """``root_path`` as ``/a/b`` (a leading slash, none trailing; ``""`` for none), checked."""
    text = root_path.strip()
    if text in ("", "/"):
        return ""
    text = "/" + text.strip("/")
    if "//" in text or not PREFIX_PATTERN.fullmatch(text) or "/../" in text + "/" or "/./" in text + "/":
        raise ValueError(
            f"root_path={root_path!r} is no URL path prefix; give e.g. '/proxy/8031' or '/tools/explorer'"
        )
    return text


def route_path(scope: Scope) -> str:
    """The request's path inside the app: without the prefix where the proxy passed it on."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path


def public_prefix(scope: Scope) -> str:
    """Where the app lives in the browser's URLs: the prefix with a trailing slash (``/`` for none)."""
    return scope.get("root_path", "") + "/"


class RootPath:
    """ASGI middleware: every request learns the prefix (``root_path``); the prefix itself without
    its trailing slash is redirected to it (so the page's relative URLs stay under the prefix)."""

    def __init__(self, app: ASGIApp, *, root_path: str) -> None:
        self.app = app
        self.root_path = normalize_root_path(root_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.root_path:
            await self.app(scope, receive, send)
            return
        scope = {**scope, "root_path": self.root_path}
        if scope["type"] == "http" and scope["path"] == self.root_path:
            query = scope.get("query_string", b"").decode("latin-1")
            target = self.root_path + "/" + (f"?{query}" if query else "")
            await RedirectResponse(target, status_code=307)(scope, receive, send)
            return
        await self.app(scope, receive, send)
