"""Withdrawals (提现): rules, locks, batches, export, paid; and with settlements, every fen once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import TenantKeys
from tests.server.test_orders import balance, ledger_sum, order
from tests.server.test_referrals import arrive, link_of, register
from tests.server.test_totals import _differences
from tests.server.test_webhooks import endpoint

PAID = datetime.now(UTC) - timedelta(days=1)
RULES = {"min_fen": 100, "fee_bps": 100, "cooldown_seconds": 0}


def setup(tenant: TenantKeys, amounts=(10_000, 5_000), **rules) -> None:
    body = {"commission_bps": [1000], "freeze_days": 0, "withdrawal": RULES | rules}
    assert tenant.put("/v1/program", body).status_code == 200
    register(tenant, "d")
    arrive(tenant, "buyer", link_of(tenant, "d"))
    for n, amount in enumerate(amounts):
        assert order(tenant, f"o{n}", amount, paid_at=PAID).status_code == 201


def verified(tenant: TenantKeys) -> None:
    """The maintained totals (liebian ledger verify) agree with the ledger and the locks."""
    assert tenant.call(_differences, tenant.tenant_id) == []


def ask(tenant: TenantKeys, amount: int, who: str = "d", **kw):
    return tenant.post(f"/v1/distributors/{who}/withdrawals", {"amount_fen": amount},
                       scope="sdk", **kw)  # fmt: skip


def test_request_locks_takes_the_fee_and_keeps_the_change(tenant):
    setup(tenant)
    hook = endpoint(tenant, ["withdrawal.requested", "withdrawal.approved", "withdrawal.paid"])
    assert balance(tenant, "d")["available_fen"] == 1500
    response = ask(tenant, 1200, headers={"Idempotency-Key": "w-1"})
    assert response.status_code == 201, response.text
    w = response.json()
    assert (w["amount_fen"], w["fee_fen"], w["net_fen"], w["status"]) == (
        1200,
        12,
        1188,
        "requested",
    )
    assert ask(tenant, 1200, headers={"Idempotency-Key": "w-1"}).json() == w  # replay
    assert balance(tenant, "d") == {"pending_fen": 0, "available_fen": 300, "settled_fen": 1188,
                                    "paid_fen": 0}  # fmt: skip
    assert ledger_sum(tenant, "d") == 1500 - 12
    kinds = {
        e["kind"] for e in tenant.get("/v1/distributors/d/ledger", scope="sdk").json()["entries"]
    }
    assert {"withdrawal_fee", "withdrawal_split"} <= kinds
    approved = tenant.post("/v1/withdrawals/approve", {"ids": [w["id"]]}).json()
    assert approved["withdrawals"][0]["status"] == "approved"
    csv = tenant.get("/v1/withdrawals/export.csv", params={"status": "approved"})
    assert csv.status_code == 200 and csv.content.startswith("\ufeff".encode())
    text = csv.content.decode("utf-8-sig")
    assert f"{w['id']},d,d,1200,12.00,12,0.12,1188,11.88,approved," in text
    paid = tenant.post("/v1/withdrawals/paid", {"references": {w["id"]: "wx-9"}}).json()
    assert paid["withdrawals"][0] | {"paid_at": None} == paid["withdrawals"][0] | {
        "status": "paid", "transfer_ref": "wx-9", "paid_at": None}  # fmt: skip
    assert balance(tenant, "d")["paid_fen"] == 1188
    verified(tenant)
    again = tenant.post("/v1/withdrawals/paid", {"references": {w["id"]: "wx-9"}})
    assert again.status_code == 200
    assert (
        tenant.post("/v1/withdrawals/paid", {"references": {w["id"]: "other"}}).status_code == 409
    )

    async def events(db, tenant_id):
        rows = await db.fetch(
            "SELECT event_type FROM webhook_outbox WHERE tenant_id = $1 AND endpoint_id = $2"
            " ORDER BY id", tenant_id, hook["id"])  # fmt: skip
        return [r[0] for r in rows]

    assert tenant.call(events, tenant.tenant_id) == [
        "withdrawal.requested", "withdrawal.approved", "withdrawal.paid"]  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "amount", "status", "field"),
    [
        ({}, 99, 422, "amount_fen"),  # below min_fen
        ({}, 1501, 422, "amount_fen"),  # over the available balance
        ({"max_per_day_fen": 1000}, 1001, 422, "amount_fen"),
        ({"fee_bps": 10_000}, 200, 422, "amount_fen"),  # nothing left after the fee
    ],
)
def test_rules_refuse_naming_the_field(tenant, rules, amount, status, field):
    setup(tenant, **rules)
    response = ask(tenant, amount)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field
    assert balance(tenant, "d")["available_fen"] == 1500  # nothing half-written


def test_daily_cap_cooldown_disabled_held_and_scopes(tenant, other_tenant):
    setup(tenant, max_per_day_fen=700, cooldown_seconds=3600)
    assert ask(tenant, 500).status_code == 201
    cooling = ask(tenant, 100)
    assert cooling.status_code == 409 and cooling.json()["errors"][0]["field"] == "distributor_id"
    tenant.put(
        "/v1/program", {"commission_bps": [1000], "withdrawal": RULES | {"max_per_day_fen": 700}}
    )
    over = ask(tenant, 300)
    assert (
        over.status_code == 422
        and "at most 200 fen more today" in over.json()["errors"][0]["message"]
    )
    tenant.put("/v1/program", {"commission_bps": [1000]})
    assert ask(tenant, 100).status_code == 409  # no withdrawal rules: none taken
    tenant.put("/v1/program", {"commission_bps": [1000], "withdrawal": RULES})
    register(tenant, "d", status="held")
    assert ask(tenant, 100).status_code == 409
    assert tenant.post("/v1/withdrawals/approve", {"ids": ["x"]}, scope="sdk").status_code == 403
    assert other_tenant.get("/v1/distributors/d/withdrawals", scope="sdk").status_code == 404
    mine = tenant.get("/v1/distributors/d/withdrawals", scope="sdk").json()["withdrawals"]
    theirs = other_tenant.post("/v1/withdrawals/approve", {"ids": [mine[0]["id"]]})
    assert theirs.status_code == 422 and theirs.json()["errors"][0]["field"] == "ids"


def test_reject_unlocks_and_returns_the_fee(tenant):
    setup(tenant)
    w = ask(tenant, 1000).json()
    assert tenant.post("/v1/withdrawals/reject", {"ids": [w["id"]]}).status_code == 422  # reason
    rejected = tenant.post("/v1/withdrawals/reject", {"ids": [w["id"]], "reason": "账户异常"})
    assert rejected.json()["withdrawals"][0]["status"] == "rejected"
    assert balance(tenant, "d")["available_fen"] == 1500 and ledger_sum(tenant, "d") == 1500
    verified(tenant)
    assert tenant.post("/v1/withdrawals/approve", {"ids": [w["id"]]}).status_code == 409
    # Everything is due again: a settlement takes it all.
    draft = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()}).json()
    assert draft["total_fen"] == 1500


def test_settlement_skips_withdrawn_entries_and_never_pays_them_twice(tenant):
    setup(tenant)
    before = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()}).json()
    assert before["total_fen"] == 1500
    w = ask(tenant, 1000).json()
    # The older draft covers entries the withdrawal now holds: its approval is refused.
    assert tenant.post(f"/v1/settlements/{before['id']}/approve").status_code == 409
    after = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()}).json()
    assert after["total_fen"] == 500  # only the change
    assert tenant.post(f"/v1/settlements/{after['id']}/approve").status_code == 200
    assert balance(tenant, "d") == {"pending_fen": 0, "available_fen": 0,
                                    "settled_fen": 500 + w["net_fen"], "paid_fen": 0}  # fmt: skip
    verified(tenant)


def test_concurrent_withdrawals_and_settlements_pay_every_fen_once(tenant):
    setup(tenant, amounts=[1_000 * (n + 1) for n in range(30)])  # 46500 fen of commission
    total = balance(tenant, "d")["available_fen"]
    now = datetime.now(UTC).isoformat()

    def settle(_: int) -> int:
        draft = tenant.post("/v1/settlements", {"cutoff": now}).json()
        approved = tenant.post(f"/v1/settlements/{draft['id']}/approve")
        return draft["total_fen"] if approved.status_code == 200 else 0

    def withdraw(n: int) -> int:
        response = ask(tenant, 500 + n)
        return response.json()["net_fen"] if response.status_code == 201 else 0

    def more(n: int) -> int:  # new due entries arrive while both compete
        assert order(tenant, f"late{n}", 3_000, paid_at=PAID).status_code == 201
        return 0

    jobs_by_n = [settle, more, withdraw, withdraw]
    with ThreadPoolExecutor(max_workers=12) as pool:
        jobs = [pool.submit(jobs_by_n[n % 4], n) for n in range(40)]
        outcomes = [job.result() for job in jobs]
    paid_out = sum(outcomes)
    assert paid_out > 0
    total += 10 * 300  # the late orders' commission
    now_balance = balance(tenant, "d")
    fees = total - ledger_sum(tenant, "d")
    # What settlements and withdrawals promise is exactly what the locks hold: nothing twice,
    # nothing lost; the rest is still available.
    assert paid_out == now_balance["settled_fen"]
    assert paid_out + now_balance["available_fen"] + fees == total
    assert now_balance["available_fen"] >= 0

    async def locked_twice(db, tenant_id):
        return await db.fetchval(
            "SELECT COUNT(*) FROM (SELECT entry_id FROM settlement_locks WHERE tenant_id = $1"
            " GROUP BY entry_id HAVING COUNT(*) > 1) AS t", tenant_id)  # fmt: skip

    assert tenant.call(locked_twice, tenant.tenant_id) == 0
    verified(tenant)
