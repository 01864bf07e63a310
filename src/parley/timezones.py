"""Time zone names, checked in one place.

A user's zone is an IANA name stored on their row; it reaches the system
prompt's clock (engine), the tools' ``ToolContext``, the account routes and the
import of an export. Every one of them asks the same two questions, answered
here so they cannot drift: is this a zone at all (``find_zone``), and which zone
to use for a stored name that may have become invalid (``zone_or_utc``: UTC,
named so, rather than a failed turn).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["UTC_NAME", "find_zone", "zone_or_utc"]

UTC_NAME = "UTC"


def find_zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when there is no such zone.

    Malformed names (absolute paths, ``..``, empty) and folders of the zone
    database (``Europe``) are None too, never an error.
    """
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        return None


def zone_or_utc(name: str | None) -> tuple[ZoneInfo, str]:
    """The zone called ``name`` and its name; UTC (and ``"UTC"``) when it is not one."""
    zone = find_zone(name)
    if zone is None or name is None:
        return ZoneInfo(UTC_NAME), UTC_NAME
    return zone, name
