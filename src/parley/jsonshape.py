"""Bounds on the shape of free-form JSON that Parley stores or passes on.

A few values are free-form JSON by nature: a user's preferences, a model's tool
arguments, an imported message's steps. Storing one that is merely *large in
depth* is enough to break every later read of it: serializers and the browser
refuse values nested a few hundred levels deep, so a 2 KB value nested 300
levels could make the owner's profile and the admin's user list fail. So
every such value is checked on the way in, with the same walk, and refused
with a sentence that says which bound it crossed.

The walk is iterative (a value nested 100,000 levels deep cannot exhaust the
stack) and stops at the first bound crossed, so checking costs at most
``max_items`` steps whatever the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import AfterValidator

__all__ = ["PREFERENCES", "STORED", "Shape", "bounded", "shape_error"]


@dataclass(frozen=True, slots=True)
class Shape:
    """The bounds for one kind of value. ``max_depth`` counts containers: a flat
    object is depth 1. ``max_bytes`` is the size of the value as compact JSON."""

    max_depth: int
    max_items: int
    max_bytes: int
    max_key_chars: int = 200


# A user's preferences: a handful of flat settings (theme, memory on/off...).
PREFERENCES = Shape(max_depth=4, max_items=500, max_bytes=8_000, max_key_chars=100)
# Anything else stored from a client or a model (tool arguments, imported steps).
STORED = Shape(max_depth=32, max_items=100_000, max_bytes=4_000_000)

_SCALARS = (str, int, float, bool, type(None))


def shape_error(value: Any, shape: Shape) -> str | None:
    """Why ``value`` may not be stored (a sentence), or None when it fits ``shape``.

    Only JSON types are allowed: objects with string keys, arrays, strings,
    finite numbers, booleans and null.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    items = 0
    while stack:
        item, depth = stack.pop()
        items += 1
        if items > shape.max_items:
            return f"has more than {shape.max_items:,} values"
        if isinstance(item, dict):
            if depth + 1 > shape.max_depth:
                return f"is nested more than {shape.max_depth} levels deep"
            for key, child in item.items():
                if not isinstance(key, str):
                    return "has a key that is not a string"
                if len(key) > shape.max_key_chars:
                    return f"has a key longer than {shape.max_key_chars} characters"
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            if depth + 1 > shape.max_depth:
                return f"is nested more than {shape.max_depth} levels deep"
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return "holds a number JSON cannot represent"
        elif not isinstance(item, _SCALARS):
            return f"holds a {type(item).__name__}, which is not a JSON value"
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > shape.max_bytes:
        return f"is larger than {shape.max_bytes:,} bytes"
    return None


def bounded(shape: Shape, what: str) -> AfterValidator:
    """A pydantic validator refusing values that do not fit ``shape``:
    ``Annotated[dict[str, Any], bounded(PREFERENCES, "Preferences")]``."""

    def check(value: Any) -> Any:
        problem = shape_error(value, shape)
        if problem is not None:
            raise ValueError(f"{what} {problem}")
        return value

    return AfterValidator(check)
