#!/usr/bin/env python3
"""Write the server's OpenAPI document without starting a server.

    .venv/bin/python scripts/dump-openapi.py [OUT]    (default: web/src/lib/api/openapi.json)

The web app's API types are generated from this file (``npm run gen:api`` in
``web/``, or ``make api-types``); ``make api-types-check`` fails when the
committed copy no longer matches the server. The app is built with a throwaway
data directory and no configuration file, and ``PARLEY_*`` variables are
ignored, so the document depends on the code alone. Its lifespan never runs:
nothing is migrated, loaded or listened on. Keys are sorted so the output is
stable.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "web" / "src" / "lib" / "api" / "openapi.json"


def dump() -> str:
    for name in [n for n in os.environ if n.startswith("PARLEY_")]:
        del os.environ[name]
    from parley.api.app import create_app
    from parley.config import load_settings

    with tempfile.TemporaryDirectory(prefix="parley-openapi-") as tmp:
        data = Path(tmp)
        settings = load_settings(data_dir=data, config_file=data / "absent.toml")
        document = create_app(settings).openapi()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
