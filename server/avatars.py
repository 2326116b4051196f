"""Fetching a distributor's avatar without opening a server-side request forgery (SSRF) hole.

Every hop (the first URL and each redirect, at most ``max_redirects``) must be http(s) on the
default port, without credentials, to a host on the allow-list; its DNS answers must all be
public unicast addresses (no loopback, private, link-local, shared, multicast, reserved or
unspecified, IPv4-mapped/6to4/Teredo/NAT64 forms included). The request then goes to the
checked IP itself, with the original ``Host`` header and TLS server name, so a second DNS
answer cannot rebind it. The body must be ``image/*`` (not SVG), at most ``max_bytes`` (enforced
while streaming) and open with Pillow within its decompression-bomb limit; ``timeout`` seconds
cover the whole fetch. Standalone: imports no other ``server`` module.

Errors: every refusal raises :class:`AvatarFetchError` whose ``reason`` is a stable code for
logs and metrics; :func:`fetch_avatar_or_none` logs it and returns ``None`` (default avatar).
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Literal

import httpx
from PIL import Image

__all__ = ["AvatarFetchError", "Reason", "Resolver", "fetch_avatar", "fetch_avatar_or_none"]

logger = logging.getLogger(__name__)

Reason = Literal[
    "bad-url", "scheme", "port", "host-not-allowed", "dns", "private-address",
    "too-many-redirects", "status", "content-type", "content-encoding", "too-large",
    "timeout", "network", "not-an-image", "decompression-bomb",
]  # fmt: skip
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_USER_AGENT = "liebian-avatar/1"
# Above Pillow's own guard a 2 MB PNG could still inflate to ~270 MB of pixels; avatars are
# far smaller, so cap decoding at 4096 x 4096 as well.
MAX_AVATAR_PIXELS = 4096 * 4096


class AvatarFetchError(Exception):
    """An avatar was refused or could not be fetched; ``reason`` says which rule failed."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _is_public(embedded)
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )  # fmt: skip


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def _host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    """``"a.cn"`` allows exactly a.cn; ``".a.cn"`` allows a.cn and every subdomain of it."""
    for entry in allowed_hosts:
        wildcard = entry.startswith(".")
        name = _normalise_host(entry.lstrip("."))
        if host == name or (wildcard and host.endswith("." + name)):
            return True
    return False


async def _checked_target(
    url: httpx.URL, allowed_hosts: Collection[str], resolve: Resolver
) -> tuple[str, str]:
    """Validate one hop; return its host name and the public IP to connect to."""
    if url.scheme not in _DEFAULT_PORTS:
        raise AvatarFetchError("scheme", f"{url.scheme!r} is not http or https")
    if url.userinfo:
        raise AvatarFetchError("bad-url", "credentials in the URL")
    if url.port not in (None, _DEFAULT_PORTS[url.scheme]):
        raise AvatarFetchError("port", f"port {url.port} is not the default")
    host = _normalise_host(url.raw_host.decode("ascii"))
    if not host or not _host_allowed(host, allowed_hosts):
        raise AvatarFetchError("host-not-allowed", host)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        answers = [str(literal)]
    else:
        try:
            answers = list(await resolve(host, _DEFAULT_PORTS[url.scheme]))
        except (OSError, UnicodeError) as exc:
            raise AvatarFetchError("dns", f"{host}: {exc}") from exc
    if not answers:
        raise AvatarFetchError("dns", f"{host}: no addresses")
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError:
            raise AvatarFetchError("dns", f"{host}: bad address {answer!r}") from None
        if not _is_public(ip):
            raise AvatarFetchError("private-address", f"{host} -> {ip}")
    return host, answers[0].split("%", 1)[0]


