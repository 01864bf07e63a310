"""Stateless clients, one chat: recognising a history Parley already answered.

Clients such as the OpenAI Agents SDK send the whole history as ``input`` on every
call, with no ``previous_response_id``. Without care each call would start a new
chat (an agent's run of five model calls: five chats in the sidebar, each
repeating the last). Each stored response therefore keeps a fingerprint of the
whole exchange it ended (its chain's items, then its output); a stateless request
whose input *starts with* such an exchange continues that response, with only
the items after it as new input. Items are compared as ``parse_input`` reads them
(role and text, call ids, names, arguments, outputs), so ids, statuses and
annotations a client adds or drops do not matter.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from parley.errors import Invalid
from parley.responses.items import InputItem, parse_input

__all__ = ["fingerprint", "prefix_fingerprints"]


def _key(item: InputItem) -> list[str]:
    if item.kind == "message":
        return ["m", item.role, item.text]
    if item.kind == "function_call":
        return ["c", item.call_id, item.name, item.arguments]
    if item.kind == "function_call_output":
        return ["o", item.call_id, item.output]
    return ["a", item.call_id, str(item.approve)]


def prefix_fingerprints(items: list[InputItem]) -> list[str]:
    """``out[k]``: the fingerprint of ``items[:k + 1]`` (one pass, O(n))."""
    digest = hashlib.sha256()
    out = []
    for item in items:
        digest.update(json.dumps(_key(item)).encode())
        digest.update(b"\x00")
        out.append(digest.copy().hexdigest())
    return out


def fingerprint(items: list[InputItem], output: list[dict[str, Any]]) -> str | None:
    """The fingerprint of a chain's items followed by a response's output items."""
    try:
        answered = parse_input(output)
    except Invalid:  # nothing but items Parley skips (a hosted call, an approval request)
        answered = []
    whole = [*items, *answered]
    return prefix_fingerprints(whole)[-1] if whole else None
