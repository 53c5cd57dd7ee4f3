"""What every answer carries and every request is held to, before any route runs.

- :class:`SecurityHeaders`: ``X-Content-Type-Options: nosniff`` on every answer, and a
  ``Content-Security-Policy: frame-ancestors`` that lets the page be embedded only by itself, by
  a notebook on this machine (``http(s)://localhost:*``, ``http(s)://127.0.0.1:*``: ``run.show()``
  shows the page in a Jupyter IFrame whose origin is the notebook server's, another port; and
  VS Code's notebook webviews) and by
  the origins given (``frame_ancestors=``, e.g. a JupyterHub's ``https://hub.example.org``).
  ``X-Frame-Options`` is not sent: it knows no list of origins (``SAMEORIGIN`` would break the
  notebook's IFrame), and browsers that know ``frame-ancestors`` ignore it.
- :class:`BodyLimit`: a request body over ``max_body`` bytes is refused with 413 before it is
  read: at once when ``Content-Length`` says so, else (chunked bodies) as soon as the bytes
  received pass the limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 2**20  # 1 MiB: a direction's two groups of sample ids, with room to spare
LOCAL_FRAME_ANCESTORS = (
    "'self'",
    "http://localhost:*",
    "http://127.0.0.1:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "vscode-webview:",  # VS Code's notebooks show outputs (the IFrame) in a webview
)


def frame_ancestors(extra: Sequence[str] = ()) -> str:
    """The CSP ``frame-ancestors`` directive: the page itself, a local notebook, and ``extra``."""
    for origin in extra:
        if not origin or any(c in origin for c in " ;,'\"\n\r"):
            raise ValueError(f"frame_ancestors: {origin!r} is no origin; give e.g. 'https://hub.example.org'")
    return "frame-ancestors " + " ".join([*LOCAL_FRAME_ANCESTORS, *extra])


class SecurityHeaders:
    """ASGI middleware adding ``nosniff`` and the ``frame-ancestors`` policy to every answer."""

    def __init__(self, app: ASGIApp, *, extra_frame_ancestors: Sequence[str] = ()) -> None:
        self.app = app
        self.policy = frame_ancestors(extra_frame_ancestors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Content-Security-Policy"] = self.policy
            await send(message)

        await self.app(scope, receive, send_with_headers)


def too_large(limit: int) -> str:
    return (
        f"request body too large: at most {limit} bytes (a direction's groups list sample ids; "
        "for more, start the server with a larger max_body / --max-body)"
    )


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_body`` bytes, never reading it all."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES) -> None:
        if max_body < 0:
            raise ValueError(f"max_body={max_body} must be >= 0 bytes")
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the server refuses a malformed length itself
                if declared > limit:
                    await JSONResponse({"detail": too_large(limit)}, 413)(scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body: refused once it passes the limit
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, counting_receive, send)
