"""The UI's API contract (``frontend/src/api/openapi.json``) matches the live app's schema.

When this fails, a route or schema changed: regenerate the contract and the TypeScript types
with ``make api-types`` (``python scripts/openapi.py`` then ``npm run api:types``) and commit both.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "openapi.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openapi_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_matches_the_app() -> None:
    script = load_script()
    committed = script.TARGET.read_text(encoding="utf-8")
    assert committed == script.render(), "frontend/src/api/openapi.json is stale: run `make api-types`"


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert script.main(["--check", "--out", str(stale)]) == 1
    assert "make api-types" in capsys.readouterr().err
    script.main(["--out", str(stale)])
    assert script.main(["--check", "--out", str(stale)]) == 0
