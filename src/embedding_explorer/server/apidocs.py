"""``/docs``: the API's routes as one self-contained HTML page, readable offline.

FastAPI's Swagger page loads its script and styles from a CDN, so it is blank without internet;
this page is written from the same OpenAPI schema (``/openapi.json``) with nothing to fetch.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

STYLE = """
body { font: 14px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
  color: #1d2330 }
h1 { font-size: 1.4rem } code, .path { font-family: ui-monospace, monospace }
.route { border-top: 1px solid #d8dce4; padding: .6rem 0 }
.method { font: 600 12px ui-monospace, monospace; background: #e8edff; color: #2a44b8;
  padding: 1px 6px; border-radius: 4px }
.path { font-weight: 600 } .doc { color: #4a5162; margin: .2rem 0 0; white-space: pre-line }
.params { color: #4a5162; font-size: 13px } .params code { color: #1d2330 }
@media (prefers-color-scheme: dark) {
  body { background: #12151b; color: #e3e6ec } .route { border-color: #2c323d }
  .method { background: #26305a; color: #b9c6ff } .doc, .params { color: #a9b0bd }
  .params code { color: #e3e6ec }
}
"""


def docs_page(schema: dict[str, Any]) -> str:
    """Every route of ``schema`` (an OpenAPI document): method, path, summary, parameters."""
    info = schema.get("info", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}: API</title>",
        f"<style>{STYLE}</style></head><body><h1>{title}: API routes</h1>",
        "<p>The machine-readable description is <a href='openapi.json'>openapi.json</a>.</p>",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            params = [
                f"<code>{escape(p['name'])}</code> ({escape(p.get('in', ''))}"
                f"{', required' if p.get('required') else ''})"
                for p in op.get("parameters", [])
            ]
            doc = op.get("description") or op.get("summary") or ""
            parts.append(
                f"<div class='route'><span class='method'>{escape(method.upper())}</span> "
                f"<span class='path'>{escape(path)}</span>"
                + (f"<p class='doc'>{escape(doc.strip())}</p>" if doc else "")
                + (f"<div class='params'>parameters: {', '.join(params)}</div>" if params else "")
                + "</div>"
            )
    parts.append("</body></html>")
    return "".join(parts)


def add_docs_page(app: FastAPI) -> None:
    """Serve :func:`docs_page` of ``app`` at ``/docs`` (create the app with ``docs_url=None``)."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))
