"""Strict URL parsing and the address policy for every server-side fetch.

Server-side request forgery hides in the gap between two parsers (ours and
the HTTP client's) and between two name resolutions (the one we check and the
one we connect to). So a URL is parsed once, here, into a canonical form that
the HTTP client must read back identically; anything ambiguous is refused
rather than guessed (userinfo, backslashes, percent-encoded or control
characters in the host, zone ids). Numeric hosts in any notation browsers
accept (decimal ``2130706433``, octal ``0177.1``, hex ``0x7f.0.0.1``, short
``127.1``) are normalised to the address they mean, so the address check sees
what a resolver would. ``AddressPolicy`` decides which resolved addresses may
be contacted; ``parley.net.safe_fetch`` applies it at connect time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from parley.errors import ToolError

__all__ = [
    "AddressPolicy",
    "FetchBlocked",
    "FetchError",
    "IPAddress",
    "ParsedUrl",
    "blocked_reason",
    "parse_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS = 4096
# Names that mean "this machine" or a cloud metadata service whatever DNS says.
_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(ToolError):
    """A fetch that failed (network, status, size, type); ``message`` says why."""

    code = "fetch_failed"


class FetchBlocked(FetchError):
    """A URL or address the policy refuses (SSRF protection)."""

    code = "fetch_blocked"


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """A URL reduced to what is fetched; ``url`` is its canonical text."""

    scheme: str
    host: str  # lower-case name, dotted IPv4, or bracketless IPv6
    port: int
    target: str  # path + query, never empty
    ip: IPAddress | None = None  # set when the host is a literal address

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.target}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def _parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """The WHATWG IPv4 parser: 1-4 parts, each decimal, 0-octal or 0x-hex; the
    last part fills the remaining bytes. ``None`` when ``host`` is not numeric."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts = parts[:-1]  # one trailing dot is allowed
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not re.fullmatch(r"[0-7]+", part):
                raise FetchBlocked(f"'{host}' is not a valid address.")
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise FetchBlocked(f"'{host}' is not a valid address.")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _split_authority(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise FetchBlocked("The URL has an unclosed '[' in its host.")
        host, rest = authority[1:end], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise FetchBlocked("The URL has characters after its IPv6 address.")
        return f"[{host}]", rest[1:] if rest else None
    host, sep, port = authority.rpartition(":")
    if not sep:
        return authority, None
    return host, port


def parse_url(raw: str) -> ParsedUrl:
    """Parse and canonicalise ``raw``; ``FetchBlocked`` says what is wrong.

    Only ``http`` and ``https``; no credentials; the host must be a DNS name
    (IDNA-encoded), an IPv4 address in any numeric notation, or a bracketed
    IPv6 address without a zone. Fragments are dropped.
    """
    text = raw.strip()
    if len(text) > MAX_URL_CHARS:
        raise FetchBlocked(f"The URL is longer than {MAX_URL_CHARS} characters.")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise FetchBlocked("The URL contains spaces or control characters.")
    if "\\" in text:
        raise FetchBlocked("The URL contains a backslash, which parsers read differently.")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        shown = scheme if sep and len(scheme) < 20 else "(none)"
        raise FetchBlocked(f"Only http and https URLs can be fetched (scheme: {shown}).")
    if not rest.startswith("//"):
        raise FetchBlocked("The URL has no host (expected http://host/...).")
    rest = rest[2:].split("#", 1)[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, target = rest[:cut], rest[cut:]
    if "@" in authority:
        raise FetchBlocked("URLs with a user name or password (user@host) are not fetched.")
    if not target.startswith("/"):
        target = "/" + target
    host_text, port_text = _split_authority(authority)
    if port_text is None or port_text == "":
        port = _DEFAULT_PORTS[scheme]
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise FetchBlocked(f"'{port_text}' is not a valid port.")
    host, ip = _canonical_host(host_text)
    return ParsedUrl(scheme, host, port, target, ip)


def _canonical_host(text: str) -> tuple[str, IPAddress | None]:
    if not text:
        raise FetchBlocked("The URL has no host.")
    if text.startswith("["):
        inner = text[1:-1]
        if "%" in inner:
            raise FetchBlocked("IPv6 zone ids are not allowed in URLs.")
        try:
            v6 = ipaddress.IPv6Address(inner)
        except ValueError as exc:
            raise FetchBlocked(f"'{inner}' is not a valid IPv6 address.") from exc
        return v6.compressed, v6
    if "%" in text:
        raise FetchBlocked("Percent-encoded characters are not allowed in a host name.")
    try:
        # IDNA maps look-alikes (full-width digits, dots) before we look at the name.
        host = text.encode("idna").decode("ascii").lower() if not text.isascii() else text.lower()
    except UnicodeError as exc:
        raise FetchBlocked(f"'{text}' is not a valid host name.") from exc
    v4 = _parse_ipv4_number(host)
    if v4 is not None:
        return str(v4), v4
    if _NUMERIC_PART.match(host.rstrip(".").rsplit(".", 1)[-1]):
        # WHATWG: a host ending in a number must be an IPv4 address; this one is not.
        raise FetchBlocked(f"'{text}' is not a valid host name or address.")
    if not _HOST_CHARS.match(host) or ".." in host or host.startswith((".", "-")):
        raise FetchBlocked(f"'{text}' is not a valid host name.")
    return host.rstrip("."), None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    # IPv4-compatible (deprecated) ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def _is_metadata(ip: IPAddress) -> bool:
    if ip in _METADATA_ADDRESSES:
        return True
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return inner is not None and inner in _METADATA_ADDRESSES


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted from the server, or ``None`` if it is public."""
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = blocked_reason(inner)
            return f"{reason} (inside an IPv6 address)" if reason else None
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((why for hit, why in checks if hit), None)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which hosts and addresses server-side fetches may reach.

    Public addresses always; private ones only through the admin allow-list
    (``allow``: host names, addresses or networks such as ``10.0.0.0/8``).
    An allowed *name* lets that host resolve to private addresses; an allowed
    *network* lets any name resolve into it.
    """

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    extra_blocked_names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AddressPolicy:
        hosts: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip().lower() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def with_hosts(self, *hosts: str) -> AddressPolicy:
        """A copy that also allows ``hosts`` (e.g. an admin-configured service)."""
        return AddressPolicy(
            self.allow_hosts | {h.lower() for h in hosts},
            self.allow_networks,
            self.extra_blocked_names,
        )

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts

    def check_name(self, host: str) -> None:
        """Refuse names that mean this machine or a metadata service, before DNS."""
        name = host.lower().rstrip(".")
        if self.host_allowed(name):
            return
        if (
            name in _BLOCKED_NAMES
            or name in self.extra_blocked_names
            or name.endswith((".localhost", ".internal", ".local"))
        ):
            raise FetchBlocked(f"'{host}' is an internal host name and is not fetched.")

    def check_address(self, host: str, ip: IPAddress) -> None:
        """Raise ``FetchBlocked`` unless ``ip`` (what ``host`` resolved to) may be contacted.

        An allowed *name* never opens a cloud metadata address: a name's DNS
        answer can change (rebinding), and no internal service an admin means
        to allow lives there. Only a listed address or network that contains
        it does.
        """
        reason = blocked_reason(ip)
        if reason is None:
            return
        if self.host_allowed(host) and not _is_metadata(ip):
            return
        if any(ip.version == net.version and ip in net for net in self.allow_networks):
            return
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise FetchBlocked(
            f"{shown} is {reason}; the server does not fetch internal addresses "
            "(an administrator can allow a host with PARLEY_FETCH_ALLOW_HOSTS)."
        )
