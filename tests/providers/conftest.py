"""Fixtures for provider tests: a scripted upstream server and a tiny GGUF (the
guard that fails any connection to a non-loopback host is suite-wide, in
``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.config import ModelConfig, ProviderConfig
from parley.providers.testing import ScriptedUpstream, write_tiny_gguf


@pytest.fixture(scope="session")
def _upstream_server() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(models=["scripted-model", "other-model"]) as server:
        yield server


@pytest.fixture
def upstream(_upstream_server: ScriptedUpstream) -> ScriptedUpstream:
    """The shared scripted server, with an empty script and request log."""
    _upstream_server.reset()
    return _upstream_server


@pytest.fixture
def openai_config(upstream: ScriptedUpstream) -> ProviderConfig:
    return ProviderConfig(
        name="up",
        base_url=upstream.base_url,
        api_key="sk-test-secret",
        models=[ModelConfig(name="scripted-model", context_window=32000, input_price=1.0)],
        timeout_s=5,
    )


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "Tiny-Random-Test.Q8_0.gguf")


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on (connection refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
