"""Period windows: which counter a call counts against, and when it resets.

All periods are UTC: a day starts at midnight UTC, a week on Monday, a month on
its first day; ``total`` never resets; ``minute`` (the rate limits) is a fixed
window of sixty seconds. A window's key is stored in ``budget_counters.window``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["PERIODS", "RATE_PERIOD", "window_of"]

PERIODS = ("day", "week", "month", "total")  # cost budgets
RATE_PERIOD = "minute"  # requests and tokens per minute


def window_of(period: str, now: datetime) -> tuple[str, datetime | None]:
    """(the window's key, when it ends: ``None`` for ``total``)."""
    if period == "minute":
        minute = int(now.timestamp()) // 60
        return f"m{minute}", datetime.fromtimestamp((minute + 1) * 60, UTC)
    day = now.astimezone(UTC).date()
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    if period == "day":
        return day.isoformat(), midnight + timedelta(days=1)
    if period == "week":
        monday = midnight - timedelta(days=day.weekday())
        return "w" + monday.date().isoformat(), monday + timedelta(days=7)
    if period == "month":
        start = midnight.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start.strftime("%Y-%m"), end
    return "total", None
