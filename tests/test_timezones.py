"""Time zone names are checked in one place (``parley.timezones``)."""

from __future__ import annotations

import pytest

from parley.timezones import find_zone, zone_or_utc


@pytest.mark.parametrize("name", ["Europe/Paris", "UTC", "America/New_York"])
def test_iana_names_are_zones(name: str) -> None:
    zone = find_zone(name)
    assert zone is not None and zone.key == name
    assert zone_or_utc(name) == (zone, name)


@pytest.mark.parametrize(
    "name", [None, "", "Mars/Olympus", "Europe", "Europe/", "/etc/passwd", "../x"]
)
def test_anything_else_is_none_and_falls_back_to_utc(name: str | None) -> None:
    assert find_zone(name) is None
    zone, label = zone_or_utc(name)
    assert zone.key == "UTC" and label == "UTC"
