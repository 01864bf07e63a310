"""README.md's settings table lists every setting, and only settings that exist.

A field added to ``parley.config.Settings`` without a row in the table (env
``PARLEY_<NAME>``, TOML key ``<name>``) fails here, as does a row left behind by
a setting that was renamed or removed.
"""

from __future__ import annotations

import re
from pathlib import Path

from parley.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| setting (env `PARLEY_"


def settings_table() -> list[str]:
    """The first cell of each row of the settings table (the one under "Configure")."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADER))
    cells = []
    for line in lines[start + 2 :]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        cells.append(line.split("|")[1])
    return cells


def env_name(field: str) -> str:
    """The setting's environment variable without the ``PARLEY_`` prefix."""
    alias = Settings.model_fields[field].validation_alias
    name = alias if isinstance(alias, str) else f"PARLEY_{field.upper()}"
    return name.removeprefix("PARLEY_")


def test_the_settings_table_is_found() -> None:
    assert len(settings_table()) >= 20


def test_every_setting_has_a_row_in_the_readme() -> None:
    cells = settings_table()
    missing = [
        f"PARLEY_{env_name(field)}"
        for field in Settings.model_fields
        if not any(f"`{env_name(field)}`" in cell or f"`{field}`" in cell for cell in cells)
    ]
    assert not missing, f"README.md's settings table (under 'Configure') lacks rows for {missing}"


def test_every_row_of_the_settings_table_is_a_setting() -> None:
    known = set(Settings.model_fields) | {env_name(field) for field in Settings.model_fields}
    stale = []
    for cell in settings_table():
        names = re.findall(r"`([A-Za-z0-9_]+)`", cell)
        if not names or names[0] not in known:
            stale.append(cell.strip())
    assert not stale, f"README.md's settings table has rows for no setting: {stale}"
