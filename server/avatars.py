"""Fetching a distributor's avatar without opening a server-side request forgery (SSRF) hole.

Every hop (the first URL and each redirect, at most ``max_redirects``) must be http(s) on the
default port, without credentials, to a host on the allow-list; its DNS answers must all be
public unicast addresses and the request goes to the checked IP itself, with the original
``Host`` header and TLS server name, both by the outbound guard shared with webhooks
(:mod:`server.outbound`, which lists every refused range). The body must be ``image/*`` (not
SVG), at most ``max_bytes`` (enforced while streaming) and open with Pillow within its
decompression-bomb limit; ``timeout`` seconds cover the whole fetch. Imports no other
``server`` module but :mod:`server.outbound`.

Errors: every refusal raises :class:`AvatarFetchError` whose ``reason`` is a stable code for
logs and metrics; :func:`fetch_avatar_or_none` logs it and returns ``None`` (default avatar).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Literal, TypedDict, Unpack

import httpx
from PIL import Image

from server.outbound import OutboundRefused, parse_url, pin, resolve_public, system_resolver

__all__ = [
    "AvatarCache",
    "AvatarFetchError",
    "Reason",
    "Resolver",
    "fetch_avatar",
    "fetch_avatar_or_none",
]

logger = logging.getLogger(__name__)

Reason = Literal[
    "bad-url", "scheme", "port", "host-not-allowed", "dns", "private-address",
    "too-many-redirects", "status", "content-type", "content-encoding", "too-large",
    "timeout", "network", "not-an-image", "decompression-bomb",
]  # fmt: skip
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
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


async def _checked_target(url: httpx.URL, allowed_hosts: Collection[str], resolve: Resolver) -> str:
    """Validate one hop; return the public IP to connect to."""
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
        ip = await resolve_public(host, _DEFAULT_PORTS[url.scheme], resolve)
    except OutboundRefused as exc:
        raise AvatarFetchError(exc.reason, exc.detail) from None
    return ip


def _pinned_request(client: httpx.AsyncClient, url: httpx.URL, ip: str) -> httpx.Request:
    pinned, host_header, extensions = pin(url, ip)
    headers = {**host_header, "Accept": "image/*", "Accept-Encoding": "identity",
               "User-Agent": _USER_AGENT}  # fmt: skip
    return client.build_request("GET", pinned, headers=headers, extensions=extensions)


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
        current = parse_url(url)
    except OutboundRefused as exc:
        raise AvatarFetchError(exc.reason, exc.detail) from None
    # trust_env=False: an environment proxy would bypass the IP pinning.
    async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False,
                                 follow_redirects=False) as client:  # fmt: skip
        for _ in range(max_redirects + 1):
            ip = await _checked_target(current, allowed_hosts, resolve)
            request = _pinned_request(client, current, ip)
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


class FetchOptions(TypedDict, total=False):
    """The keyword options of :func:`fetch_avatar` (and :func:`fetch_avatar_or_none`)."""

    max_bytes: int
    timeout: float
    transport: httpx.AsyncBaseTransport | None
    resolver: Resolver | None
    max_redirects: int


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
    resolve = resolver or system_resolver
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
    url: str, allowed_hosts: Collection[str], **options: Unpack[FetchOptions]
) -> bytes | None:
    """:func:`fetch_avatar`, but log the refusal reason and return ``None`` on any failure."""
    try:
        return await fetch_avatar(url, allowed_hosts, **options)
    except AvatarFetchError as exc:
        logger.warning("avatar refused (%s): %s", exc.reason, exc.detail, extra={"url": url})
        return None


class AvatarCache:
    """Avatars fetched for posters (a refusal kept as ``None``), for ``ttl`` seconds, at most
    ``max_entries``, keyed by the URL *and* the allow-list it was fetched under: a tenant
    whose allow-list refuses a host never gets the copy another tenant's list admitted."""

    def __init__(
        self,
        ttl: float = 600.0,
        max_entries: int = 1000,
        fetch: Callable[[str, Collection[str]], Awaitable[bytes | None]] | None = None,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._fetch = fetch
        self._entries: OrderedDict[tuple[str, frozenset[str]], tuple[float, bytes | None]] = (
            OrderedDict()
        )

    async def get(self, url: str, allowed_hosts: Collection[str]) -> bytes | None:
        key = (url, frozenset(_normalise_host(h) if not h.startswith(".") else
                              "." + _normalise_host(h[1:]) for h in allowed_hosts))  # fmt: skip
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        fetch = self._fetch or fetch_avatar_or_none
        data = await fetch(url, allowed_hosts)
        self._entries[key] = (time.monotonic() + self.ttl, data)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return data
