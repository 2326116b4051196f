"""Avatar fetching refuses every SSRF trick; no network: MockTransport and a fake resolver."""

from __future__ import annotations

import ast
import asyncio
import io
import logging
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from server.avatars import AvatarFetchError, fetch_avatar, fetch_avatar_or_none

ALLOWED = (".qlogo.cn", "cdn.example.com")
AVATAR_URL = "https://thirdwx.qlogo.cn/mmopen/abc/132"
PUBLIC_IP = "93.184.216.34"  # public addresses as data only: nothing connects to them
DNS = {
    "thirdwx.qlogo.cn": [PUBLIC_IP],
    "wx.qlogo.cn": ["8.8.4.4"],
    "cdn.example.com": ["1.1.1.1"],
    "internal.qlogo.cn": ["10.0.0.5"],
    "v6.qlogo.cn": ["2606:4700::1111"],
}


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions: Pillow reads the header before any pixel."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _resolver(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[Sequence[str]]]:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError(f"NXDOMAIN {host}")
        return table[host]

    return resolve


Handler = Callable[[httpx.Request], httpx.Response]


def _fetch(url: str, handler: Handler, dns: dict[str, list[str]] | None = None,
           **options: Any) -> bytes:  # fmt: skip
    async def run() -> bytes:
        return await fetch_avatar(
            url, ALLOWED, transport=httpx.MockTransport(handler),
            resolver=_resolver(DNS if dns is None else dns), **options,
        )  # fmt: skip

    return asyncio.run(run())


def _image(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "image/png"}, content=_png())


def _reason(url: str, handler: Handler = _image, dns: dict[str, list[str]] | None = None,
            **options: Any) -> str:  # fmt: skip
    with pytest.raises(AvatarFetchError) as caught:
        _fetch(url, handler, dns, **options)
    return caught.value.reason


def test_good_image_is_fetched_from_the_pinned_ip_with_host_and_sni() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _image(request)

    assert Image.open(io.BytesIO(_fetch(AVATAR_URL, handler))).size == (64, 64)
    (request,) = seen
    assert request.url.host == PUBLIC_IP and request.url.path == "/mmopen/abc/132"
    assert request.headers["host"] == "thirdwx.qlogo.cn"
    assert request.extensions["sni_hostname"] == "thirdwx.qlogo.cn"
    assert request.headers["accept-encoding"] == "identity"


def test_ipv6_answer_is_pinned_in_brackets() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _image(request)

    _fetch("http://v6.qlogo.cn/a.png", handler)
    assert str(seen[0].url) == "http://[2606:4700::1111]/a.png"
    assert "sni_hostname" not in seen[0].extensions


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://thirdwx.qlogo.cn/a.png", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://thirdwx.qlogo.cn/", "scheme"),
        ("https://user:pw@thirdwx.qlogo.cn/a.png", "bad-url"),
        ("https://thirdwx.qlogo.cn:8443/a.png", "port"),
        ("http://thirdwx.qlogo.cn:443/a.png", "port"),
        ("https://evil.example.org/a.png", "host-not-allowed"),
        ("https://evilqlogo.cn/a.png", "host-not-allowed"),
        ("https://thirdwx.qlogo.cn.evil.org/a.png", "host-not-allowed"),
        ("https://img.cdn.example.com/a.png", "host-not-allowed"),  # exact entry: no subdomains
        ("https://127.0.0.1/a.png", "host-not-allowed"),
        ("https://missing.qlogo.cn/a.png", "dns"),
        ("https://internal.qlogo.cn/a.png", "private-address"),
        ("http://[::1", "bad-url"),
    ],
)
def test_url_rules(url: str, reason: str) -> None:
    assert _reason(url) == reason


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",  # noqa: S104
        "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "2002:7f00:1::1", "2002:a00:1::1", "64:ff9b::a00:1", "2001:db8::1",
    ],
)  # fmt: skip
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert _reason(AVATAR_URL, dns={"thirdwx.qlogo.cn": [address]}) == "private-address"


