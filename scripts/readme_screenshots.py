"""Retake the README's screenshots: run the browser tests that take them, copy them over.

``make screenshots`` calls this. The README names each picture
``docs/screenshots/<name>.png``; ``<name>`` is what an end-to-end test passes to
``shot(page, name)`` (tests/test_readme_screenshots.py keeps the two in step).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAKEN = ROOT / "test-output" / "screenshots"
SHOTS = ROOT / "docs" / "screenshots"


def main() -> int:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = sorted({Path(p).stem for p in re.findall(r"\]\((docs/screenshots/[^)\s]+)\)", readme)})
    files = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests" / "e2e").glob("test_*.py")
        if any(f'"{name}"' in path.read_text(encoding="utf-8") for name in names)
    )
    print(f"retaking {len(names)} screenshots from {len(files)} browser tests")
    result = subprocess.run(  # noqa: S603 (our own interpreter and test files)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        env={**os.environ, "PARLEY_TEST_BACKENDS": "sqlite"},
        check=False,
    )
    if result.returncode != 0:
        print("the browser tests failed: screenshots left as they were", file=sys.stderr)
        return result.returncode
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(TAKEN / f"{name}.png", SHOTS / f"{name}.png")
        print(f"  docs/screenshots/{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
