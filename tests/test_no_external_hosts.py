"""The suite-wide guard (``tests/conftest.py``): no test in any package reaches a
host other than loopback, while servers on 127.0.0.1 stay reachable."""

from __future__ import annotations

import socket

import httpx2
import pytest

from parley.providers.testing import ScriptedUpstream

TEST_NET = "203.0.113.7"  # TEST-NET-3: never a real host


async def test_a_model_sdk_transport_cannot_reach_a_real_host() -> None:
    async with httpx2.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx2.ConnectError, match="blocked in tests"):
            await client.get(f"http://{TEST_NET}/v1/models")
        with pytest.raises(httpx2.ConnectError, match="blocked in tests"):
            await client.get("https://api.openai.com/v1/models")


def test_a_plain_socket_cannot_either() -> None:
    with pytest.raises(httpx2.ConnectError, match="blocked in tests"):
        socket.create_connection((TEST_NET, 80), timeout=5)


async def test_a_local_scripted_upstream_is_reachable() -> None:
    with ScriptedUpstream(models=["m"]) as upstream:
        async with httpx2.AsyncClient(timeout=5) as client:
            response = await client.get(f"{upstream.base_url}/models")
    assert response.status_code == 200
