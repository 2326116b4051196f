"""'Retry now': a waiting or failed delivery is sent at once, never twice with the worker.

The receiver is a real HTTP server on loopback (127.0.0.1) that counts what it gets per
event; the deliveries use a policy that allows private addresses (this test's receiver only).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from server.errors import Conflict
from server.webhooks.deliveries import NEVER_US
from server.webhooks.delivery import MAX_ATTEMPTS, DeliveryPolicy, claim, deliver_due, deliver_row
from server.webhooks.retry import retry_delivery
from tests.server.test_webhooks import insert_endpoint, paid_order

LOOPBACK = DeliveryPolicy(allow_private=True, deadline=10.0)


class FakeReceiver:
    """Answers ``status`` (503 until told otherwise); ``hold`` makes it wait for ``release``."""

    def __init__(self) -> None:
        self.status = 503
        self.received: Counter[str] = Counter()
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                import json

                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received[json.loads(body)["id"]] += 1
                receiver.arrived.set()
                receiver.release.wait(10)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    fake = FakeReceiver()
    yield fake
    fake.close()


def _outbox_row(tenant: Any) -> dict[str, Any]:
    async def read(db: Any) -> Any:
        return await db.fetchrow(
            "SELECT id, endpoint_id, attempts, next_attempt_at_us, delivered_at_us,"
            " lease_until_us FROM webhook_outbox WHERE tenant_id = $1",
            tenant.tenant_id,
        )

    row = tenant.call(read)
    keys = ("id", "endpoint_id", "attempts", "next_attempt_at_us", "delivered_at_us", "lease")
    return dict(zip(keys, row, strict=True))


def _retry(tenant: Any, row: dict[str, Any]) -> Any:
    async def run(db: Any) -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await retry_delivery(
                db, http, LOOPBACK, tenant.tenant_id, row["endpoint_id"], row["id"]
            )

    return tenant.call(run)


def _one_delivery(tenant: Any, receiver: FakeReceiver) -> dict[str, Any]:
    insert_endpoint(tenant, receiver.url)
    paid_order(tenant)
    return _outbox_row(tenant)


def test_retry_now_sends_a_waiting_delivery_at_once(tenant: Any, receiver: FakeReceiver) -> None:
    row = _one_delivery(tenant, receiver)

    async def round_(db: Any) -> int:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await deliver_due(db, http, tenant_id=tenant.tenant_id, policy=LOOPBACK)

    assert tenant.call(round_) == 0  # the receiver answered 503: waiting for its backoff
    waiting = _outbox_row(tenant)
    assert waiting["lease"] is None and waiting["attempts"] == 1
    receiver.status = 204
    delivery = _retry(tenant, row)
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert list(receiver.received.values()) == [2]  # the failed attempt and this one
    with pytest.raises(Conflict, match="already delivered"):
        _retry(tenant, row)
    assert tenant.call(round_) == 0  # the worker has nothing left to send
    assert list(receiver.received.values()) == [2]


def test_retry_now_refuses_a_delivery_in_flight(tenant: Any, receiver: FakeReceiver) -> None:
    """The worker claimed it (its lease is live): retry now is a 409 and sends nothing."""
    row = _one_delivery(tenant, receiver)
    receiver.status = 204

    async def claim_only(db: Any) -> Any:
        rows = await claim(db, row["next_attempt_at_us"], LOOPBACK, 1, Counter(),
                           (tenant.tenant_id,))  # fmt: skip
        return rows[0]

    claimed = tenant.call(claim_only)
    assert _outbox_row(tenant)["lease"] == claimed.lease_until_us
    with pytest.raises(Conflict, match="being sent right now"):
        _retry(tenant, row)
    assert not receiver.received

    async def finish(db: Any) -> bool:
        async with httpx.AsyncClient(trust_env=False) as http:
            return await deliver_row(db, http, claimed, LOOPBACK)

    assert tenant.call(finish) is True
    assert list(receiver.received.values()) == [1]
    assert _outbox_row(tenant)["lease"] is None


def test_worker_skips_a_delivery_retry_now_is_sending(tenant: Any, receiver: FakeReceiver) -> None:
    """Retry now holds the row while its request is at the receiver: a worker round made at
    that moment, even far in the future, claims nothing; the event arrives once."""
    row = _one_delivery(tenant, receiver)
    receiver.status = 204
    receiver.release.clear()

    async def race(db: Any) -> tuple[Any, int]:
        async with httpx.AsyncClient(trust_env=False) as http:
            retry = asyncio.create_task(
                retry_delivery(db, http, LOOPBACK, tenant.tenant_id, row["endpoint_id"], row["id"])
            )
            await asyncio.to_thread(receiver.arrived.wait, 10)
            sent = await deliver_due(db, http, tenant_id=tenant.tenant_id, policy=LOOPBACK)
            receiver.release.set()
            return await retry, sent

    delivery, sent_by_worker = tenant.call(race)
    assert sent_by_worker == 0
    assert delivery.status == "delivered"
    assert list(receiver.received.values()) == [1]


def test_a_given_up_delivery_can_be_retried(tenant: Any, receiver: FakeReceiver) -> None:
    row = _one_delivery(tenant, receiver)

    async def give_up(db: Any) -> None:
        await db.execute(
            "UPDATE webhook_outbox SET attempts = $2, next_attempt_at_us = $3 WHERE id = $1",
            row["id"], MAX_ATTEMPTS, NEVER_US,
        )  # fmt: skip

    tenant.call(give_up)
    failed = _retry(tenant, row)  # the receiver still answers 503
    assert failed.status == "failed" and "HTTP 503" in failed.last_error
    receiver.status = 204
    assert _retry(tenant, row).status == "delivered"
    assert list(receiver.received.values()) == [2]


def test_retry_route_answers_the_outcome_and_keeps_tenants_apart(
    tenant: Any, other_tenant: Any, receiver: FakeReceiver
) -> None:
    """Through the API (whose sender refuses loopback addresses, so the outcome is a recorded
    refusal): the delivery comes back with its status; another tenant's is a 404."""
    row = _one_delivery(tenant, receiver)
    path = f"/v1/webhook-endpoints/{row['endpoint_id']}/deliveries"
    listed = tenant.get(path)
    assert listed.status_code == 200, listed.text
    assert [d["status"] for d in listed.json()["deliveries"]] == ["pending"]
    retried = tenant.post(f"{path}/{row['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 1
    assert "refused" in retried.json()["last_error"]
    assert not receiver.received
    assert other_tenant.post(f"{path}/{row['id']}/retry").status_code == 404
    assert other_tenant.get(path).status_code == 404
    assert tenant.post(f"{path}/999999999/retry").status_code == 404
