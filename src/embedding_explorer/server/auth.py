"""The token rule: when a server has a token, every API request and the page must carry it.

A request carries the token as ``?token=``, as ``Authorization: Bearer <token>``, or in the
``ee_token`` cookie. Opening the page with a valid ``?token=`` sets that cookie (HttpOnly,
SameSite=Strict, its path the app's prefix), so the page's own later requests carry it, as
Jupyter does. Static assets
(scripts, styles, icons) are public: they hold no data.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .prefix import public_prefix, route_path

COOKIE = "ee_token"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{8,}")


def check_token(token: str) -> str:
    """A token usable in URLs and cookies: 8 or more of ``A-Z a-z 0-9 . _ ~ -``."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise ValueError(
            "token must be 8 or more URL-safe characters (A-Z, a-z, 0-9, '.', '_', '~', '-'); "
            "use token='auto' for a generated one"
        )
    return token


def presented_tokens(conn: HTTPConnection) -> dict[str, str]:
    """The tokens a request carries, by where: ``query``, ``header``, ``cookie``."""
    found = {}
    if "token" in conn.query_params:
        found["query"] = conn.query_params["token"]
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        found["header"] = credentials.strip()
    if COOKIE in conn.cookies:
        found["cookie"] = conn.cookies[COOKIE]
    return found


def matches(presented: str, token: str) -> bool:
    return secrets.compare_digest(presented.encode(), token.encode())


class TokenAuth:
    """ASGI middleware: 401 for any request without the token, except ``is_public`` paths."""

    def __init__(self, app: ASGIApp, token: str, *, is_public: Callable[[str], bool]) -> None:
        self.app = app
        self.token = check_token(token)
        self.is_public = is_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.is_public(route_path(scope)):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        presented = presented_tokens(conn)
        valid = {where for where, value in presented.items() if matches(value, self.token)}
        if not valid:
            detail = (
                "this server needs its token: open the URL printed when it started "
                "(http://HOST:PORT/?token=...) or send 'Authorization: Bearer <token>'"
            )
            if presented:
                detail = "wrong token; " + detail
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "token required"})
                return
            response = JSONResponse({"detail": detail}, 401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        if "query" in valid and not route_path(scope).startswith("/api") and scope["type"] == "http":
            send = self._setting_cookie(send, public_prefix(scope))
        await self.app(scope, receive, send)

    def _setting_cookie(self, send: Send, path: str) -> Send:
        cookie = f"{COOKIE}={self.token}; Path={path}; HttpOnly; SameSite=Strict"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return send_with_cookie
