"""``Compression``: the one place that decides whether and how an answer is gzipped, from the
request's ``Accept-Encoding`` and the answer's kind.

- The bundle, JSON and text: zlib's default level 6, not Starlette's 9 (a million-sample label
  column as JSON took 2.8 s at 9, 0.14 s at 6, for 0.65 MB instead of 0.61 MB).
- Per-sample arrays (``application/octet-stream`` with a one-number ``X-Shape``: ids, category
  codes, a column's values): level 1 (a million int32 label codes: 19 ms to 0.83 MB instead of
  141 ms to 0.65 MB at level 6).
- Score matrices (``X-Shape: N,K``, float32 or 16-bit codes) as they are: they shrink by 3-7%,
  and compressing them takes longer than sending them.
- Answers under 1 KiB, and the types Starlette leaves alone (images...), as they are.

Starlette's :class:`~starlette.middleware.gzip.GZipMiddleware` does the work (large bodies are
compressed in a worker thread, not in the event loop); this only chooses its level per answer.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware, GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

GZIP_MIN_BYTES = 1024  # smaller answers are sent as they are
GZIP_LEVEL = 6  # the bundle, JSON and text answers
BINARY_GZIP_LEVEL = 1  # per-sample arrays
BINARY_MEDIA_TYPE = "application/octet-stream"


def binary_level(headers: Headers) -> int | None:
    """The gzip level for an ``application/octet-stream`` answer: :data:`BINARY_GZIP_LEVEL` for a
    per-sample array, None (as it is) for a score matrix (``X-Shape`` of two numbers)."""
    return None if "," in headers.get("x-shape", "") else BINARY_GZIP_LEVEL


class Compression(GZipMiddleware):
    """Gzip for clients that accept it, at the level the answer's kind calls for (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "gzip" in Headers(scope=scope).get("accept-encoding", "").lower():
            await _KindResponder(self.app, self.minimum_size, self.compresslevel)(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class _KindResponder(GZipResponder):
    """Starlette's gzip responder, its level (or exclusion) set from the answer's headers."""

    async def send_with_compression(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = Headers(raw=message.get("headers", []))
            if headers.get("content-type", "").partition(";")[0].strip().lower() == BINARY_MEDIA_TYPE:
                level = binary_level(headers)
                if level is None:
                    self.exclude_content_types = (*DEFAULT_EXCLUDED_CONTENT_TYPES, BINARY_MEDIA_TYPE)
                else:
                    self.compresslevel = level
        await super().send_with_compression(message)
