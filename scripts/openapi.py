"""Write the server's OpenAPI schema to ``frontend/src/api/openapi.json`` (the UI's API contract).

The TypeScript types of the UI (``frontend/src/api/schema.d.ts``) are generated from that file,
so after changing a route or a schema in ``server/`` regenerate both with one command::

    make api-types

which runs ``python scripts/openapi.py`` and then ``npm run api:types`` in ``frontend/``.
``python scripts/openapi.py --check`` only compares and exits 1 when the committed file is stale;
``tests/test_openapi_contract.py`` does the same in the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "frontend" / "src" / "api" / "openapi.json"


def render() -> str:
    """The app's OpenAPI schema as the committed text: 2-space JSON, keys in FastAPI's order."""
    from embedding_explorer.server.app import create_app

    spec = create_app([]).openapi()
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    parser.add_argument("--out", type=Path, default=TARGET, help=f"default: {TARGET}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `make api-types`", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