def test_one_private_answer_among_public_ones_is_refused() -> None:
    dns = {"thirdwx.qlogo.cn": [PUBLIC_IP, "127.0.0.1"]}
    assert _reason(AVATAR_URL, dns=dns) == "private-address"


def test_ip_literal_on_the_allow_list_is_still_checked() -> None:
    async def run() -> bytes:
        return await fetch_avatar("http://127.0.0.1/a.png", ["127.0.0.1"],
                                  transport=httpx.MockTransport(_image),
                                  resolver=_resolver({}))  # fmt: skip

    with pytest.raises(AvatarFetchError) as caught:
        asyncio.run(run())
    assert caught.value.reason == "private-address"


def test_empty_dns_answer_is_refused() -> None:
    assert _reason(AVATAR_URL, dns={"thirdwx.qlogo.cn": []}) == "dns"


def _redirects(chain: dict[str, str]) -> Handler:
    """Serve a redirect for every path in ``chain`` and the image anywhere else."""

    def handler(request: httpx.Request) -> httpx.Response:
        key = f"{request.headers['host']}{request.url.path}"
        if key in chain:
            return httpx.Response(302, headers={"location": chain[key]})
        return _image(request)

    return handler


def test_redirects_are_followed_and_every_hop_rechecked() -> None:
    chain = {"thirdwx.qlogo.cn/mmopen/abc/132": "https://wx.qlogo.cn/1",
             "wx.qlogo.cn/1": "/2", "wx.qlogo.cn/2": "https://cdn.example.com/3"}  # fmt: skip
    assert _fetch(AVATAR_URL, _redirects(chain)) == _png()


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://internal.qlogo.cn/x.png", "private-address"),
        ("http://127.0.0.1/x.png", "host-not-allowed"),
        ("http://169.254.169.254/latest/meta-data/", "host-not-allowed"),
        ("https://evil.example.org/x.png", "host-not-allowed"),
        ("file:///etc/passwd", "scheme"),
        ("https://thirdwx.qlogo.cn:6379/", "port"),
    ],
)
def test_redirect_to_a_forbidden_target_is_refused(location: str, reason: str) -> None:
    handler = _redirects({"thirdwx.qlogo.cn/mmopen/abc/132": location})
    assert _reason(AVATAR_URL, handler) == reason


def test_redirect_to_host_that_now_resolves_privately_is_refused() -> None:
    """DNS rebinding between hops: the second lookup answers a private address."""
    handler = _redirects({"thirdwx.qlogo.cn/mmopen/abc/132": "https://wx.qlogo.cn/a"})
    dns = {**DNS, "wx.qlogo.cn": ["192.168.0.10"]}
    assert _reason(AVATAR_URL, handler, dns=dns) == "private-address"


def test_at_most_three_redirects() -> None:
    chain = {f"wx.qlogo.cn/{i}": f"/{i + 1}" for i in range(4)}
    assert _fetch("https://wx.qlogo.cn/1", _redirects(chain)) == _png()  # 1->2->3->4: three
    assert _reason("https://wx.qlogo.cn/0", _redirects(chain)) == "too-many-redirects"


def test_redirect_without_location_is_refused() -> None:
    assert _reason(AVATAR_URL, lambda r: httpx.Response(302)) == "status"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"content-type": "text/html"}, "content-type"),
        ({"content-type": "image/svg+xml"}, "content-type"),
        ({}, "content-type"),
        ({"content-type": "image/png", "content-encoding": "gzip"}, "content-encoding"),
        ({"content-type": "image/png", "content-length": "3000000"}, "too-large"),
    ],
)
def test_response_header_rules(headers: dict[str, str], reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(_png()))

    assert _reason(AVATAR_URL, handler) == reason


def test_error_status_is_refused() -> None:
    assert _reason(AVATAR_URL, lambda r: httpx.Response(404)) == "status"


