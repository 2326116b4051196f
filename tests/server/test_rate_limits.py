"""Rate limits: per API key (the tenant's program sets the limit) and per client address on the
public ``/s/{code}`` and ``/p/{token}`` routes; 429 with Retry-After and a problem document.

Every HTTP test runs on both counter stores: in memory (the ``client`` app) and in Redis (the
``redis_client`` app). The limiter's clock is frozen inside a minute of its own, so a test's
window starts empty and "the window resets" is a step of that clock, not a sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

from server.ratelimit import (
    MemoryCounters,
    RateLimits,
    RedisCounters,
    client_address,
    counter_key,
)
from server.settings import SettingsError, load_settings
from tests.conftest import TenantKeys, make_tenant
from tests.server.test_referrals import link_of, register

# A minute far from now (and different per test), 15 s into it: Retry-After is then 45.
_minutes = itertools.count(40_000_000)


class FrozenClock:
    def __init__(self) -> None:
        self.now = next(_minutes) * 60 + 15.0

    def __call__(self) -> float:
        return self.now


APPS = {"memory": "client", "redis": "redis_client", "redis-cluster": "redis_cluster_client"}


@pytest.fixture(autouse=True)
def patient_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about counting, not the give-up: on a loaded machine (a three-server
    cluster beside the suite) a batch must not pass the 0.5 s bound and fall back to memory.
    The give-up has its own test, which sets its own bound."""
    import server.ratelimit

    monkeypatch.setattr(server.ratelimit, "REDIS_TIMEOUT_SECONDS", 10.0)


@pytest.fixture(params=list(APPS))
def api(request: pytest.FixtureRequest) -> Any:
    """The app whose counters live in memory, in Redis, or in a three-master Redis Cluster."""
    return request.getfixturevalue(APPS[request.param])


@pytest.fixture
def limits(api: Any) -> RateLimits:
    limits: RateLimits = api.app.state.rate_limits
    return limits


