"""PostgreSQL writes the orders that arrive together in one statement (server.orders.batch):
they must credit exactly what one order at a time credits, to the fen, and fall back to the
full path whenever the batch cannot write an order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from rewards.commission import split_commission
from server.db import PostgresDatabase
from server.orders import batch as batch_module
from tests.conftest import TenantKeys
from tests.server.test_orders import balance, chain, ledger_sum, order
from tests.server.test_referrals import arrive, link_of

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch written while the test runs."""
    sizes: list[int] = []
    write = batch_module.OrderBatcher._write

    async def spy(self: Any, key: Any, batch: Any) -> None:
        sizes.append(len(batch))
        await write(self, key, batch)

    monkeypatch.setattr(batch_module.OrderBatcher, "_write", spy)
    return sizes


def _parallel(tenant: TenantKeys, jobs: list[tuple[str, str, int]]) -> list[Any]:
    """Orders paid just now (an order already mature when reported is not batched)."""
    now = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(lambda j: order(tenant, j[0], j[2], user=j[1], paid_at=now), jobs))


def _expected(upline: list[str], rates: list[int], amount: int) -> list[tuple[str, int, int]]:
    if not upline:
        return []
    amounts = split_commission(amount, rates[: len(upline)])
    pairs = enumerate(zip(upline, amounts, strict=True), 1)
    return [(d, level, a) for level, (d, a) in pairs if a > 0]


def _got(response: Any) -> list[tuple[str, int, int]]:
    assert response.status_code == 201, response.text
    return [(c["distributor_id"], c["level"], c["amount_fen"])
            for c in response.json()["commissions"]]  # fmt: skip


def test_concurrent_orders_are_batched_and_credit_as_one_at_a_time(tenant, batch_sizes):
    rates = [1000, 500, 200]
    body = {"commission_bps": rates, "self_purchase_commission": True, "freeze_days": 7}
    assert tenant.put("/v1/program", body).status_code == 200
    chain(tenant, "a", "b", "c")  # buyer -> c -> b -> a
    arrive(tenant, "x1", link_of(tenant, "a"))
    # c buys for itself: an active distributor with self-purchase earns level 1 (the cap: 3)
    uplines = {"buyer": ["c", "b", "a"], "x1": ["a"], "loner": [], "c": ["c", "b", "a"]}
    jobs = [(f"o{n}", user, 1000 + 37 * n) for n, user in enumerate(list(uplines) * 40)]
    responses = _parallel(tenant, jobs)
    sums = {"a": 0, "b": 0, "c": 0}
    for (_, user, amount), response in zip(jobs, responses, strict=True):
        want = _expected(uplines[user], rates, amount)
        assert _got(response) == want
        assert {c["status"] for c in response.json()["commissions"]} <= {"pending"}
        for d, _, a in want:
            sums[d] += a
    assert max(batch_sizes) > 1, batch_sizes  # they were written together
    assert sum(batch_sizes) == len(jobs)
    for d, total in sums.items():
        assert ledger_sum(tenant, d) == total == sum(balance(tenant, d).values())
    explained = tenant.get("/v1/orders/o0/explain", scope="sdk").json()
    assert (explained["upline"], explained["rates_bps"]) == (["c", "b", "a"], rates)
    assert tenant.get("/v1/orders/o1/explain", scope="sdk").json()["upline"] == ["a"]


def test_one_order_id_sent_many_times_at_once_is_written_once(tenant, batch_sizes):
    assert tenant.put("/v1/program", {"commission_bps": [1000]}).status_code == 200
    chain(tenant, "a")
    # the same id, two bodies: one of them is written; its copies replay, the others are 409
    jobs = [("dup", "buyer", 1000 if n % 2 else 2000) for n in range(40)]
    responses = _parallel(tenant, jobs)
    written = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}
    amounts = {job[2] for job, r in zip(jobs, responses, strict=True) if r.status_code == 201}
    assert len(amounts) == 1 and len({r.content for r in written}) == 1
    (amount,) = amounts
    assert ledger_sum(tenant, "a") == amount // 10
    assert all(r.status_code == 409 for job, r in zip(jobs, responses, strict=True)
               if job[2] != amount)  # fmt: skip


def test_tiered_rates_in_a_batch(tenant, batch_sizes):
    tiers = [{"name": "member", "commission_bps": [1000, 500]},
             {"name": "gold", "commission_bps": [2000, 800]}]  # fmt: skip
    body = {"commission_bps": [1000, 500], "tiers": tiers, "freeze_days": 0}
    assert tenant.put("/v1/program", body).status_code == 200
    chain(tenant, "top", "mid")  # buyer -> mid -> top
    assert tenant.put("/v1/distributors/top/tier", {"name": "gold"}).status_code == 200
    jobs = [(f"t{n}", "buyer", 10_000 + n) for n in range(60)]
    responses = _parallel(tenant, jobs)
    for (_, _, amount), response in zip(jobs, responses, strict=True):
        # mid (member) at level 1: 1000 bps; top (gold) at level 2: gold's 800 bps
        assert _got(response) == [("mid", 1, amount * 1000 // 10000),
                                  ("top", 2, amount * 800 // 10000)]  # fmt: skip
        assert {c["status"] for c in response.json()["commissions"]} == {"available"}
    assert max(batch_sizes) > 1, batch_sizes


def test_a_failed_batch_writes_nothing_and_each_order_takes_the_full_path(
    tenant, batch_sizes, monkeypatch: pytest.MonkeyPatch
):
    assert tenant.put("/v1/program", {"commission_bps": [1000, 500]}).status_code == 200
    chain(tenant, "a", "b")

    async def dropped(self: Any) -> Any:
        raise ConnectionError("the batch connection dropped")

    monkeypatch.setattr(PostgresDatabase, "batch_pool", dropped)  # batch_connection's pool
    responses = _parallel(tenant, [(f"f{n}", "buyer", 2000) for n in range(20)])
    assert sum(batch_sizes) == 20  # every order went into a batch, and every batch failed
    for response in responses:
        assert _got(response) == [("b", 1, 200), ("a", 2, 100)]
    assert ledger_sum(tenant, "b") == 20 * 200 and ledger_sum(tenant, "a") == 20 * 100


def test_batched_and_full_path_orders_agree(tenant, batch_sizes):
    """An Idempotency-Key sends an order down the full path (upline read, rewards, CTE)."""
    body = {"commission_bps": [1200, 700, 300], "self_purchase_commission": True}
    assert tenant.put("/v1/program", body).status_code == 200
    chain(tenant, "a", "b", "c")
    jobs = [(f"p{n}", user, 999 + 101 * n) for n, user in enumerate(["buyer", "c", "b"] * 10)]
    batched = _parallel(tenant, jobs)
    for (order_id, user, amount), response in zip(jobs, batched, strict=True):
        full = order(tenant, f"full-{order_id}", amount, user=user, paid_at=datetime.now(UTC),
                     headers={"Idempotency-Key": f"k-{order_id}"})  # fmt: skip
        assert _got(response) == _got(full)