class _Endless(httpx.AsyncByteStream):
    """A body with no Content-Length that never ends; counts what was pulled."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += 65536
            yield b"\0" * 65536


def test_size_cap_is_enforced_while_streaming() -> None:
    body = _Endless()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "image/png"}, stream=body)

    assert _reason(AVATAR_URL, handler) == "too-large"
    assert body.sent <= 2_000_000 + 65536


def test_custom_size_cap() -> None:
    assert _reason(AVATAR_URL, _image, max_bytes=100) == "too-large"


def test_bytes_that_are_not_an_image_are_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "image/jpeg"}, content=b"<html>")

    assert _reason(AVATAR_URL, handler) == "not-an-image"


@pytest.mark.parametrize("size", [(30_000, 30_000), (10_000, 10_000), (5000, 5000)])
def test_decompression_bombs_are_refused(size: tuple[int, int]) -> None:
    bomb = _png_header_only(*size)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "image/png"}, content=bomb)

    assert len(bomb) < 100
    assert _reason(AVATAR_URL, handler) == "decompression-bomb"


def test_slow_server_hits_the_total_timeout() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return _image(request)

    assert _reason(AVATAR_URL, handler, timeout=0.05) == "timeout"  # type: ignore[arg-type]


def test_slow_dns_hits_the_total_timeout() -> None:
    async def run() -> bytes:
        async def resolve(host: str, port: int) -> Sequence[str]:
            await asyncio.sleep(5)
            return [PUBLIC_IP]

        return await fetch_avatar(AVATAR_URL, ALLOWED, transport=httpx.MockTransport(_image),
                                  resolver=resolve, timeout=0.05)  # fmt: skip

    with pytest.raises(AvatarFetchError) as caught:
        asyncio.run(run())
    assert caught.value.reason == "timeout"


def test_connection_errors_are_reported_as_network() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert _reason(AVATAR_URL, handler) == "network"


def test_or_none_logs_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> bytes | None:
        return await fetch_avatar_or_none("https://evil.example.org/a.png", ALLOWED,
                                          resolver=_resolver(DNS))  # fmt: skip

    with caplog.at_level(logging.WARNING, logger="server.avatars"):
        assert asyncio.run(run()) is None
    assert "host-not-allowed" in caplog.text


def test_real_resolver_refuses_localhost() -> None:
    """No injected resolver: localhost really resolves to loopback (no network needed)."""

    async def run() -> bytes:
        return await fetch_avatar("http://localhost/a.png", ["localhost"],
                                  transport=httpx.MockTransport(_image))  # fmt: skip

    with pytest.raises(AvatarFetchError) as caught:
        asyncio.run(run())
    assert caught.value.reason in ("private-address", "dns")


def test_module_imports_only_the_outbound_guard_from_server() -> None:
    source = Path(__file__).resolve().parents[2] / "server" / "avatars.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert [name for name in imported if name.startswith((".", "server"))] == ["server.outbound"]


def test_cache_is_keyed_by_url_and_allow_list() -> None:
    """Tenant A allows cdn.example.com; tenant B allows nothing: B never gets A's copy."""
    from server.avatars import AvatarCache

    fetched: list[tuple[str, ...]] = []

    async def fetch(url: str, allowed: Collection[str]) -> bytes | None:
        fetched.append(tuple(allowed))
        return await fetch_avatar_or_none(url, allowed, transport=httpx.MockTransport(_image),
                                          resolver=_resolver(DNS))  # fmt: skip

    async def run() -> list[bytes | None]:
        cache = AvatarCache(fetch=fetch)
        url = "https://cdn.example.com/a.png"
        return [await cache.get(url, ["cdn.example.com"]),  # tenant A: fetched
                await cache.get(url, []),  # tenant B: its own (empty) list decides
                await cache.get(url, [".qlogo.cn"]),  # tenant C: another list, refused
                await cache.get(url, ["CDN.example.com"]),  # A's list, spelled otherwise: hit
                await cache.get(url, [])]  # B again: a cached refusal  # fmt: skip

    a, b, c, a_again, b_again = asyncio.run(run())
    assert a == _png() and a_again == a
    assert b is None and c is None and b_again is None
    assert fetched == [("cdn.example.com",), (), (".qlogo.cn",)]