def _pinned_request(client: httpx.AsyncClient, url: httpx.URL, host: str, ip: str) -> httpx.Request:
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    headers = {"Host": host, "Accept": "image/*", "Accept-Encoding": "identity",
               "User-Agent": _USER_AGENT}  # fmt: skip
    return client.build_request(
        "GET", url.copy_with(host=ip), headers=headers, extensions=extensions
    )


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    if response.status_code != 200:
        raise AvatarFetchError("status", f"HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not content_type.startswith("image/") or content_type == "image/svg+xml":
        raise AvatarFetchError("content-type", content_type or "missing")
    if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        raise AvatarFetchError("content-encoding", response.headers["content-encoding"])
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise AvatarFetchError("too-large", f"Content-Length {declared} > {max_bytes}")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise AvatarFetchError("too-large", f"more than {max_bytes} bytes")
    return bytes(body)


def _check_image(body: bytes) -> None:
    """Raise unless ``body`` decodes as an image within the pixel limits."""
    limit = min(MAX_AVATAR_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_AVATAR_PIXELS)
    try:
        with Image.open(io.BytesIO(body)) as img:
            width, height = img.size
            if width * height > limit:
                raise AvatarFetchError("decompression-bomb", f"{width}x{height} pixels")
            img.draft("RGB", (512, 512))  # JPEG: decode at reduced scale, still fully parsed
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AvatarFetchError("decompression-bomb", str(exc)) from exc
    except AvatarFetchError:
        raise
    except Exception as exc:  # Pillow raises many types for malformed input
        raise AvatarFetchError("not-an-image", f"{type(exc).__name__}: {exc}") from exc


async def _fetch(
    url: str,
    allowed_hosts: Collection[str],
    max_bytes: int,
    max_redirects: int,
    transport: httpx.AsyncBaseTransport | None,
    resolve: Resolver,
    timeout: float,
) -> bytes:
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise AvatarFetchError("bad-url", str(exc)) from exc
    # trust_env=False: an environment proxy would bypass the IP pinning.
    async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False,
                                 follow_redirects=False) as client:  # fmt: skip
        for _ in range(max_redirects + 1):
            host, ip = await _checked_target(current, allowed_hosts, resolve)
            request = _pinned_request(client, current, host, ip)
            response = await client.send(request, stream=True)
            try:
                if response.status_code not in _REDIRECTS:
                    return await _read_body(response, max_bytes)
                location = response.headers.get("location")
                if not location:
                    raise AvatarFetchError("status", f"{response.status_code} without Location")
                try:
                    current = current.join(location)
                except httpx.InvalidURL as exc:
                    raise AvatarFetchError("bad-url", f"redirect to {location!r}") from exc
            finally:
                await response.aclose()
    raise AvatarFetchError("too-many-redirects", f"more than {max_redirects}")


async def fetch_avatar(
    url: str,
    allowed_hosts: Collection[str],
    *,
    max_bytes: int = 2_000_000,
    timeout: float = 3.0,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    max_redirects: int = 3,
) -> bytes:
    """Download an avatar image under the rules in the module docstring; return its bytes.

    ``timeout`` is in seconds for the whole fetch, DNS and image check included. ``transport``
    and ``resolver`` exist for tests (``httpx.MockTransport``, a dict-backed resolver).
    """
    resolve = resolver or _system_resolver
    try:
        async with asyncio.timeout(timeout):
            body = await _fetch(url, allowed_hosts, max_bytes, max_redirects, transport,
                                resolve, timeout)  # fmt: skip
            await asyncio.to_thread(_check_image, body)
    except TimeoutError as exc:
        raise AvatarFetchError("timeout", f"over {timeout} s") from exc
    except httpx.TimeoutException as exc:
        raise AvatarFetchError("timeout", str(exc)) from exc
    except httpx.HTTPError as exc:
        raise AvatarFetchError("network", f"{type(exc).__name__}: {exc}") from exc
    return body


async def fetch_avatar_or_none(
    url: str,
    allowed_hosts: Collection[str],
    *,
    max_bytes: int = 2_000_000,
    timeout: float = 3.0,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> bytes | None:
    """:func:`fetch_avatar`, but log the refusal reason and return ``None`` on any failure."""
    try:
        return await fetch_avatar(url, allowed_hosts, max_bytes=max_bytes, timeout=timeout,
                                  transport=transport, resolver=resolver)  # fmt: skip
    except AvatarFetchError as exc:
        logger.warning("avatar refused (%s): %s", exc.reason, exc.detail, extra={"url": url})
        return None
