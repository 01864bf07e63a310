"""A turn's description (``TurnInfo``) as a job's JSON payload and back.

After-turn work that runs as a durable job (``memory.summarize``,
``memory.extract``) carries the turn it is about in the job's row, so another
worker can do it after this one died: the ids, the preferences, the model the
turn used (its context window sizes a summary; the memory model falls back to
it).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from parley.providers.base import ModelInfo
from parley.turns.hooks import TurnInfo

__all__ = ["turn_info_from_json", "turn_info_json"]


def turn_info_json(info: TurnInfo, *, query: bool = False) -> dict[str, Any]:
    """A turn's description as a job's JSON payload (its question only with ``query``)."""
    data = {f.name: getattr(info, f.name) for f in fields(info) if f.name != "model"}
    if not query:
        data["query"] = ""
    data["model"] = {f.name: getattr(info.model, f.name) for f in fields(info.model)}
    if data["model"]["visible_to"] is not None:
        data["model"]["visible_to"] = list(data["model"]["visible_to"])
    return data


def turn_info_from_json(data: dict[str, Any]) -> TurnInfo:
    model = dict(data["model"])
    if model.get("visible_to") is not None:
        model["visible_to"] = tuple(model["visible_to"])
    known = {f.name for f in fields(TurnInfo)}
    values = {k: v for k, v in data.items() if k in known and k != "model"}
    return TurnInfo(model=ModelInfo(**model), **values)