@pytest.fixture
def clock(limits: RateLimits, monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(limits, "clock", frozen)
    return frozen


_peers = itertools.count(1)


def new_peer() -> str:
    """A client address of its own (198.18.0.0/15 is the benchmarking range)."""
    n = next(_peers)
    return f"198.18.{n // 250}.{n % 250 + 1}"


def from_peer(api: Any, peer: str, paths: list[str], headers: list[dict[str, str]] | None = None):
    """GET each path through the app's ASGI interface with ``peer`` as the client address."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api.app, client=(peer, 50123))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return [
                await http.get(path, headers=(headers[i] if headers else None))
                for i, path in enumerate(paths)
            ]

    with api.portal() as portal:
        return portal.call(send)


def assert_429(response: Any, retry_after: int) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 429
    assert problem["type"].endswith("/rate-limited")
    assert problem["title"] == "Too many requests"
    assert problem["errors"] == []
    assert problem["detail"]
    return problem


# ---------------------------------------------------------------- per API key


def limited_tenant(api: Any, per_minute: int) -> TenantKeys:
    tenant = make_tenant(api, "limited")
    response = tenant.put("/v1/program", {"rate_limit_per_minute": per_minute})
    assert response.status_code == 200, response.text
    assert response.json()["rate_limit_per_minute"] == per_minute
    return tenant


def test_a_key_over_its_limit_gets_429_with_retry_after(api, limits, monkeypatch):
    tenant = limited_tenant(api, 3)
    other = make_tenant(api, "unlimited")
    clock = FrozenClock()
    monkeypatch.setattr(limits, "clock", clock)

    for _ in range(3):
        assert tenant.get("/v1/program").status_code == 200
    problem = assert_429(tenant.get("/v1/program"), retry_after=45)
    assert "rate_limit_per_minute" in problem["detail"]
    assert tenant.get("/v1/distributors").status_code == 429  # every route of the key
    # Another key of the same tenant, and another tenant, have budgets of their own.
    assert tenant.get("/v1/program", scope="sdk").status_code == 200
    assert other.get("/v1/program").status_code == 200

    clock.now += 44.0  # 1 s before the window ends: still refused, Retry-After counts down
    assert_429(tenant.get("/v1/program"), retry_after=1)
    clock.now += 1.0  # the next minute: a new window
    assert tenant.get("/v1/program").status_code == 200


def test_raising_the_limit_applies_at_once(api, limits, clock):
    tenant = limited_tenant(api, 1)
    clock.now += 60  # a window of its own
    assert tenant.get("/v1/program", scope="sdk").status_code == 200
    assert tenant.get("/v1/program", scope="sdk").status_code == 429
    assert tenant.put("/v1/program", {"rate_limit_per_minute": 10}).status_code == 200
    assert tenant.get("/v1/program", scope="sdk").status_code == 200


def test_program_limit_defaults_and_bounds(client):
    tenant = make_tenant(client, "bounds")
    assert tenant.get("/v1/program").json()["rate_limit_per_minute"] == 6000
    for bad in (0, -1, 1_000_001, "many", None):  # (strict integers: the money work)
        response = tenant.put("/v1/program", {"rate_limit_per_minute": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"] == "rate_limit_per_minute"
    assert tenant.put("/v1/program", {"rate_limit_per_minute": 1_000_000}).status_code == 200


def test_disabled_limits_never_refuse(client, monkeypatch):
    limits: RateLimits = client.app.state.rate_limits
    monkeypatch.setattr(limits, "clock", FrozenClock())
    monkeypatch.setattr(limits, "enabled", False)
    tenant = limited_tenant(client, 1)
    assert all(tenant.get("/v1/program").status_code == 200 for _ in range(3))


# ---------------------------------------------------------------- public routes, per address


def test_share_link_is_limited_per_client_address(api, limits, clock, monkeypatch):
    monkeypatch.setattr(limits, "public_per_minute", 3)
    tenant = make_tenant(api, "public")
    register(tenant, "amy")
    path = "/s/" + link_of(tenant, "amy")["code"]
    peer, neighbour = new_peer(), new_peer()

    answers = from_peer(api, peer, [path] * 4)
    assert [r.status_code for r in answers] == [302, 302, 302, 429]
    assert_429(answers[-1], retry_after=45)
    assert from_peer(api, neighbour, [path])[0].status_code == 302
    clock.now += 45
    assert from_peer(api, peer, [path])[0].status_code == 302


def test_signed_poster_route_is_limited_per_client_address(api, limits, clock, monkeypatch):
    monkeypatch.setattr(limits, "public_per_minute", 2)
    peer = new_peer()
    # Refused before the token is even checked: a flood of bad tokens costs no verification.
    answers = from_peer(api, peer, ["/p/not-a-token"] * 3)
    assert [r.status_code for r in answers] == [404, 404, 429]
    assert_429(answers[2], retry_after=45)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(api, limits, clock, monkeypatch):
    monkeypatch.setattr(limits, "public_per_minute", 2)
    peer = new_peer()
    spoofed = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(4)]
    answers = from_peer(api, peer, ["/s/NoSuchCode"] * 4, spoofed)
    assert [r.status_code for r in answers] == [404, 404, 429, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(api, limits, clock, monkeypatch):
    monkeypatch.setattr(limits, "public_per_minute", 2)
    proxy = new_peer()
    monkeypatch.setattr(limits, "trusted_proxies", RateLimits.parse_proxies(proxy + "/32"))
    first = {"X-Forwarded-For": "203.0.113.7"}
    second = {"X-Forwarded-For": "203.0.113.7, 203.0.113.8"}  # the proxy appended .8
    answers = from_peer(api, proxy, ["/s/NoSuchCode"] * 3, [first] * 3)
    assert [r.status_code for r in answers] == [404, 404, 429]
    assert from_peer(api, proxy, ["/s/NoSuchCode"], [second])[0].status_code == 404


# ---------------------------------------------------------------- the client address


def scope_of(peer: str | None, forwarded: str | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"client": (peer, 1) if peer else None, "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("198.51.100.1", None, "", "198.51.100.1"),
        ("198.51.100.1", "203.0.113.9", "", "198.51.100.1"),  # not a trusted proxy
        ("10.0.0.2", "203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", "1.1.1.1, 203.0.113.9, 10.0.0.3", "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", "10.0.0.5, 10.0.0.3", "10.0.0.0/8", "10.0.0.5"),  # all hops trusted
        ("10.0.0.2", "not-an-ip, 203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", "203.0.113.9, garbage", "10.0.0.0/8", "10.0.0.2"),  # stop at garbage
        ("10.0.0.2", "", "10.0.0.0/8", "10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", None, "", "2001:db8:1:2::/64"),  # one subscriber's /64
        ("::ffff:198.51.100.4", None, "", "198.51.100.4"),
        ("testclient", None, "", "testclient"),
        (None, None, "", "-"),
    ],
)
def test_client_address(peer, forwarded, trusted, expected):
    proxies = RateLimits.parse_proxies(trusted)
    assert client_address(scope_of(peer, forwarded), proxies) == expected


# ---------------------------------------------------------------- settings and memory


def test_settings_of_the_limiter():
    default = load_settings({})
    assert default.rate_limits is True
    assert default.public_rate_limit_per_minute == 600
    assert default.trusted_proxies == ""
    custom = load_settings(
        {
            "LIEBIAN_RATE_LIMITS": "0",
            "LIEBIAN_PUBLIC_RATE_LIMIT_PER_MINUTE": "30",
            "LIEBIAN_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
        }
    )
    assert custom.rate_limits is False and custom.public_rate_limit_per_minute == 30
    limits = RateLimits(custom)
    assert limits.enabled is False and limits.public_per_minute == 30
    assert len(limits.trusted_proxies) == 2
    for variable, value in (
        ("LIEBIAN_RATE_LIMITS", "maybe"),
        ("LIEBIAN_PUBLIC_RATE_LIMIT_PER_MINUTE", "0"),
        ("LIEBIAN_PUBLIC_RATE_LIMIT_PER_MINUTE", "lots"),
        ("LIEBIAN_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("LIEBIAN_TRUSTED_PROXIES", "proxy.internal"),
    ):
        with pytest.raises(SettingsError) as info:
            load_settings({variable: value})
        assert info.value.variable == variable


def test_create_app_wires_the_settings(settings):
    import msgspec

    from server.app import create_app

    app = create_app(
        msgspec.structs.replace(settings, public_rate_limit_per_minute=7, rate_limits=False)
    )
    assert app.state.rate_limits.public_per_minute == 7
    assert app.state.rate_limits.enabled is False


def test_memory_counters_are_bounded_and_forget_old_windows():
    counters = MemoryCounters(max_subjects=3)

    def incr(subject: str, window: int) -> int:
        return asyncio.run(counters.incr(subject, window))

    assert [incr("a", 1) for _ in range(3)] == [1, 2, 3]
    assert incr("b", 1) == 1
    assert incr("c", 1) == 1
    # A fourth subject in the same window is past the bound: not counted, let through.
    assert incr("d", 1) == 0
    assert incr("a", 1) == 4  # known subjects still count
    assert counters.size == 3
    # The next window starts empty: the previous one is dropped whole.
    assert incr("d", 2) == 1
    assert counters.size == 1


@pytest.mark.parametrize("app", ["redis_client", "redis_cluster_client"])
def test_redis_counters_batch_concurrent_requests_and_are_shared_by_workers(
    request, app, monkeypatch
):
    from redis.asyncio import Redis

    import server.ratelimit
    from server.redisconn import connect_redis

    # What is tested is batching and sharing, not the give-up: a loaded machine (a cluster of
    # three servers beside the suite) must not push a batch past the 0.5 s bound into memory.
    monkeypatch.setattr(server.ratelimit, "REDIS_TIMEOUT_SECONDS", 10.0)

    settings = request.getfixturevalue(app).app.state.settings
    window = next(_minutes)

    async def run() -> tuple[list[int], int, int, list[int]]:
        redis = await connect_redis(settings)
        one, two = RedisCounters(redis, MemoryCounters()), RedisCounters(redis, MemoryCounters())
        # Connections open and the script loaded first: on a fresh cluster that is a round trip
        # to every master, which on a loaded machine can pass the limiter's 0.5 s give-up.
        await one.incr("warm-up", window)
        round_trips = 0  # batches (on a cluster, a batch is one round trip per hash slot)
        totals = one._totals

        async def counted(*args: Any) -> Any:
            nonlocal round_trips
            round_trips += 1
            return await totals(*args)

        one._totals = counted  # type: ignore[method-assign]
        counts = await asyncio.gather(
            *(one.incr("shared", window) for _ in range(50)),
            *(two.incr("shared", window) for _ in range(50)),
            one.incr("other", window),
            *(one.incr(f"tn_{n}:lb_sdk_x", window) for n in range(20)),  # other tenants
        )
        ttl = await redis.ttl(counter_key("shared", window))
        await redis.aclose()
        # Redis unreachable (nothing listens on loopback port 1): counted in memory instead.
        broken = RedisCounters(Redis.from_url("redis://127.0.0.1:1/0"), MemoryCounters())
        fallback = [await broken.incr("shared", window) for _ in range(3)]
        return counts, round_trips, ttl, fallback

    counts, round_trips, ttl, fallback = asyncio.run(run())
    assert sorted(counts[:100]) == list(range(1, 101))  # two workers, one count
    assert counts[100:] == [1] * 21
    assert round_trips < 10  # 51 requests of one worker, counted in a few batches
    assert 60 < ttl <= 120
    assert fallback == [1, 2, 3]


def test_a_slow_redis_is_given_up_and_counted_in_memory(monkeypatch):
    import server.ratelimit

    class SlowRedis:
        def register_script(self, _: str) -> Any:
            async def hangs(**_: Any) -> list[int]:
                await asyncio.sleep(30)
                return [1]

            return hangs

    monkeypatch.setattr(server.ratelimit, "REDIS_TIMEOUT_SECONDS", 0.05)
    counters = RedisCounters(SlowRedis(), MemoryCounters())  # type: ignore[arg-type]

    async def run() -> list[int]:
        return list(await asyncio.gather(*(counters.incr("slow", 7) for _ in range(3))))

    assert asyncio.run(run()) == [1, 2, 3]


# ---------------------------------------------------------------- share-link clicks


def test_clicks_count_once_per_address_and_link_whatever_the_user_agent(
    api, limits, clock, monkeypatch
):
    # Clicks are counted per minute of the clock: a run that crosses a minute would count twice.
    middle_of_a_minute = (int(time.time()) // 60 * 60 + 30) * 1_000_000
    monkeypatch.setattr("server.referrals.controller.now_us", lambda: middle_of_a_minute)
    tenant = make_tenant(api, "clicks")
    register(tenant, "amy")
    register(tenant, "bo")
    amy, bo = link_of(tenant, "amy")["code"], link_of(tenant, "bo")["code"]
    peer, neighbour = new_peer(), new_peer()
    agents = [{"User-Agent": f"phone-{n}"} for n in range(300)]
    answers = from_peer(api, peer, [f"/s/{amy}"] * 300, agents)
    assert {r.status_code for r in answers} == {302}
    from_peer(api, neighbour, [f"/s/{amy}", f"/s/{bo}"])
    from_peer(api, peer, [f"/s/{bo}"])
    assert tenant.get(f"/v1/links/{amy}", scope="sdk").json()["clicks"] == 2
    assert tenant.get(f"/v1/links/{bo}", scope="sdk").json()["clicks"] == 2
