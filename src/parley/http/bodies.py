"""The base of every request body, and the one timestamp format responses use.

Every router (core or feature) validates its input with a ``Body`` subclass:
unknown fields are refused and strings are bounded, so a client's typo is a
clear 422 instead of a silently ignored field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict

from parley.jsonshape import PREFERENCES, bounded


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


# Free-form JSON a client asks us to store: its shape is bounded on the way in
# (``parley.jsonshape`` says why), so a stored value can always be served back.
Preferences = Annotated[dict[str, Any], bounded(PREFERENCES, "Preferences")]


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``; SQLite returns naive UTC datetimes."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.isoformat() + "Z"
    return moment.isoformat().replace("+00:00", "Z")
