"""Maturity checkpoints (server.ledger.maturity): a balance read sums only the entries matured
since the tenant's checkpoint, and equals the sum over the ledger on either side of it."""

from __future__ import annotations

from typing import Any

from tests.server.test_referrals import arrive, link_of, register
from tests.server.test_totals import DAY, DAY_US, _differences, now, profile

LAG_US = 120_000_000


def _us(moment: Any) -> int:
    return int(moment.timestamp()) * 1_000_000


def _order(tenant: Any, order_id: str, amount: int, days_ago: float, **kw: Any) -> None:
    body = {"order_id": order_id, "user_id": "buyer", "amount_fen": amount,
            "paid_at": (now() - days_ago * DAY).isoformat()}
    assert tenant.post("/v1/orders", body, scope="sdk", **kw).status_code == 201


def _chain(tenant: Any) -> None:
    tenant.put("/v1/program", {"freeze_days": 7, "commission_bps": [1000, 500]})
    register(tenant, "top")
    register(tenant, "near")
    arrive(tenant, "near", link_of(tenant, "top"))
    arrive(tenant, "buyer", link_of(tenant, "near"))


async def _both(db: Any, tenant_id: str, d: str, at_us: int) -> tuple[dict, dict]:
    from server.ledger.balances import balance_by_scan, balance_of

    return (await balance_of(db, tenant_id, d, at_us),
            await balance_by_scan(db, tenant_id, d, at_us))


async def _advance(db: Any, tenant_id: str | None, at_us: int, batch: int) -> int:
    from server.ledger.maturity import advance_maturity

    return await advance_maturity(db, tenant_id, at_us=at_us, batch=batch)


async def _state(db: Any, tenant_id: str) -> tuple[int | None, dict[str, int]]:
    checkpoint = await db.fetchval(
        "SELECT checkpoint_us FROM maturity_checkpoints WHERE tenant_id = $1", tenant_id
    )
    rows = await db.fetch(
        "SELECT distributor_id, SUM(matured_fen) FROM distributor_totals WHERE tenant_id = $1"
        " GROUP BY distributor_id",
        tenant_id,
    )
    return checkpoint, {r[0]: int(r[1]) for r in rows}


def test_batches_move_matured_entries_and_balances_agree_on_both_sides(tenant):
    _chain(tenant)
    for i, days in enumerate([30, 20, 10, 8, 6, 3, 1, 0]):
        _order(tenant, f"o{i}", 10_000 + i, days)
    # an hour ahead of the app's own maintenance step (which may run meanwhile), one entry a
    # batch (its ties go with it: an order's two entries)
    target = _us(now()) + 3600 * 1_000_000
    assert tenant.call(_advance, tenant.tenant_id, target, 1) >= 1
    checkpoint, matured = tenant.call(_state, tenant.tenant_id)
    assert checkpoint == target - LAG_US
    # the four orders paid 8 or more days ago are due (7-day freeze); 10% to near, 5% to top
    assert matured == {
        "near": sum((10_000 + i) * 1000 // 10000 for i in range(4)),
        "top": sum((10_000 + i) * 500 // 10000 for i in range(4)),
    }
    assert tenant.call(_differences, tenant.tenant_id) == []
    # before the checkpoint, at it, between it and now, and after every freeze window
    for at in (target - 5 * DAY_US, target - LAG_US, target, target + 8 * DAY_US):
        for d in ("near", "top"):
            mine, scan = tenant.call(_both, tenant.tenant_id, d, at)
            assert mine == scan, (d, at)
    assert tenant.call(_advance, tenant.tenant_id, target, 1) == 0  # nothing new: no-op


def test_an_order_already_mature_when_written_is_booked_as_matured(tenant):
    """Late-reported orders take the transaction path (also on PostgreSQL) and book their
    entries into matured_fen when the checkpoint already covers them."""
    _chain(tenant)
    _order(tenant, "early", 10_000, 2)
    tenant.call(_advance, tenant.tenant_id, _us(now()), 5000)
    _order(tenant, "late", 20_000, 20)  # due 13 days ago, before the checkpoint
    _checkpoint, matured = tenant.call(_state, tenant.tenant_id)
    assert matured["near"] == 2000
    assert tenant.call(_differences, tenant.tenant_id) == []
    assert profile(tenant, "near")["balance"] == {
        "pending_fen": 1000, "available_fen": 2000, "settled_fen": 0, "paid_fen": 0,
    }


def test_settlements_and_refunds_after_the_checkpoint_keep_the_balance(tenant):
    _chain(tenant)
    _order(tenant, "a", 10_000, 20)
    _order(tenant, "b", 30_000, 1)
    tenant.call(_advance, tenant.tenant_id, _us(now()), 5000)
    created = tenant.post("/v1/settlements", {"cutoff": now().isoformat()})
    sid = created.json()["id"]
    assert tenant.post(f"/v1/settlements/{sid}/approve").status_code == 200
    assert tenant.post(f"/v1/settlements/{sid}/paid", {"references": {}}).status_code == 200
    for order_id in ("a", "b"):
        refund = {"refund_id": f"r-{order_id}", "amount_fen": 5_000}
        assert tenant.post(f"/v1/orders/{order_id}/refunds", refund, scope="sdk").status_code == 201
    tenant.call(_advance, tenant.tenant_id, _us(now() + 10 * DAY), 2)
    assert tenant.call(_differences, tenant.tenant_id) == []
    at = _us(now())
    for d in ("near", "top"):
        mine, scan = tenant.call(_both, tenant.tenant_id, d, at)
        assert mine == scan, d


def test_verify_reports_and_fixes_a_drifted_matured_total(tenant):
    from server.ledger.reconcile import verify

    _chain(tenant)
    _order(tenant, "o", 10_000, 20)
    tenant.call(_advance, tenant.tenant_id, _us(now()), 5000)

    async def drift(db: Any, tenant_id: str) -> None:
        await db.execute(
            "UPDATE distributor_totals SET matured_fen = matured_fen - 3"
            " WHERE tenant_id = $1 AND distributor_id = 'near'",
            tenant_id,
        )

    tenant.call(drift, tenant.tenant_id)
    diffs = tenant.call(_differences, tenant.tenant_id)
    assert [(d["id"], d["stored"]["matured_fen"], d["recomputed"]["matured_fen"]) for d in diffs] \
        == [("near", 997, 1000)]

    async def fix(db: Any, tenant_id: str) -> int:
        return len([d async for d in verify(db, tenant_id, fix=True)])

    assert tenant.call(fix, tenant.tenant_id) == 1
    assert tenant.call(_differences, tenant.tenant_id) == []


def test_the_maintenance_step_skips_tenants_with_nothing_to_mature(tenant):
    _chain(tenant)
    at = _us(now())
    tenant.call(_advance, None, at, 5000)  # every tenant: this one has nothing due yet
    assert tenant.call(_state, tenant.tenant_id)[0] is None
    _order(tenant, "o", 10_000, 20)
    tenant.call(_advance, None, at, 5000)
    assert tenant.call(_state, tenant.tenant_id)[0] >= at - LAG_US
