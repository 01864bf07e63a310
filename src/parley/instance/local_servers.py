"""Model servers running on this machine, for the first-run setup.

The setup offers what is already running beside Parley: Ollama (11434), LM
Studio (1234), a llama.cpp server (8080) or vLLM (8000). Each address of
``settings.local_servers`` (loopback only: ``parley.config.loopback_address``
refuses anything else, and nothing here takes an address from a request) is
asked, all at once and with a short timeout, for ``GET /api/tags`` (Ollama's
own list) and ``GET /v1/models`` (every OpenAI-compatible server). Parley's
own port is skipped. Nothing follows redirects or reads a proxy setting, and
an answer is read up to ``MAX_BYTES``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2 as httpx  # the HTTP client the openai SDK brings (httpx is a test tool here)

__all__ = ["LocalServerFound", "probe_local_servers"]

ServerKind = Literal["ollama", "lmstudio", "llamacpp", "vllm", "openai"]
TIMEOUT_S = 1.0
MAX_BYTES = 1_000_000
MAX_MODELS = 200
LABELS: dict[str, str] = {
    "ollama": "Ollama",
    "lmstudio": "LM Studio",
    "llamacpp": "llama.cpp server",
    "vllm": "vLLM",
    "openai": "OpenAI-compatible server",
}
_PORT_KINDS: dict[int, ServerKind] = {11434: "ollama", 1234: "lmstudio"}


@dataclass(slots=True)
class LocalServerFound:
    address: str
    kind: ServerKind
    base_url: str
    models: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def suggested_name(self, taken: Iterable[str]) -> str:
        used = set(taken)
        port = self.address.rpartition(":")[2]
        base = self.kind if self.kind != "openai" else f"local-{port}"
        if base not in used:
            return base
        return next(f"{base}-{n}" for n in range(2, 1000) if f"{base}-{n}" not in used)


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    """The JSON answer of a GET, or ``None`` for anything else (refused, slow,
    not 200, too large, not JSON)."""
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                return None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    return None
        return json.loads(bytes(body))
    except (httpx.HTTPError, ValueError, OSError):
        return None


def _names(items: Any, key: str) -> list[str]:
    if not isinstance(items, list):
        return []
    names = [str(item[key]) for item in items if isinstance(item, dict) and item.get(key)]
    return [n for n in names if len(n) <= 300][:MAX_MODELS]


def _kind_of(port: int, data: Any) -> ServerKind:
    owners = {
        str(item.get("owned_by", "")).lower() for item in (data or []) if isinstance(item, dict)
    }
    if "vllm" in owners:
        return "vllm"
    if "llamacpp" in owners or any(re.search(r"llama", o) for o in owners):
        return "llamacpp"
    if "organization_owner" in owners and port == 1234:
        return "lmstudio"
    return _PORT_KINDS.get(port, "openai")


async def _probe(client: httpx.AsyncClient, address: str) -> LocalServerFound | None:
    root = f"http://{address}"
    tags, models = await asyncio.gather(
        _get_json(client, f"{root}/api/tags"), _get_json(client, f"{root}/v1/models")
    )
    port = int(address.rpartition(":")[2])
    if isinstance(tags, dict) and isinstance(tags.get("models"), list):
        names = _names(tags["models"], "name") or _names(tags["models"], "model")
        return LocalServerFound(address, "ollama", f"{root}/v1", names)
    if isinstance(models, dict) and isinstance(models.get("data"), list):
        data = models["data"]
        return LocalServerFound(address, _kind_of(port, data), f"{root}/v1", _names(data, "id"))
    return None


async def probe_local_servers(
    addresses: Iterable[str], *, own_port: int | None = None, timeout_s: float = TIMEOUT_S
) -> list[LocalServerFound]:
    """The model servers answering at ``addresses`` (``host:port``, loopback,
    already checked by the settings), in the order given; Parley's own port
    (``own_port``) is skipped."""
    wanted = [a for a in dict.fromkeys(addresses) if int(a.rpartition(":")[2]) != own_port]
    if not wanted:
        return []
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 0.5))
    limits = httpx.Limits(max_connections=2 * len(wanted), max_keepalive_connections=0)
    async with httpx.AsyncClient(
        timeout=timeout, limits=limits, trust_env=False, follow_redirects=False
    ) as client:

        async def bounded(address: str) -> LocalServerFound | None:
            try:  # a server that trickles its answer is cut off too
                return await asyncio.wait_for(_probe(client, address), timeout_s * 2)
            except TimeoutError:
                return None

        found = await asyncio.gather(*(bounded(address) for address in wanted))
    return [server for server in found if server is not None]
