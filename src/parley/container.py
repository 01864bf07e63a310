"""A typed box of shared services, filled once at start-up by the composition root.

Features and the core ``provide`` what they own (the memory service, the tool
confirmer, the conversation's files) and ``require`` what they use, without
importing each other: the sandbox asks for ``CONVERSATION_FILES`` and gets the
knowledge feature's answer, or nothing when that feature is off. HTTP handlers
reach the same objects through typed dependencies (``parley.http.deps``).

A key is either a concrete class (``Services.require(MemoryService)``) or a
``Key[T]`` naming a protocol or a callable, which a class cannot stand for in a
type checker. Lookups happen when a service is used, not when it is wired, so
the order in which features start does not matter.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

__all__ = ["Key", "MissingService", "Services"]


class Key(Generic[T]):
    """The name of a service whose type is a protocol or a callable."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


class MissingService(LookupError):
    """A required service was not provided: a feature it belongs to is not enabled."""


class Services:
    def __init__(self) -> None:
        self._items: dict[object, Any] = {}

    def provide(self, key: type[T] | Key[T], value: T) -> None:
        if key in self._items:
            raise ValueError(f"{_name(key)} is already provided")
        self._items[key] = value

    def withdraw(self, key: type[T] | Key[T]) -> None:
        """Forget a service (its feature stopped)."""
        self._items.pop(key, None)

    def get(self, key: type[T] | Key[T]) -> T | None:
        return cast("T | None", self._items.get(key))

    def require(self, key: type[T] | Key[T]) -> T:
        try:
            return cast("T", self._items[key])
        except KeyError:
            raise MissingService(
                f"{_name(key)} is not available (is its feature enabled?)"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self._items


def _name(key: object) -> str:
    return key.name if isinstance(key, Key) else getattr(key, "__name__", repr(key))
