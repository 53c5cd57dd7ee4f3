"""Headless Debian Chromium for the browser benchmarks (never ``playwright install``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--enable-unsafe-swiftshader",  # WebGL in headless Chromium without a GPU
]


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, with the flags above; a clear exit when it is missing."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (install Debian's chromium)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
