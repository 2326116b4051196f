"""Cache coherence between nodes: a changed key, program, campaign, template or webhook
endpoint is announced on Redis, and every node drops its cached copy at once.

Each in-process cache registers a *drop* callback for its kind (:func:`register`); a write calls
:func:`publish_invalidation` ``(kind, tenant_id, key)``, which drops the local copy at once and,
when ``LIEBIAN_REDIS_URL`` is set, publishes ``{"kind", "tenant_id", "key"}`` (JSON) on the
deployment's channel (``LIEBIAN_REDIS_CHANNEL``) once the surrounding transaction commits.
Every node runs one :class:`Subscriber` (started in the app's lifespan) that calls the
callbacks of each message it hears; a message reaches the other nodes in about a millisecond.

Without Redis, or while a node has lost it, the caches keep their normal lifetimes (2-5 s, see
each cache), so a node never serves older data than it would alone. The subscriber
reconnects with a growing pause (0.1 s doubling to 5 s) and, on each (re)subscription, drops
every cache: messages sent while it was away are lost, so nothing cached before is trusted.

A tenant id of ``"*"`` means every tenant (a drop callback must honour it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from server.db import Connection
    from server.settings import Settings

__all__ = [
    "ALL",
    "KINDS",
    "Publisher",
    "Subscriber",
    "coherent",
    "drop_all",
    "drop_local",
    "install_publisher",
    "publish_invalidation",
    "register",
]

ALL = "*"
KINDS = ("api_key", "program", "campaigns", "poster_template", "webhook_endpoints")
#: A published message larger than this is ignored (a bound on what a subscriber decodes).
MAX_MESSAGE_BYTES = 1024
PUBLISH_TIMEOUT_SECONDS = 0.5
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0

Drop = Callable[[str, str], None]
_log = logging.getLogger("liebian.coherence")
_drops: dict[str, list[Drop]] = {kind: [] for kind in KINDS}


class Message(msgspec.Struct, frozen=True):
    kind: str
    tenant_id: str
    key: str = ""


_decoder = msgspec.json.Decoder(Message)
_encoder = msgspec.json.Encoder()


def register(kind: str, drop: Drop) -> Callable[[], None]:
    """Call ``drop(tenant_id, key)`` whenever ``kind`` is invalidated; return the unregister."""
    if kind not in _drops:
        raise ValueError(f"unknown invalidation kind {kind!r}; one of {KINDS}")
    _drops[kind].append(drop)

    def unregister() -> None:
        with contextlib.suppress(ValueError):
            _drops[kind].remove(drop)

    return unregister


def drop_local(kind: str, tenant_id: str, key: str = "") -> None:
    for drop in list(_drops.get(kind, ())):
        try:
            drop(tenant_id, key)
        except Exception:  # one broken cache must not keep the others stale
            _log.exception("cache drop of %s failed", kind)


def drop_all() -> None:
    for kind in KINDS:
        drop_local(kind, ALL)


class Publisher:
    """Publishes invalidations on the deployment's channel; never fails the caller."""

    def __init__(self, redis: Any, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        # A Redis connection belongs to the event loop that opened it. A server process has
        # one loop; a test process may run several apps, each on a loop of its own.
        self.loop = asyncio.get_running_loop()

    async def publish(self, kind: str, tenant_id: str, key: str) -> None:
        payload = _encoder.encode(Message(kind, tenant_id, key))
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await self.redis.publish(self.channel, payload)
        except Exception as exc:  # the other nodes fall back on their caches' lifetimes
            _log.warning("invalidation of %s not published (Redis: %s)", kind, exc)


_publisher: Publisher | None = None


def install_publisher(publisher: Publisher | None) -> Publisher | None:
    """Set the process's publisher (None: local drops only); return the previous one."""
    global _publisher
    previous, _publisher = _publisher, publisher
    return previous


async def publish_invalidation(
    kind: str, tenant_id: str, key: str = "", tx: Connection | None = None
) -> None:
    """Drop ``kind``'s cached copy here now, and on every node once ``tx`` (if any) commits.

    The local copy is dropped again after the commit: a request that read the old row between
    this call and the commit must not keep it cached.
    """
    if kind not in _drops:
        raise ValueError(f"unknown invalidation kind {kind!r}")
    drop_local(kind, tenant_id, key)

    async def publish() -> None:
        publisher = _publisher
        if publisher is not None and publisher.loop is asyncio.get_running_loop():
            await publisher.publish(kind, tenant_id, key)

    async def after_commit() -> None:
        drop_local(kind, tenant_id, key)
        await publish()

    if tx is not None and tx.in_transaction:
        tx.after_commit(after_commit)
    else:
        await publish()


class Subscriber:
    """Listens on the channel and drops what each message names; reconnects with back-off."""

    def __init__(self, redis: Any, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        pause = RECONNECT_MIN_SECONDS
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                drop_all()  # whatever was published while unsubscribed is lost
                if not self.subscribed.is_set():
                    _log.info("listening for cache invalidations on %s", self.channel)
                self.subscribed.set()
                pause = RECONNECT_MIN_SECONDS
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        await pubsub.ping()  # notice a dead connection while idle
                    elif message.get("type") == "message":
                        self.handle(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed.is_set():
                    _log.warning("cache invalidations lost (Redis: %s); reconnecting", exc)
                self.subscribed.clear()
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    @staticmethod
    def handle(data: Any) -> None:
        if not isinstance(data, bytes | str) or len(data) > MAX_MESSAGE_BYTES:
            return
        try:
            message = _decoder.decode(data)
        except msgspec.DecodeError:
            _log.warning("ignored a malformed invalidation message")
            return
        if message.kind in _drops:
            drop_local(message.kind, message.tenant_id, message.key)


@contextlib.asynccontextmanager
async def coherent(settings: Settings, *, subscribe: bool = True) -> Any:
    """Publish (and, with ``subscribe``, listen for) invalidations while inside; no-op
    without ``LIEBIAN_REDIS_URL``."""
    if not settings.redis_url:
        yield None
        return
    from server.redisconn import pubsub_client

    redis = pubsub_client(settings)
    publisher = Publisher(redis, settings.redis_channel)
    previous = install_publisher(publisher)
    subscriber = Subscriber(redis, settings.redis_channel) if subscribe else None
    if subscriber is not None:
        subscriber.start()
    try:
        yield subscriber
    finally:
        if subscriber is not None:
            await subscriber.stop()
        if _publisher is publisher:
            install_publisher(previous)
        await redis.aclose()
