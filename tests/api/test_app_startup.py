"""What a server process does once at start."""

from __future__ import annotations

import gc
from typing import Any

from parley.api.app import create_app
from parley.net.safe_fetch import GuardedTransport
from parley.net.urls import AddressPolicy


async def test_a_server_process_freezes_its_start_up_objects(settings: Any) -> None:
    """Full collections then skip modules, routes and models (no ~100 ms pauses)."""
    gc.unfreeze()
    app = create_app(settings, freeze_gc=True)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # tests build many apps: let this one be collected
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0


def test_guarded_transports_share_one_tls_context() -> None:
    first, second = GuardedTransport(AddressPolicy()), GuardedTransport(AddressPolicy())
    assert first._pool._ssl_context is second._pool._ssl_context
