"""Hostile webhook receivers on loopback (issue 13): a 400 MiB answer, a trickle, URLs the
sender cannot parse. Each case asserts the bound, and that another tenant's delivery still
completes while the abuse runs. Loopback targets need LIEBIAN_WEBHOOK_ALLOW_PRIVATE=1, so the
policy here comes from settings with it set; deadlines are small so the suite stays fast."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from typing import Any

import httpx
import pytest

from server.settings import load_settings
from server.webhooks.delivery import MAX_ATTEMPTS, DeliveryPolicy, attempt, deliver_due
from server.webhooks.outbox import write_outbox
from server.webhooks.worker import WebhookWorker
from tests.abuse.receivers import HUGE_BYTES, receiver

pytestmark = pytest.mark.abuse

ALLOW_PRIVATE = load_settings({"LIEBIAN_WEBHOOK_ALLOW_PRIVATE": "1"}).webhook_allow_private
NEVER_US = 2**62
FAR_FUTURE_US = 2**61
HOUR_US = 3_700_000_000


def policy(**overrides: Any) -> DeliveryPolicy:
    assert ALLOW_PRIVATE  # the receivers are on loopback
    return DeliveryPolicy(allow_private=ALLOW_PRIVATE, **{"deadline": 2.0, **overrides})


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:  # noqa: PTH123 - a /proc file
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def add_endpoint(tenant, url: str) -> str:
    """An endpoint row for ``url`` (written directly: the session app refuses loopback)."""
    endpoint_id = "whe_" + secrets.token_hex(8)

    async def write(db):
        await db.execute(
            "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, events, secret,"
            " created_at_us) VALUES ($1, $2, $3, '[\"settlement.paid\"]', 'whsec_t', 1)",
            tenant.tenant_id, endpoint_id, url,
        )  # fmt: skip

    tenant.call(write)
    return endpoint_id


def enqueue(tenant, endpoint_id: str, count: int = 1) -> None:
    async def write(db):
        async with db.transaction() as tx:
            for n in range(count):
                await write_outbox(tx, tenant.tenant_id, [endpoint_id], f"evt_{n}_{endpoint_id}",
                                   "settlement.paid", f'{{"n": {n}}}', 0)  # fmt: skip

    tenant.call(write)


async def _rows(db, tenant_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT endpoint_id, attempts, next_attempt_at_us, delivered_at_us, last_error"
        " FROM webhook_outbox WHERE tenant_id = $1 ORDER BY id",
        tenant_id,
    )
    keys = ("endpoint_id", "attempts", "next_attempt_at_us", "delivered_at_us", "last_error")
    return [dict(zip(keys, r, strict=True)) for r in rows]


class CountingTransport(httpx.AsyncBaseTransport):
    """A real loopback transport that counts the answer bytes the delivery pulls."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.pulled: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        index = len(self.pulled)
        self.pulled.append(0)
        pulled = self.pulled

        class Counted(httpx.AsyncByteStream):
            async def __aiter__(self):
                async for chunk in response.stream:  # type: ignore[union-attr]
                    pulled[index] += len(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await response.aclose()

        return httpx.Response(response.status_code, headers=response.headers,
                              stream=Counted(), extensions=response.extensions)  # fmt: skip

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("status", [200, 500])
def test_a_400_mib_answer_is_read_a_few_kb_and_memory_stays_flat(tenant, status):
    """200: a delivery, the body is never read. 500: a failure, a few KB kept for last_error."""
    rules = policy(per_tenant=5)
    with receiver("huge", status=status) as (url, stats):
        enqueue(tenant, add_endpoint(tenant, url), 5)
        transport = CountingTransport()

        async def run(db):
            async with httpx.AsyncClient(transport=transport, trust_env=False) as http:
                return await deliver_due(db, http, tenant_id=tenant.tenant_id, policy=rules)

        before = rss_bytes()
        delivered = tenant.call(run)
        growth = rss_bytes() - before
        sent = stats.bytes_sent
    assert delivered == (5 if status == 200 else 0)
    assert len(transport.pulled) == 5
    # at most the kept bytes plus the one socket read that carried them
    assert max(transport.pulled) <= rules.max_response_bytes + 65536, transport.pulled
    assert sent < HUGE_BYTES // 10  # the connection was closed, not drained
    assert growth < 50 * 1024 * 1024, f"RSS grew {growth / 1e6:.1f} MB"
    rows = tenant.call(_rows, tenant.tenant_id)
    if status == 500:
        assert all(r["last_error"].startswith("HTTP 500: xxx") for r in rows)
        assert all(len(r["last_error"]) <= 500 for r in rows)


def test_total_deadline_not_per_byte(tenant):
    """Each byte arrives well within any per-read timeout; the whole answer takes too long."""
    rules = policy(deadline=1.0)
    with receiver("trickle", trickle_every=0.2) as (url, stats):
        enqueue(tenant, add_endpoint(tenant, url))

        async def run(db):
            async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
                started = time.monotonic()
                await deliver_due(db, http, tenant_id=tenant.tenant_id, policy=rules)
                return time.monotonic() - started

        elapsed = tenant.call(run)
        sent = stats.bytes_sent
    (row,) = tenant.call(_rows, tenant.tenant_id)
    assert row["last_error"].startswith("timeout") and row["delivered_at_us"] is None
    assert sent >= 3  # bytes kept coming: a per-read timeout would never have fired
    assert elapsed < rules.deadline + 2.0  # margin for a loaded machine, not per-byte time


class _ReportsItsOwnError(httpx.AsyncBaseTransport):
    """A transport that, cancelled mid-read, raises its own error instead (as httpx can when
    the deadline's cancellation or its own timeout of the same length reaches it)."""

    def __init__(self, after: float | None) -> None:
        self.after = after  # None: fail at once (a real read error)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.after is None:
            raise httpx.ReadError("connection reset by peer")
        try:
            await asyncio.sleep(self.after)
        except asyncio.CancelledError:
            raise httpx.ReadError("") from None
        raise httpx.ReadError("")


@pytest.mark.parametrize(("after", "expected"), [
    (30.0, "timeout: no complete answer within 0.2 s"),  # cancelled at the deadline
    (0.25, "timeout: no complete answer within 0.2 s"),  # its own error, past the deadline
    (None, "ReadError: connection reset by peer"),  # a real read error, before it
])  # fmt: skip
def test_an_attempt_ended_by_the_deadline_is_a_timeout_whatever_the_transport_raised(
    after, expected
):
    async def run() -> str | None:
        async with httpx.AsyncClient(transport=_ReportsItsOwnError(after)) as http:
            return await attempt(http, "http://127.0.0.1:9/hook", "s3cret", b"{}",
                                 policy(deadline=0.2))  # fmt: skip

    assert asyncio.run(run()) == expected


def test_a_trickling_receiver_does_not_delay_another_tenant(tenant, other_tenant):
    """Tenant A: six deliveries to a receiver sending one byte every 3 s. Tenant B: one to a
    healthy receiver. B is delivered while A's attempts hang; A holds at most its K slots
    and its attempts end at the deadline."""
    rules = policy(deadline=2.5, per_tenant=2, concurrency=3)
    with receiver("trickle", trickle_every=3.0) as (slow_url, slow), \
            receiver("ok") as (ok_url, ok):  # fmt: skip
        enqueue(tenant, add_endpoint(tenant, slow_url), 6)
        enqueue(other_tenant, add_endpoint(other_tenant, ok_url))

        async def run(db):
            async with httpx.AsyncClient(timeout=rules.deadline, trust_env=False) as http:
                both = (tenant.tenant_id, other_tenant.tenant_id)
                worker = WebhookWorker(db, http, rules, interval=0.02, tenants=both)
                started = time.monotonic()
                worker.start()
                most_in_flight, b_done, a_at_b = 0, None, None
                try:
                    while time.monotonic() - started < 10:
                        most_in_flight = max(most_in_flight, worker.in_flight[tenant.tenant_id])
                        if b_done is None and (await _rows(db, other_tenant.tenant_id))[0][
                                "delivered_at_us"] is not None:  # fmt: skip
                            b_done = time.monotonic() - started
                            a_at_b = await _rows(db, tenant.tenant_id)
                        a_rows = await _rows(db, tenant.tenant_id)
                        if b_done is not None and any(r["last_error"] for r in a_rows):
                            break
                        await asyncio.sleep(0.02)
                    a_first_end = time.monotonic() - started
                finally:
                    await worker.stop()
                return b_done, a_at_b, a_first_end, most_in_flight

        b_done, a_at_b, a_first_end, most_in_flight = tenant.call(run)
        assert ok.requests == 1
        assert slow.requests >= 1
    assert b_done is not None and b_done < rules.deadline  # B never waited for A's attempts
    assert all(r["last_error"] == "" and r["delivered_at_us"] is None for r in a_at_b)
    assert most_in_flight <= rules.per_tenant
    ended = [r for r in tenant.call(_rows, tenant.tenant_id) if r["last_error"]]
    # A's first attempts end at the deadline; a later one, cut short when the worker stops on
    # a loaded machine, may record another error: the bound is what is tested.
    assert ended and any(r["last_error"].startswith("timeout") for r in ended), ended
    assert a_first_end < rules.deadline + 2.0  # not 3 s per byte times the answer's length


def test_unparseable_urls_are_recorded_and_given_up_without_stopping_the_round(tenant):
    bad = ["http://①②⑦.0.0.1/", "http://0177.0.0.1/"]
    with receiver("ok") as (ok_url, ok):
        good = add_endpoint(tenant, ok_url)
        for endpoint_id in [add_endpoint(tenant, url) for url in bad] + [good]:
            enqueue(tenant, endpoint_id)

        async def run(db, at_us):
            async with httpx.AsyncClient(trust_env=False) as http:
                return await deliver_due(db, http, at_us=at_us, tenant_id=tenant.tenant_id,
                                         policy=policy())  # fmt: skip

        assert tenant.call(run, None) == 1  # the healthy delivery in the same round
        assert ok.requests == 1
        at = FAR_FUTURE_US
        for _ in range(MAX_ATTEMPTS + 2):
            tenant.call(run, at)
            at += 99 * HOUR_US
    rows = [r for r in tenant.call(_rows, tenant.tenant_id) if r["endpoint_id"] != good]
    assert len(rows) == 2
    for row in rows:
        assert row["attempts"] == MAX_ATTEMPTS
        assert row["next_attempt_at_us"] >= NEVER_US
        assert "bad-url" in row["last_error"]
