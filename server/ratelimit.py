"""Rate limits: requests per minute per API key, and per client address on the public routes.

A *subject* (``{tenant_id}:{key prefix}`` for a key, ``ip:{address}`` for a public caller) may
send ``limit`` requests in each fixed one-minute window (aligned on the epoch minute); the
next one is refused with ``429`` and ``Retry-After`` = the seconds left in the window. A fixed
window lets a subject send up to twice its limit across a window boundary; that is the price
of one counter per subject and one increment per request.

Counters live in Redis when ``LIEBIAN_REDIS_URL`` is set (every worker shares them: a Lua
``INCRBY`` + ``EXPIRE``, one round trip per request, shared by the requests that arrive in the
same turn of the event loop; keys ``rl:{tenant}:{key prefix}:{window}`` and
``rl:{ip:address}:{window}`` expire after two minutes; see :func:`counter_key`),
else in memory per process (:class:`MemoryCounters`: the current window's counters only, at
most ``MEMORY_MAX_SUBJECTS`` of them). If Redis fails, the request is counted in
memory instead (so is one that takes over ``REDIS_TIMEOUT_SECONDS``): the limit then holds per
worker until Redis answers again.

The API key's limit is the tenant program's ``rate_limit_per_minute`` (read from the program
cache: no database round trip per request); the public routes' limit is the setting
``LIEBIAN_PUBLIC_RATE_LIMIT_PER_MINUTE``. ``X-Forwarded-For`` names the client only when the
peer is one of ``LIEBIAN_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from server.errors import RateLimited

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from server.settings import Settings

__all__ = [
    "MEMORY_MAX_SUBJECTS",
    "REDIS_TIMEOUT_SECONDS",
    "WINDOW_SECONDS",
    "Counters",
    "MemoryCounters",
    "RateLimits",
    "RedisCounters",
    "client_address",
]

WINDOW_SECONDS = 60
#: Subjects counted in memory per window (about 200 bytes each: ~20 MB at the bound). Past it,
#: a new subject is let through uncounted until the next minute (known ones still count):
#: refusing strangers would turn an address-rotating flood into an outage for everyone.
MEMORY_MAX_SUBJECTS = 100_000

#: A Redis round trip that takes longer is given up: its requests are counted in memory.
REDIS_TIMEOUT_SECONDS = 0.5

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_log = logging.getLogger("liebian.ratelimit")


class Counters(Protocol):
    async def incr(self, subject: str, window: int) -> int:
        """Count one request of ``subject`` in ``window``; return its count (0: not counted)."""
        ...


class MemoryCounters:
    """This process's counters of the current window; O(1) per request.

    When the window changes, the previous window's dict is dropped whole, so memory holds one
    window's subjects at most, and at most ``max_subjects`` of them.
    """

    def __init__(self, max_subjects: int = MEMORY_MAX_SUBJECTS) -> None:
        self.max_subjects = max_subjects
        self._window = -1
        self._counts: dict[str, int] = {}
        self._full_warned = False

    @property
    def size(self) -> int:
        return len(self._counts)

    async def incr(self, subject: str, window: int) -> int:
        return self.incr_now(subject, window)

    def incr_now(self, subject: str, window: int) -> int:
        counts = self._counts
        if window != self._window:
            self._window = window
            counts = self._counts = {}
            self._full_warned = False
        count = counts.get(subject, 0) + 1
        if count == 1 and len(counts) >= self.max_subjects:
            if not self._full_warned:
                self._full_warned = True
                _log.warning("rate-limit counters full (%d subjects this minute)", len(counts))
            return 0
        counts[subject] = count
        return count


# Add each key's count of requests and, when a key is new, set its lifetime; return the totals.
_INCR_LUA = """
local totals = {}
for i, key in ipairs(KEYS) do
  local added = tonumber(ARGV[i])
  local n = redis.call('INCRBY', key, added)
  if n == added then redis.call('EXPIRE', key, ARGV[#ARGV]) end
  totals[i] = n
end
return totals
"""


def counter_key(subject: str, window: int) -> str:
    """The Redis key of ``subject``'s counter in ``window``. The braces are a Redis Cluster
    hash tag: a tenant's keys (``{tenant}:{prefix}`` subjects) share one hash slot, an
    address (``ip:...``) has a slot of its own."""
    tenant, colon, rest = subject.partition(":")
    if not colon or tenant == "ip":
        return f"rl:{{{subject}}}:{window}"
    return f"rl:{{{tenant}}}:{rest}:{window}"


class RedisCounters:
    """Counters shared by every worker: key :func:`counter_key`, gone after two windows.

    The requests that ask within one turn of the event loop are counted by one round trip (one
    ``EVALSHA`` adding each key's count of waiting requests), sent on the next turn; batches do
    not wait for each other. Each request gets the count it would have had alone: the key's
    new total, less the requests queued behind it in the batch.

    On a Redis Cluster a script may only touch keys of one hash slot, so a batch is split by
    slot (in practice by tenant, see :func:`counter_key`), its scripts sent concurrently.
    """

    def __init__(self, redis: Redis, fallback: MemoryCounters) -> None:
        from server.redisconn import is_cluster

        self._clustered = is_cluster(redis)
        self._script = redis.register_script(_INCR_LUA)
        self._fallback = fallback
        self._failed_window = -1
        self._waiting: dict[tuple[str, int], list[asyncio.Future[int]]] = {}
        self._in_flight: set[asyncio.Task[None]] = set()

    async def incr(self, subject: str, window: int) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._send)
        self._waiting.setdefault((subject, window), []).append(future)
        return await future

    def _send(self) -> None:
        batch, self._waiting = self._waiting, {}
        task = asyncio.get_running_loop().create_task(self._count(batch))
        self._in_flight.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._in_flight.discard)

    async def _count(self, batch: dict[tuple[str, int], list[asyncio.Future[int]]]) -> None:
        from redis.exceptions import RedisError

        keys = [counter_key(subject, window) for subject, window in batch]
        args = [len(futures) for futures in batch.values()]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                totals = await self._totals(keys, args)
        except (RedisError, OSError, TimeoutError) as exc:
            window = next(iter(batch))[1]
            if self._failed_window != window:  # one line per minute, not per request
                self._failed_window = window
                _log.warning("rate limits counted in memory: Redis failed: %s", exc)
            for (subject, window), futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(self._fallback.incr_now(subject, window))
            return
        except BaseException:
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        for futures, total in zip(batch.values(), totals, strict=True):
            first = int(total) - len(futures)
            for i, future in enumerate(futures, 1):
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_result(first + i)

    async def _totals(self, keys: list[str], counts: list[int]) -> list[Any]:
        """Each key's new total after adding its count: one script call, or one per hash
        slot on a cluster."""
        ttl = 2 * WINDOW_SECONDS
        if not self._clustered:
            return list(await self._script(keys=keys, args=[*counts, ttl]))
        from redis.crc import key_slot

        slots: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            slots.setdefault(key_slot(key.encode()), []).append(i)
        groups = list(slots.values())
        replies = await asyncio.gather(
            *(
                self._script(keys=[keys[i] for i in g], args=[*(counts[i] for i in g), ttl])
                for g in groups
            )
        )
        totals: list[Any] = [0] * len(keys)
        for group, reply in zip(groups, replies, strict=True):
            for i, total in zip(group, reply, strict=True):
                totals[i] = total
        return totals


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _subject_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        # One subscriber usually holds a whole /64: count it as one client.
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[Network, ...]
) -> bool:
    return any(address in network for network in proxies)


def client_address(scope: Any, trusted_proxies: tuple[Network, ...]) -> str:
    """The client's address from the ASGI scope (an IPv6 client's /64).

    ``X-Forwarded-For`` counts only when the peer is a trusted proxy: then the client is the
    rightmost hop that is not itself a trusted proxy (hops left of it are the client's to
    write); an unparsable hop ends the walk at the last address a trusted proxy vouched for.
    """
    client = scope.get("client")
    peer_text = client[0] if client else ""
    if not peer_text:
        return "-"
    peer = _parse_ip(peer_text)
    if peer is None:
        return peer_text  # not an IP (a test transport's "testclient"): use it as it is
    if trusted_proxies and _trusted(peer, trusted_proxies):
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
        for hop_text in reversed(forwarded.decode("latin-1").split(",")):
            if not hop_text.strip():
                continue
            hop = _parse_ip(hop_text)
            if hop is None:
                break
            peer = hop
            if not _trusted(hop, trusted_proxies):
                break
    return _subject_of(peer)


class RateLimits:
    """The app's limiter (``app.state.rate_limits``); ``clock`` is seconds since the epoch."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.enabled = settings.rate_limits
        self.public_per_minute = settings.public_rate_limit_per_minute
        self.trusted_proxies = self.parse_proxies(settings.trusted_proxies)
        self.memory = MemoryCounters()
        self.counters: Counters = self.memory
        self.clock = clock

    @staticmethod
    def parse_proxies(text: str) -> tuple[Network, ...]:
        """``"10.0.0.0/8, 127.0.0.1"`` → networks; ValueError on a bad entry."""
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",")
            if part.strip()
        )

    def use_redis(self, redis: Redis) -> None:
        self.counters = RedisCounters(redis, self.memory)

    async def _count(self, subject: str, limit: int) -> int | None:
        """Count a request; the seconds to wait when it is over ``limit``, else None."""
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        if await self.counters.incr(subject, window) <= limit:
            return None
        return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))

    async def check_key(self, tenant_id: str, key_prefix: str, limit: int) -> None:
        """Count a request of an API key; raise :class:`RateLimited` past ``limit``."""
        wait = await self._count(f"{tenant_id}:{key_prefix}", limit)
        if wait is not None:
            raise RateLimited(
                f"This API key sent more than {limit} requests this minute (the program's "
                f"rate_limit_per_minute); retry after {wait} s.",
                wait,
            )

    async def check_public(self, scope: Any) -> str:
        """Count a public request by client address; return the address; raise past the limit."""
        address = client_address(scope, self.trusted_proxies)
        if self.enabled:
            wait = await self._count(f"ip:{address}", self.public_per_minute)
            if wait is not None:
                raise RateLimited(
                    f"This address sent more than {self.public_per_minute} requests to public "
                    f"links this minute; retry after {wait} s.",
                    wait,
                )
        return address
