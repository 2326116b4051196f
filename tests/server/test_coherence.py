"""The invalidation bus (server/coherence.py): messages drop registered caches, a subscriber
that loses Redis reconnects (and meanwhile the node serves on, with the caches' TTLs), and
nothing a publisher sends can do more than drop a cache."""

from __future__ import annotations

import asyncio
import time

import pytest

from server import coherence
from tests.redis_servers import redis_server, start, stop


@pytest.fixture
def dropped():
    calls: list[tuple[str, str]] = []
    unregister = coherence.register("program", lambda t, k: calls.append((t, k)))
    yield calls
    unregister()


async def _until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_malformed_oversized_and_unknown_messages_drop_nothing(dropped):
    coherence.Subscriber.handle(b"not json")
    coherence.Subscriber.handle(b'{"kind": "program"}')  # no tenant
    coherence.Subscriber.handle(b'{"kind": "nuke", "tenant_id": "t"}')
    big = b'{"kind": "program", "tenant_id": "' + b"t" * coherence.MAX_MESSAGE_BYTES + b'"}'
    coherence.Subscriber.handle(big)
    coherence.Subscriber.handle(12)
    assert dropped == []
    coherence.Subscriber.handle(b'{"kind": "program", "tenant_id": "t", "key": "k"}')
    assert dropped == [("t", "k")]


def test_unknown_kinds_are_refused_where_registered_or_published():
    with pytest.raises(ValueError, match="unknown invalidation kind"):
        coherence.register("nuke", lambda t, k: None)
    with pytest.raises(ValueError, match="unknown invalidation kind"):
        asyncio.run(coherence.publish_invalidation("nuke", "t"))


def test_without_redis_a_write_drops_only_the_local_copy(dropped):
    previous = coherence.install_publisher(None)
    try:
        asyncio.run(coherence.publish_invalidation("program", "tn_1"))
    finally:
        coherence.install_publisher(previous)
    assert dropped == [("tn_1", "")]


def test_a_subscriber_that_loses_redis_reconnects_and_starts_clean(dropped, tmp_path):
    from redis.asyncio import Redis

    with redis_server(tmp_path) as (port, process):

        async def scenario() -> None:
            nonlocal process
            redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)
            publisher = coherence.Publisher(redis, "liebian:test:coherence")
            previous = coherence.install_publisher(publisher)
            subscriber = coherence.Subscriber(
                Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1),
                "liebian:test:coherence",
            )
            subscriber.start()
            try:
                assert await _until(subscriber.subscribed.is_set, 5)
                dropped.clear()
                await redis.publish(
                    "liebian:test:coherence",
                    b'{"kind": "program", "tenant_id": "tn_a", "key": ""}',
                )
                assert await _until(lambda: ("tn_a", "") in dropped, 0.1)
                stop(process)  # Redis goes away
                assert await _until(lambda: not subscriber.subscribed.is_set(), 10)
                dropped.clear()
                # Writes go on: the local copy is dropped, the failed publish is only logged.
                await coherence.publish_invalidation("program", "tn_b")
                assert dropped == [("tn_b", "")]
                process = start(port, tmp_path)  # Redis comes back on the same port
                dropped.clear()
                assert await _until(subscriber.subscribed.is_set, 15)
                assert ("*", "") in dropped  # everything cached before is dropped
                await coherence.publish_invalidation("program", "tn_c")
                assert await _until(lambda: dropped.count(("tn_c", "")) == 2, 0.1)
            finally:
                await subscriber.stop()
                coherence.install_publisher(previous)
                await subscriber.redis.aclose()
                await redis.aclose()

        try:
            asyncio.run(scenario())
        finally:
            stop(process)


def test_redis_settings_name_a_cluster_and_a_channel():
    from server.settings import SettingsError, load_settings

    plain = load_settings({"LIEBIAN_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (plain.redis_cluster, plain.redis_channel) == (False, "liebian:invalidate")
    by_url = load_settings({"LIEBIAN_REDIS_URL": "redis+cluster://127.0.0.1:7000"})
    assert by_url.redis_cluster
    by_flag = load_settings(
        {"LIEBIAN_REDIS_URL": "redis://127.0.0.1:7000", "LIEBIAN_REDIS_CLUSTER": "1"}
    )
    assert by_flag.redis_cluster
    named = load_settings({"LIEBIAN_REDIS_CHANNEL": "shop-a:invalidate"})
    assert named.redis_channel == "shop-a:invalidate"
    with pytest.raises(SettingsError, match="LIEBIAN_REDIS_CHANNEL"):
        load_settings({"LIEBIAN_REDIS_CHANNEL": "x" * 101})
    with pytest.raises(SettingsError, match="LIEBIAN_REDIS_URL"):
        load_settings({"LIEBIAN_REDIS_URL": "http://127.0.0.1:7000"})
    with pytest.raises(SettingsError, match="LIEBIAN_REDIS_CLUSTER"):
        load_settings({"LIEBIAN_REDIS_CLUSTER": "maybe"})


def test_cluster_keys_of_a_tenant_share_one_hash_slot():
    from redis.crc import key_slot

    from server.campaigns.redis_board import _held_key, _keys
    from server.ratelimit import counter_key

    board, members = _keys("tn_1", "cp_1", "2026-06")
    other_board, _ = _keys("tn_1", "cp_2", "all")
    slots = {key_slot(k.encode()) for k in (board, members, other_board, _held_key("tn_1"))}
    assert len(slots) == 1  # one script reads a board with the tenant's held set
    assert key_slot(counter_key("tn_1:lb_sdk_a", 1).encode()) == key_slot(
        counter_key("tn_1:lb_admin_b", 2).encode()
    )
    assert counter_key("ip:10.0.0.1", 7) == "rl:{ip:10.0.0.1}:7"
