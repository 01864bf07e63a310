"""Outbound HTTP to untrusted URLs, safely: strict URL parsing, an address
policy checked after DNS on every hop, and a fetcher that connects only to
checked addresses (see ``parley.net.safe_fetch``)."""

from parley.net.safe_fetch import (
    FetchResult,
    GuardedBackend,
    GuardedTransport,
    Resolver,
    SafeFetcher,
    read_limited,
    system_resolver,
)
from parley.net.urls import (
    AddressPolicy,
    FetchBlocked,
    FetchError,
    ParsedUrl,
    blocked_reason,
    parse_url,
)

__all__ = [
    "AddressPolicy",
    "FetchBlocked",
    "FetchError",
    "FetchResult",
    "GuardedBackend",
    "GuardedTransport",
    "ParsedUrl",
    "Resolver",
    "SafeFetcher",
    "blocked_reason",
    "parse_url",
    "read_limited",
    "system_resolver",
]
