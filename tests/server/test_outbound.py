"""The outbound-address guard shared by avatars and webhooks: a table of hosts and addresses."""

from __future__ import annotations

import ast
import asyncio
import ipaddress
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from server.outbound import (
    OutboundRefused,
    address_refusal,
    host_refusal,
    parse_url,
    pin,
    resolve_public,
)

REFUSED_ADDRESSES = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",
    "169.254.169.254", "169.254.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250",  # noqa: S104
    "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fec0::1", "fc00::1", "fd00::2", "fd12:3456::1", "ff02::1",
    "ff0e::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "::127.0.0.1", "::8.8.8.8",  # IPv4-compatible (deprecated): refused whatever it embeds
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe",  # NAT64 of private v4
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::1",  # 6to4 of private v4
    "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]  # fmt: skip
PUBLIC_ADDRESSES = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8",
                    "64:ff9b::808:808", "2002:808:808::1"]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_internal_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None
    assert host_refusal(f"[{address}]" if ":" in address else address) is not None
    with pytest.raises(OutboundRefused) as caught:
        asyncio.run(resolve_public("hooks.example.com", 443, _dns([address])))
    assert caught.value.reason == "private-address"


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None
    assert asyncio.run(resolve_public("hooks.example.com", 443, _dns([address]))) == address


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST.", "a.localhost", "printer.local", "db.internal",
     "metadata.google.internal", "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "017700000001",
     "exa%20mple.com", "a..b"],
)  # fmt: skip
def test_internal_and_numeric_host_names_are_refused(host: str) -> None:
    assert host_refusal(host) is not None


@pytest.mark.parametrize("host", ["hooks.example.com", "xn--fiqs8s.cn", "a-b.c_d.io", "1.example"])
def test_public_names_pass(host: str) -> None:
    assert host_refusal(host) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://①②⑦.0.0.1/", "bad-url"), ("http://0177.0.0.1/", "bad-url"),
     ("http://xn--/", "bad-url"), ("http://[::1/", "bad-url"), ("http:///path", "bad-url"),
     ("ftp://example.com/", "scheme"), ("file:///etc/passwd", "scheme")],
)  # fmt: skip
def test_urls_the_sender_cannot_parse_are_refused(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused) as caught:
        parse_url(url)
    assert caught.value.reason == reason


def _dns(answers: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        return answers

    return resolve


def test_one_internal_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(OutboundRefused):
        asyncio.run(resolve_public("h.example.com", 80, _dns(["8.8.8.8", "10.0.0.1"])))


def test_dns_failure_and_empty_answer_are_refused() -> None:
    async def fail(host: str, port: int) -> Sequence[str]:
        raise OSError("NXDOMAIN")

    for resolver in (fail, _dns([])):
        with pytest.raises(OutboundRefused) as caught:
            asyncio.run(resolve_public("h.example.com", 80, resolver))
        assert caught.value.reason == "dns"


def test_pin_keeps_host_header_and_tls_name() -> None:
    url, headers, extensions = pin(httpx.URL("https://u:p@hooks.example.com:8443/x?y=1"),
                                   "93.184.216.34")  # fmt: skip
    assert str(url) == "https://u:p@93.184.216.34:8443/x?y=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    url, headers, extensions = pin(httpx.URL("http://hooks.example.com/x"), "2606:4700::1111")
    assert str(url) == "http://[2606:4700::1111]/x" and extensions == {}


def test_module_imports_no_other_server_module() -> None:
    source = Path(__file__).resolve().parents[2] / "server" / "outbound.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert not [name for name in imported if name.startswith((".", "server"))]
