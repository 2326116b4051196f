"""Redis clients from the settings: one server, or a Redis Cluster.

``LIEBIAN_REDIS_URL=redis://host:port/db`` is one server (or a proxy in front of several);
``redis+cluster://host:port`` (or ``LIEBIAN_REDIS_CLUSTER=1`` with a ``redis://`` URL) is a
Redis Cluster, reached through redis-py's cluster client from that seed node (it discovers the
others). Every multi-key script and pipeline the service sends keeps its keys in one hash slot
(hash tags: ``{tenant_id}`` in leaderboard keys, ``{subject}`` in rate-limit keys), so it runs
unchanged on a cluster.

Pub/sub (cache invalidation, :mod:`server.coherence`) uses a plain connection to one node:
PUBLISH on a cluster is broadcast to every node, so a subscriber on any node hears them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from server.settings import Settings

__all__ = [
    "is_cluster",
    "plain_url",
    "pubsub_client",
    "redis_client",
    "connect_redis",
    "seed_urls",
    "sync_redis_client",
]


def plain_url(url: str) -> str:
    """``url`` with a ``+cluster`` scheme suffix removed (redis-py knows only redis/rediss)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.removesuffix("+cluster")))


def seed_urls(url: str) -> list[str]:
    """The node URL(s) named by ``url`` (db 0: a cluster has only db 0)."""
    parts = urlsplit(plain_url(url))
    return [urlunsplit(parts._replace(path=""))]


def redis_client(settings: Settings) -> Any:
    """An asyncio client: ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``."""
    if not settings.redis_url:
        raise ValueError("LIEBIAN_REDIS_URL is not set")
    if settings.redis_cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(seed_urls(settings.redis_url)[0])
    from redis.asyncio import Redis

    return Redis.from_url(settings.redis_url)


def sync_redis_client(settings: Settings) -> Any:
    """The blocking counterpart of :func:`redis_client` (CLI, benchmarks)."""
    if not settings.redis_url:
        raise ValueError("LIEBIAN_REDIS_URL is not set")
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(seed_urls(settings.redis_url)[0])
    from redis import Redis

    return Redis.from_url(settings.redis_url)


def pubsub_client(settings: Settings) -> Redis:
    """A plain asyncio connection for PUBLISH/SUBSCRIBE (one node of a cluster will do)."""
    from redis.asyncio import Redis

    if not settings.redis_url:
        raise ValueError("LIEBIAN_REDIS_URL is not set")
    url = seed_urls(settings.redis_url)[0] if settings.redis_cluster else settings.redis_url
    return Redis.from_url(url, socket_connect_timeout=2.0, health_check_interval=5)


def is_cluster(redis: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(redis, RedisCluster)


async def connect_redis(settings: Settings) -> Any:
    """:func:`redis_client`, ready: a cluster client learns the slot map here, before any
    command. (redis-py 8.1's asyncio cluster client, when several first commands race to
    initialise it, sends some on connections not yet open: ``AttributeError: 'NoneType'
    object has no attribute 'writelines'``; an app serves concurrent requests from the start.)
    """
    client = redis_client(settings)
    if is_cluster(client):
        await client.initialize()
    return client
