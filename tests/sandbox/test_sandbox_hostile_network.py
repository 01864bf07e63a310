"""Hostile programs that try to reach the network or the host's sockets.

PostgreSQL (5432) and Redis (6379) listen on the host's 127.0.0.1 in CI, and
the tests add a host unix socket and an abstract socket of their own: every
attempt from the sandbox must fail, and the host listeners must see nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Runner
from parley.sandbox import SandboxManager

# The slow tier (not in `make test-fast`): a sandboxed kernel per probe.
pytestmark = pytest.mark.slow


def _attempt(body: str) -> str:
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return (
        f"import socket\ntry:\n{indented}\nexcept Exception as exc:\n"
        "    print('BLOCKED', type(exc).__name__, exc)\nelse:\n    print('LEAK')\n"
    )


async def _blocked(run: Runner, body: str) -> str:
    out = await run(_attempt(body))
    assert "BLOCKED" in out.text, out.text
    assert "LEAK" not in out.text
    return out.text


@pytest.mark.parametrize("port", [5432, 6379, 8080, 22])
async def test_tcp_to_host_loopback_services(run: Runner, port: int) -> None:
    text = await _blocked(run, f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert "Network is unreachable" in text or "Connection refused" in text


async def test_tcp_to_the_internet(run: Runner) -> None:
    await _blocked(run, "socket.create_connection(('1.1.1.1', 443), timeout=2)")


async def test_udp_datagram_out(run: Runner) -> None:
    await _blocked(
        run,
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'x' * 64, ('8.8.8.8', 53))",
    )


async def test_dns_lookup(run: Runner) -> None:
    text = await _blocked(run, "socket.getaddrinfo('example.com', 80)")
    assert "gaierror" in text


async def test_no_network_interfaces_up(run: Runner) -> None:
    out = await run(
        "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n"
        "print(open('/proc/net/route').read().count('\\n'))"
    )
    assert "['lo']" in out.text, out.text
    assert "eth" not in out.text


async def test_raw_socket(run: Runner) -> None:
    await _blocked(run, "socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)")


async def test_ipv6_loopback(run: Runner) -> None:
    await _blocked(run, "socket.create_connection(('::1', 5432), timeout=2)")


@pytest.fixture
def host_unix_listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    server.setblocking(False)
    try:
        yield path, server
    finally:
        server.close()


def _accepted(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


async def test_host_unix_sockets(
    run: Runner, host_unix_listener: tuple[str, socket.socket]
) -> None:
    path, server = host_unix_listener
    for target in (path, "/run/postgresql/.s.PGSQL.5432", "/var/run/docker.sock"):
        text = await _blocked(run, f"s = socket.socket(socket.AF_UNIX)\ns.connect({target!r})")
        assert "FileNotFoundError" in text
    assert _accepted(server) == 0


async def test_abstract_unix_socket_of_the_host(run: Runner) -> None:
    name = "\0parley-sandbox-test"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen(4)
    server.setblocking(False)
    try:
        text = await _blocked(run, f"s = socket.socket(socket.AF_UNIX)\ns.connect({name!r})")
        assert "ConnectionRefusedError" in text
        assert _accepted(server) == 0
    finally:
        server.close()


async def test_kernel_socket_swapped_for_a_host_socket(
    manager: SandboxManager, host_unix_listener: tuple[str, socket.socket]
) -> None:
    """Replacing the kernel's ipc socket by a symlink never makes the server connect there."""
    path, server = host_unix_listener
    run = Runner(manager)
    out = await run(
        "import os, glob\n"
        "for s in sorted(glob.glob('/tmp/.kernel/s-*')):\n"
        f"    os.unlink(s); os.symlink({path!r}, s)\n"
        "print('swapped', len(glob.glob('/tmp/.kernel/s-*')))"
    )
    assert "swapped" in out.text
    again = await run("print(6 * 7)")
    assert "42" in again.text
    assert _accepted(server) == 0
