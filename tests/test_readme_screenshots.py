"""The README's screenshots are ones the browser suite takes, so they can be retaken.

Every image the README shows lives in ``docs/screenshots/`` under the name an
end-to-end test gives ``shot(page, name)``; ``make screenshots`` runs those
tests and copies the pictures over. A screenshot nobody can regenerate, or a
broken image link, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHOTS = ROOT / "docs" / "screenshots"
E2E = ROOT / "tests" / "e2e"


def _readme_images() -> list[str]:
    return re.findall(r"\]\((docs/screenshots/[^)\s]+)\)", README.read_text(encoding="utf-8"))


def _shot_names() -> set[str]:
    names: set[str] = set()
    for path in E2E.glob("test_*.py"):
        names.update(re.findall(r"shot\(\s*\w+,\s*\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    return names


def test_readme_shows_screenshots_that_exist() -> None:
    images = _readme_images()
    assert len(images) >= 4, "the README illustrates its main screens"
    missing = [i for i in images if not (ROOT / i).is_file()]
    assert not missing, f"README links images that are not in the repository: {missing}"


def test_every_readme_screenshot_is_taken_by_the_browser_suite() -> None:
    names = _shot_names()
    orphans = [i for i in _readme_images() if Path(i).stem not in names]
    assert not orphans, f"no e2e test takes these screenshots (make screenshots): {orphans}"


def test_no_unused_screenshots_are_committed() -> None:
    used = {Path(i).name for i in _readme_images()}
    unused = sorted(p.name for p in SHOTS.glob("*.png") if p.name not in used)
    assert not unused, f"docs/screenshots holds pictures the README does not show: {unused}"
