"""Orders, refunds and the ledger: money right to the fen under replays, concurrency, refunds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantKeys, make_tenant
from tests.server.test_referrals import arrive, link_of, register

PAID = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


async def mark_locked_paid(db, tenant_id: str) -> None:
    """What approving then paying settlement ``stl_test`` does to the running totals (the
    tests above lock entries directly)."""
    from server.ledger import totals

    await totals.on_approved(db, tenant_id, "stl_test")
    await totals.on_paid(db, tenant_id, "stl_test")


def chain(tenant: TenantKeys, *names: str, buyer: str = "buyer") -> None:
    """names[0] is the top; buyer is bound under names[-1]."""
    for name in names:
        register(tenant, name)
    for child, parent in zip(names[1:], names, strict=False):
        arrive(tenant, child, link_of(tenant, parent))
    arrive(tenant, buyer, link_of(tenant, names[-1]))


def order(tenant: TenantKeys, order_id: str, amount: int, user: str = "buyer", paid_at=PAID, **kw):
    body = {
        "order_id": order_id,
        "user_id": user,
        "amount_fen": amount,
        "paid_at": paid_at.isoformat(),
    }
    return tenant.post("/v1/orders", body, scope="sdk", **kw)


def refund(tenant: TenantKeys, order_id: str, refund_id: str, amount: int, **kw):
    return tenant.post(
        f"/v1/orders/{order_id}/refunds",
        {"refund_id": refund_id, "amount_fen": amount},
        scope="sdk",
        **kw,
    )


def balance(tenant: TenantKeys, distributor_id: str) -> dict:
    return tenant.get(f"/v1/distributors/{distributor_id}", scope="sdk").json()["balance"]


def ledger_sum(tenant: TenantKeys, distributor_id: str) -> int:
    total, cursor = 0, None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = tenant.get(
            f"/v1/distributors/{distributor_id}/ledger", scope="sdk", params=params
        ).json()
        total += sum(e["amount_fen"] for e in page["entries"] if e["kind"] != "absorbed_reversal")
        cursor = page["next_cursor"]
        if not cursor:
            return total


def test_three_levels_are_credited_with_floor(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000, 550, 333]})
    chain(tenant, "top", "mid", "near")
    response = order(tenant, "o1", 9999)
    assert response.status_code == 201, response.text
    commissions = response.json()["commissions"]
    assert [(c["distributor_id"], c["level"], c["amount_fen"]) for c in commissions] == [
        ("near", 1, 999),
        ("mid", 2, 549),
        ("top", 3, 332),
    ]
    assert all(c["status"] == "available" for c in commissions)  # paid long ago: freeze over
    assert balance(tenant, "near")["available_fen"] == 999


def test_recent_order_is_pending_until_the_freeze_ends(tenant):
    chain(tenant, "near")
    response = order(tenant, "o1", 10000, paid_at=datetime.now(UTC) - timedelta(days=1))
    assert response.json()["commissions"][0]["status"] == "pending"
    assert balance(tenant, "near") == {
        "pending_fen": 1000,
        "available_fen": 0,
        "settled_fen": 0,
        "paid_fen": 0,
    }


def test_unbound_buyer_records_order_without_commission(tenant):
    response = order(tenant, "o1", 5000, user="stranger")
    assert response.status_code == 201
    assert response.json()["commissions"] == []
    assert tenant.get("/v1/orders/o1/explain", scope="sdk").json()["upline"] == []


def test_replay_returns_the_first_result_and_pays_once(tenant):
    chain(tenant, "near")
    first = order(tenant, "o1", 10000)
    again = order(tenant, "o1", 10000)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert ledger_sum(tenant, "near") == 1000


def test_same_order_id_with_another_amount_is_409(tenant):
    chain(tenant, "near")
    order(tenant, "o1", 10000)
    assert order(tenant, "o1", 20000).status_code == 409
    assert ledger_sum(tenant, "near") == 1000


def test_idempotency_key_on_orders(tenant):
    chain(tenant, "near")
    headers = {"Idempotency-Key": "k-1"}
    first = order(tenant, "o1", 10000, headers=headers)
    assert order(tenant, "o1", 10000, headers=headers).json() == first.json()
    assert order(tenant, "o2", 10000, headers=headers).status_code == 409


def test_self_purchase_only_when_enabled(tenant):
    chain(tenant, "top", "me", buyer="someone")
    assert [
        c["distributor_id"] for c in order(tenant, "o1", 10000, user="me").json()["commissions"]
    ] == ["top"]
    tenant.put("/v1/program", {"self_purchase_commission": True})
    commissions = order(tenant, "o2", 10000, user="me").json()["commissions"]
    assert [(c["distributor_id"], c["level"]) for c in commissions] == [("me", 1), ("top", 2)]


def test_lapsed_binding_earns_nothing(tenant):
    tenant.put("/v1/program", {"bind_validity_days": 5})
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"), PAID - timedelta(days=10))
    assert order(tenant, "o1", 10000).json()["commissions"] == []
    assert order(tenant, "o2", 10000, paid_at=PAID - timedelta(days=8)).json()["commissions"] != []


def test_partial_then_full_refund_cancels_to_the_fen(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000, 333]})
    chain(tenant, "mid", "near")
    order(tenant, "o1", 9999)
    first = refund(tenant, "o1", "r1", 3333)
    assert first.status_code == 201, first.text
    assert [r["amount_fen"] for r in first.json()["reversals"]] == [-333, -110]  # 999, 332 credited
    refund(tenant, "o1", "r2", 3333)
    last = refund(tenant, "o1", "r3", 3333).json()
    assert last["refunded_total_fen"] == 9999
    assert ledger_sum(tenant, "near") == 0
    assert ledger_sum(tenant, "mid") == 0


def test_refund_replay_and_conflicts(tenant):
    chain(tenant, "near")
    order(tenant, "o1", 10000)
    first = refund(tenant, "o1", "r1", 4000).json()
    assert refund(tenant, "o1", "r1", 4000).json() == first
    assert refund(tenant, "o1", "r1", 5000).status_code == 409
    over = refund(tenant, "o1", "r2", 6001)
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "amount_fen"
    assert refund(tenant, "missing", "r1", 1).status_code == 404
    assert ledger_sum(tenant, "near") == 600


def test_absorb_clawback_keeps_paid_money_out_of_the_balance(tenant):
    tenant.put("/v1/program", {"clawback": "absorb"})
    chain(tenant, "near")
    order(tenant, "o1", 10000)

    async def settle_everything(db, tenant_id):
        rows = await db.fetch("SELECT id FROM ledger_entries WHERE tenant_id = $1", tenant_id)
        for row in rows:
            await db.execute(
                "INSERT INTO settlement_locks (tenant_id, entry_id, settlement_id, status)"
                " VALUES ($1, $2, 'stl_test', 'paid')",
                tenant_id,
                row["id"],
            )
        await mark_locked_paid(db, tenant_id)

    tenant.call(settle_everything, tenant.tenant_id)
    reversal = refund(tenant, "o1", "r1", 10000).json()["reversals"][0]
    assert reversal["kind"] == "absorbed_reversal"
    assert balance(tenant, "near")["paid_fen"] == 1000
    assert balance(tenant, "near")["available_fen"] == 0


def test_net_off_clawback_leaves_a_negative_available_balance(tenant):
    chain(tenant, "near")
    order(tenant, "o1", 10000)

    async def pay(db, tenant_id):
        row = await db.fetchrow("SELECT id FROM ledger_entries WHERE tenant_id = $1", tenant_id)
        await db.execute(
            "INSERT INTO settlement_locks (tenant_id, entry_id, settlement_id, status)"
            " VALUES ($1, $2, 'stl_test', 'paid')",
            tenant_id,
            row["id"],
        )
        await mark_locked_paid(db, tenant_id)

    tenant.call(pay, tenant.tenant_id)
    refund(tenant, "o1", "r1", 10000)
    assert balance(tenant, "near") == {
        "pending_fen": 0,
        "available_fen": -1000,
        "settled_fen": 0,
        "paid_fen": 1000,
    }


def test_explain_shows_events_snapshot_rates_and_arithmetic(tenant):
    tenant.put("/v1/program", {"bind_mode": "last", "commission_bps": [1000, 500]})
    chain(tenant, "mid", "near")
    order(tenant, "o1", 12345)
    register(tenant, "other")
    arrive(tenant, "buyer", link_of(tenant, "other"))  # re-bound after the order
    refund(tenant, "o1", "r1", 2345)
    explained = tenant.get("/v1/orders/o1/explain", scope="sdk").json()
    assert explained["upline"] == ["near", "mid"]
    assert explained["rates_bps"] == [1000, 500]
    assert explained["commissions"][0]["arithmetic"] == "floor(12345 × 1000 / 10000) = 1234"
    assert [e["credited"] for e in explained["binding_events"]].count(True) == 1
    assert explained["refunds"][0]["reversals"][0]["amount_fen"] == -234
    assert tenant.get("/v1/orders/nope/explain", scope="sdk").status_code == 404


def test_orders_are_tenant_scoped(tenant, other_tenant):
    chain(tenant, "near")
    order(tenant, "o1", 10000)
    assert other_tenant.get("/v1/orders/o1/explain", scope="sdk").status_code == 404
    assert (
        other_tenant.post(
            "/v1/orders/o1/refunds", {"refund_id": "r", "amount_fen": 1}, scope="sdk"
        ).status_code
        == 404
    )
    assert other_tenant.get("/v1/distributors/near/ledger", scope="sdk").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"order_id": "o", "user_id": "u", "amount_fen": 0, "paid_at": PAID.isoformat()},
            "amount_fen",
        ),
        (
            {"order_id": "o", "user_id": "u", "amount_fen": 1.5, "paid_at": PAID.isoformat()},
            "amount_fen",
        ),
        (
            {"order_id": "o", "user_id": "u", "amount_fen": 10, "paid_at": "2026-05-01T10:00:00"},
            "paid_at",
        ),
        (
            {"order_id": "", "user_id": "u", "amount_fen": 10, "paid_at": PAID.isoformat()},
            "order_id",
        ),
        ({"user_id": "u", "amount_fen": 10, "paid_at": PAID.isoformat()}, "order_id"),
    ],
)
def test_bad_orders_are_422_naming_the_field(tenant, body, field):
    response = tenant.post("/v1/orders", body, scope="sdk")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


def test_parallel_posts_of_one_order_credit_once(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000, 500, 100]})
    chain(tenant, "a", "b", "c")
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: order(tenant, "same", 10000), range(50)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert [ledger_sum(tenant, d) for d in ("c", "b", "a")] == [1000, 500, 100]


def test_parallel_distinct_orders_are_all_counted(tenant):
    chain(tenant, "near")
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda n: order(tenant, f"o{n}", 1000), range(200)))
    assert all(r.status_code == 201 for r in responses)
    assert ledger_sum(tenant, "near") == 200 * 100
    assert balance(tenant, "near")["available_fen"] == 200 * 100


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rates=st.lists(st.integers(0, 3000), min_size=1, max_size=3),
    orders=st.lists(
        st.tuples(st.integers(1, 100_000), st.lists(st.integers(1, 100_000), max_size=4)),
        min_size=1,
        max_size=5,
    ),
)
def test_random_orders_and_refunds_keep_the_ledger_consistent(client, rates, orders):
    tenant = make_tenant(client, "prop-orders")
    tenant.put("/v1/program", {"commission_bps": rates})
    chain(tenant, "l3", "l2", "l1")
    expected = {"l1": 0, "l2": 0, "l3": 0}
    earners = ["l1", "l2", "l3"][: len(rates)]
    for n, (amount, refunds) in enumerate(orders):
        credited = {
            c["distributor_id"]: c["amount_fen"]
            for c in order(tenant, f"o{n}", amount).json()["commissions"]
        }
        refunded = 0
        reversed_by = dict.fromkeys(credited, 0)
        for m, r in enumerate(refunds):
            response = refund(tenant, f"o{n}", f"r{m}", r)
            if refunded + r > amount:
                assert response.status_code == 422
                continue
            refunded += r
            for rev in response.json()["reversals"]:
                reversed_by[rev["distributor_id"]] -= rev["amount_fen"]
        for d, c in credited.items():
            assert 0 <= reversed_by[d] <= c  # never reverse more than was credited
            if refunded == amount:
                assert reversed_by[d] == c  # a full refund nets to zero
            expected[d] += c - reversed_by[d]
    for d in earners:
        b = balance(tenant, d)
        assert ledger_sum(tenant, d) == expected[d] == sum(b.values())


@pytest.mark.postgres_only
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rates=st.lists(st.integers(0, 3333), min_size=1, max_size=3),
    amount=st.integers(1, 10**9),
    self_purchase=st.booleans(),
    buyer_is_distributor=st.booleans(),
)
def test_one_statement_and_full_order_paths_agree(client, rates, amount, self_purchase,
                                                  buyer_is_distributor):
    """PostgreSQL credits most orders in one statement; an Idempotency-Key forces the full
    path (upline read, rewards.split_commission, CTE write). They must agree to the fen."""
    results = []
    for key in (None, "force-full-path"):
        tenant = make_tenant(client, "paths")
        program = {"commission_bps": rates, "self_purchase_commission": self_purchase}
        assert tenant.put("/v1/program", program).status_code == 200
        chain(tenant, "l3", "l2", "l1")
        if buyer_is_distributor:
            register(tenant, "buyer")
        headers = {"Idempotency-Key": key} if key else {}
        response = order(tenant, "o1", amount, headers=headers)
        assert response.status_code == 201, response.text
        explained = tenant.get("/v1/orders/o1/explain", scope="sdk").json()
        earners = ("l1", "l2", "l3", "buyer") if buyer_is_distributor else ("l1", "l2", "l3")
        sums = [ledger_sum(tenant, d) for d in earners]
        results.append((response.json()["commissions"], explained["upline"],
                        explained["rates_bps"], sums))
    assert results[0] == results[1]
