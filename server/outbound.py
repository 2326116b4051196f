"""The one outbound-address guard: every fetch or delivery a tenant can point somewhere.

Avatars (:mod:`server.avatars`) and webhooks (:mod:`server.webhooks`) both go through it:

- :func:`parse_url` is the only URL parser (httpx's, as the sender uses), so a URL accepted at
  creation is one the sender can send to; any parse failure is a :class:`OutboundRefused`.
- :func:`host_refusal` checks a host as written (at creation): ``localhost``, ``*.localhost``,
  ``*.local``, ``*.internal``, IP literals that are not public (below), and numeric spellings
  that resolvers read as IPv4 (``127.1``, ``2130706433``, ``0x7f.0.0.1``).
- :func:`address_refusal` checks one IP: loopback, private, shared (100.64/10), link-local
  (169.254.169.254 metadata), ULA (fc00::/7), site-local, multicast, unspecified, reserved and
  documentation ranges; IPv4-mapped (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::/96``) and 6to4
  (``2002::/16``) forms are judged by the IPv4 address they embed; IPv4-compatible
  (``::a.b.c.d``), Teredo (``2001::/32``) and local-use NAT64 (``64:ff9b:1::/48``) are refused.
- :func:`resolve_public` resolves a host at connect time, refuses it unless every answer is
  public, and returns the address to connect to; :func:`pin` aims a request at that address
  with the original ``Host`` header and TLS server name, so a second DNS answer cannot rebind it.

Standalone: imports no other ``server`` module.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import httpx

__all__ = [
    "OutboundRefused",
    "Resolver",
    "address_refusal",
    "host_refusal",
    "parse_url",
    "pin",
    "resolve_public",
    "system_resolver",
]

Reason = Literal["bad-url", "scheme", "dns", "private-address"]
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# Host names a resolver may read as an IPv4 address (inet_aton: octal, hex, fewer parts).
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


class OutboundRefused(Exception):
    """A URL, host or address may not be reached; ``reason`` is a stable code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason: Reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_url(raw: str) -> httpx.URL:
    """Parse ``raw`` as the sender will; refuse anything but absolute http(s) with a host."""
    try:
        url = httpx.URL(raw)
        host = url.host
    except Exception as exc:  # noqa: BLE001 - httpx raises InvalidURL, IDNAError, UnicodeError
        raise OutboundRefused("bad-url", f"{type(exc).__name__}: {exc}") from None
    if url.scheme not in DEFAULT_PORTS:
        raise OutboundRefused("scheme", f"{url.scheme!r} is not http or https")
    if not host:
        raise OutboundRefused("bad-url", "no host")
    return url


def address_refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or ``None`` if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = None
        if ip.ipv4_mapped is not None:
            embedded = ip.ipv4_mapped
        elif ip in _IPV4_COMPATIBLE:
            return "an IPv4-compatible IPv6 address"
        elif ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        elif ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None:
            embedded = ip.sixtofour
        elif ip in _TEREDO:
            return "a Teredo address"
        if embedded is not None:
            inner = address_refusal(embedded)
            return None if inner is None else f"{inner} (embedded in {ip})"
    checks = (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
        ("private", ip.is_private), ("reserved", ip.is_reserved),
        ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("not globally routable", not ip.is_global),
    )  # fmt: skip
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    return None


def host_refusal(host: str, allow_private: bool = False) -> str | None:
    """Why ``host`` (as written in a URL, IDNA-encoded) is internal or ambiguous, or ``None``.

    ``allow_private`` (development) lets internal addresses and names pass; a numeric or
    malformed name is refused either way."""
    name = host.strip("[]").lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        ip = None
    if ip is not None:
        reason = None if allow_private else address_refusal(ip)
        return None if reason is None else f"{ip} is {reason}"
    if not allow_private and (name == "localhost" or name.endswith(_INTERNAL_SUFFIXES)):
        return f"{name} names this machine or an internal network"
    if _NUMERIC_HOST.match(name):
        return f"{name} is a numeric host a resolver reads as an IPv4 address; write it dotted"
    if not all(_LABEL.match(label) for label in name.split(".")):
        return f"{name} is not a valid host name"
    return None


async def resolve_public(host: str, port: int, resolve: Resolver) -> str:
    """The address to connect to for ``host``: every DNS answer must be public."""
    name = host.strip("[]")
    try:
        literal: IPAddress | None = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        answers = [str(literal)]
    else:
        try:
            answers = list(await resolve(name, port))
        except (OSError, UnicodeError) as exc:
            raise OutboundRefused("dns", f"{name}: {exc}") from exc
    if not answers:
        raise OutboundRefused("dns", f"{name}: no addresses")
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError:
            raise OutboundRefused("dns", f"{name}: bad address {answer!r}") from None
        reason = address_refusal(ip)
        if reason is not None:
            raise OutboundRefused("private-address", f"{name} -> {ip} is {reason}")
    return answers[0].split("%", 1)[0]


def pin(url: httpx.URL, ip: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """(URL aimed at ``ip``, ``Host`` header, request extensions keeping the TLS name)."""
    host = url.host
    extensions: dict[str, Any] = {"sni_hostname": host} if url.scheme == "https" else {}
    netloc = url.netloc.decode("ascii")
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    return url.copy_with(host=ip), {"Host": netloc}, extensions
