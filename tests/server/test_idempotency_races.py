"""One ``Idempotency-Key`` sent concurrently: exactly one request does the work.

Twenty threads share the app's event loop through the test client, so the requests really
overlap in the store (PostgreSQL: separate pooled connections; SQLite: the shared connection).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import TenantKeys
from tests.server.test_orders import chain, ledger_sum, order, refund

RACERS = 20


def race(fn: Any) -> list[Any]:
    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(fn, range(RACERS)))


def test_one_key_with_different_orders_creates_exactly_one(tenant: TenantKeys):
    chain(tenant, "a")
    key = {"Idempotency-Key": "race-orders"}
    responses = race(lambda n: order(tenant, f"race-{n}", 1000, headers=key))
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 1, codes
    assert codes.count(409) == RACERS - 1, codes
    conflict = next(r for r in responses if r.status_code == 409).json()
    assert "Idempotency-Key" in conflict["detail"]
    created = [
        n for n in range(RACERS)
        if tenant.get(f"/v1/orders/race-{n}/explain").status_code == 200
    ]
    assert len(created) == 1
    assert ledger_sum(tenant, "a") == 100  # one order's commission, not several
    winner = next(r for r in responses if r.status_code == 201).json()
    assert winner["order_id"] == f"race-{created[0]}"


def test_one_key_with_the_same_order_replays(tenant: TenantKeys):
    chain(tenant, "a")
    key = {"Idempotency-Key": "race-same"}
    responses = race(lambda _: order(tenant, "same-order", 1000, headers=key))
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert ledger_sum(tenant, "a") == 100


def test_one_key_with_different_refunds_refunds_once(tenant: TenantKeys):
    chain(tenant, "a")
    assert order(tenant, "to-refund", 10000).status_code == 201
    key = {"Idempotency-Key": "race-refunds"}
    responses = race(lambda n: refund(tenant, "to-refund", f"r-{n}", 100, headers=key))
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 1, codes
    assert codes.count(409) == RACERS - 1, codes
    assert ledger_sum(tenant, "a") == 1000 - 10


@pytest.mark.parametrize("path", ["/v1/distributors/racer-{n}", "/v1/distributors/racer"])
def test_one_key_with_different_upserts_writes_once(tenant: TenantKeys, path: str):
    key = {"Idempotency-Key": "race-upserts-" + path[-3:]}
    responses = race(
        lambda n: tenant.put(path.format(n=n), {"nickname": f"n{n}"}, scope="sdk", headers=key)
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, codes
    assert codes.count(409) == RACERS - 1, codes


def test_one_key_on_the_apps_own_loop_creates_exactly_one(tenant: TenantKeys):
    """The same race as tasks on the app's event loop (no threads): requests interleave at
    every await, so on SQLite too each reads before any writes."""
    import asyncio

    import httpx

    chain(tenant, "a")
    headers = tenant.headers("sdk", **{"Idempotency-Key": "race-tasks"})

    async def fire() -> list[int]:
        transport = httpx.ASGITransport(app=tenant.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            responses = await asyncio.gather(
                *(
                    http.post(
                        "/v1/orders",
                        json={"order_id": f"task-{n}", "user_id": "buyer", "amount_fen": 1000,
                              "paid_at": "2026-05-01T10:00:00+00:00"},
                        headers=headers,
                    )
                    for n in range(RACERS)
                )
            )
        return [r.status_code for r in responses]

    with tenant.client.portal() as portal:
        codes = portal.call(fire)
    assert codes.count(201) == 1, codes
    assert codes.count(409) == RACERS - 1, codes
    assert ledger_sum(tenant, "a") == 100
