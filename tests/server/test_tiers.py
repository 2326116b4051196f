"""Tiers: rates by the earner's tier, promotion on events, demotion by an operator only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantKeys, make_tenant
from tests.server.test_orders import order, refund
from tests.server.test_recruitment import outbox_events
from tests.server.test_referrals import arrive, link_of, register
from tests.server.test_webhooks import endpoint

BASE = {"name": "member", "commission_bps": [1000, 500]}
GOLD = {"name": "gold", "commission_bps": [2000, 800]}


def program(tenant: TenantKeys, tiers: list[dict], **extra) -> dict:
    body = {"commission_bps": [1000, 500], "tiers": tiers, "freeze_days": 0, **extra}
    response = tenant.put("/v1/program", body)
    assert response.status_code == 200, response.text
    return response.json()


def profile(tenant: TenantKeys, name: str) -> dict:
    return tenant.get(f"/v1/distributors/{name}", scope="sdk").json()


def earned(response) -> dict[str, int]:
    assert response.status_code == 201, response.text
    return {c["distributor_id"]: c["amount_fen"] for c in response.json()["commissions"]}


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ([BASE, {"name": "gold", "commission_bps": [2000]}], "tiers[1].commission_bps"),
        ([BASE, {"name": "gold", "commission_bps": [9000, 1500]}], "tiers[1].commission_bps"),
        ([BASE, {"name": "gold", "commission_bps": [900, 600]}], "tiers[1].commission_bps"),
        ([BASE, {"name": "member", "commission_bps": [2000, 800]}], "tiers[1].name"),
        ([{"name": "x", "commission_bps": [100, 100, 100, 100]}], "tiers[0].commission_bps"),
    ],
)
def test_every_tier_keeps_the_caps(tenant, tiers, field):
    body = {"commission_bps": [1000, 500], "tiers": tiers}
    if len(tiers[0]["commission_bps"]) == 4:
        body["commission_bps"] = [100, 100, 100, 100]
    response = tenant.put("/v1/program", body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] in (field, "commission_bps")


def test_each_level_earns_at_its_earners_tier_and_explain_shows_it(tenant):
    program(tenant, [BASE, GOLD])
    for name in ("top", "mid"):
        register(tenant, name)
    arrive(tenant, "mid", link_of(tenant, "top"))
    arrive(tenant, "buyer", link_of(tenant, "mid"))
    assert earned(order(tenant, "o1", 10_000)) == {"mid": 1000, "top": 500}
    promoted = tenant.put("/v1/distributors/mid/tier", {"name": "gold"})
    assert promoted.status_code == 200 and promoted.json()["tier_name"] == "gold"
    assert earned(order(tenant, "o2", 10_000)) == {"mid": 2000, "top": 500}
    explained = tenant.get("/v1/orders/o2/explain", scope="sdk").json()
    assert explained["rates_bps"] == [2000, 500]
    assert [c["rate_bps"] for c in explained["commissions"]] == [2000, 500]
    # The first order keeps the rate it was recorded with.
    assert tenant.get("/v1/orders/o1/explain", scope="sdk").json()["rates_bps"] == [1000, 500]


def test_promotion_on_team_size_then_operator_demotion(tenant):
    gold = GOLD | {"promote_when": {"team_size_l1": 2}}
    program(tenant, [BASE, gold])
    register(tenant, "amy")
    assert profile(tenant, "amy")["tier_name"] == "member"
    arrive(tenant, "u1", link_of(tenant, "amy"))
    assert profile(tenant, "amy")["tier_level"] == 0
    arrive(tenant, "u2", link_of(tenant, "amy"))
    assert (profile(tenant, "amy")["tier_level"], profile(tenant, "amy")["tier_name"]) == (
        1,
        "gold",
    )
    assert earned(order(tenant, "o1", 10_000, user="u1")) == {"amy": 2000}
    # Only an operator demotes; the sdk key cannot; an unknown tier is a 422 naming it.
    assert (
        tenant.put("/v1/distributors/amy/tier", {"name": "member"}, scope="sdk").status_code == 403
    )
    bad = tenant.put("/v1/distributors/amy/tier", {"name": "platinum"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "name"
    assert tenant.put("/v1/distributors/nobody/tier", {"name": "member"}).status_code == 404
    demoted = tenant.put("/v1/distributors/amy/tier", {"name": "member"}).json()
    assert demoted["tier_level"] == 0
    # Demotion sticks until an event can promote again (a third invitee).
    assert earned(order(tenant, "o2", 10_000, user="u2")) == {"amy": 1000}
    arrive(tenant, "u3", link_of(tenant, "amy"))
    assert profile(tenant, "amy")["tier_level"] == 1


def test_promotion_on_team_and_own_sales(tenant):
    silver = {"name": "silver", "commission_bps": [1500, 600],
              "promote_when": {"team_sales_fen": 30_000, "team_sales_days": 30}}  # fmt: skip
    gold = GOLD | {"promote_when": {"own_sales_fen": 5_000}}
    program(tenant, [BASE, silver, gold])
    register(tenant, "bo")
    arrive(tenant, "u1", link_of(tenant, "bo"))
    recent, old = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) - timedelta(days=40)
    order(tenant, "o0", 50_000, user="u1", paid_at=old)  # outside the 30-day window
    assert profile(tenant, "bo")["tier_name"] == "member"
    order(tenant, "o1", 20_000, user="u1", paid_at=recent)
    refund(tenant, "o1", "r1", 5_000)
    assert earned(order(tenant, "o2", 10_000, user="u1", paid_at=recent)) == {"bo": 1000}
    assert profile(tenant, "bo")["tier_name"] == "member"  # 25000 net: not yet
    order(tenant, "o3", 5_000, user="u1", paid_at=recent)
    assert profile(tenant, "bo")["tier_name"] == "silver"
    assert earned(order(tenant, "o4", 10_000, user="u1", paid_at=recent)) == {"bo": 1500}
    order(tenant, "o5", 5_000, user="bo", paid_at=recent)  # own sales reach gold
    assert profile(tenant, "bo")["tier_name"] == "gold"


def test_tier_changes_send_one_webhook_each(tenant):
    """A promotion by an order writes distributor.tier_changed with the tier change (once,
    however many later orders still qualify); an operator's change says so."""
    silver = {"name": "silver", "commission_bps": [1500, 600],
              "promote_when": {"team_sales_fen": 20_000}}  # fmt: skip
    program(tenant, [BASE, silver])
    hook = endpoint(tenant, ["distributor.tier_changed"])
    register(tenant, "ida")
    arrive(tenant, "u1", link_of(tenant, "ida"))
    order(tenant, "o1", 15_000, user="u1")
    assert outbox_events(tenant, hook) == []
    order(tenant, "o2", 5_000, user="u1")  # 20000: silver
    order(tenant, "o3", 5_000, user="u1")
    assert profile(tenant, "ida")["tier_name"] == "silver"
    assert tenant.put("/v1/distributors/ida/tier", {"name": "member"}).status_code == 200
    assert tenant.put("/v1/distributors/ida/tier", {"name": "member"}).status_code == 200
    change = {"distributor_id": "ida", "from_level": 0, "from_tier": "member", "to_level": 1,
              "to_tier": "silver"}  # fmt: skip
    back = {"distributor_id": "ida", "from_level": 1, "from_tier": "silver", "to_level": 0,
            "to_tier": "member", "via": "operator"}  # fmt: skip
    assert outbox_events(tenant, hook) == [
        ("distributor.tier_changed", change | {"via": "promotion", "order_id": "o2"}),
        ("distributor.tier_changed", back),
    ]
    # The next qualifying order promotes again: a new event.
    order(tenant, "o4", 1_000, user="u1")
    assert outbox_events(tenant, hook)[-1] == (
        "distributor.tier_changed", change | {"via": "promotion", "order_id": "o4"})  # fmt: skip


def test_sales_figures_are_the_sum_of_every_shard(tenant):
    """Each pooled connection writes its own shard of a distributor's daily figures; a
    promotion reads their sum (here a row of shard 99, which no connection of this
    process writes: shards are 0-31)."""
    silver = {"name": "silver", "commission_bps": [1500, 600],
              "promote_when": {"team_sales_fen": 20_000, "team_sales_days": 7}}  # fmt: skip
    program(tenant, [BASE, silver])
    register(tenant, "jo")
    arrive(tenant, "u1", link_of(tenant, "jo"))
    now = datetime.now(UTC)
    order(tenant, "o1", 1_000, user="u1", paid_at=now)
    day = int(now.timestamp()) // 86_400

    async def other_shard(db, tenant_id):
        await db.execute(
            "INSERT INTO tier_sales (tenant_id, distributor_id, day, shard, team_fen, own_fen)"
            " VALUES ($1, 'jo', $2, 99, 18000, 0)", tenant_id, day)  # fmt: skip
        return await db.fetchval(
            "SELECT COUNT(DISTINCT shard) FROM tier_sales WHERE tenant_id = $1", tenant_id
        )

    assert tenant.call(other_shard, tenant.tenant_id) >= 1
    assert profile(tenant, "jo")["tier_name"] == "member"  # 19000
    order(tenant, "o2", 1_000, user="u1", paid_at=now)  # 20000 across shards
    assert profile(tenant, "jo")["tier_name"] == "silver"


def test_no_tiers_is_todays_behaviour(tenant):
    register(tenant, "cy")
    arrive(tenant, "u1", link_of(tenant, "cy"))
    assert earned(order(tenant, "o1", 10_000, user="u1")) == {"cy": 1000}
    assert profile(tenant, "cy")["tier_name"] is None


TIERS = [
    {"name": "t0", "commission_bps": [500, 200]},
    {"name": "t1", "commission_bps": [800, 300], "promote_when": {"team_size_l1": 2}},
    {"name": "t2", "commission_bps": [1500, 300], "promote_when": {"team_sales_fen": 20_000}},
    {"name": "t3", "commission_bps": [3000, 1000], "promote_when": {"own_sales_fen": 15_000}},
]
PEOPLE = ["a", "b", "c", "d", "e"]
event = st.one_of(
    st.tuples(st.just("bind"), st.sampled_from(PEOPLE), st.sampled_from(PEOPLE)),
    st.tuples(st.just("order"), st.sampled_from(PEOPLE), st.integers(1, 12_000)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 12_000)),
    st.tuples(st.just("demote"), st.sampled_from(PEOPLE), st.sampled_from(["t0", "t1"])),
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(events=st.lists(event, min_size=5, max_size=25))
def test_promotion_never_lowers_a_rate_already_recorded(client, events):
    """Recorded entries never change, each is paid at its earner's tier of that moment
    (rewards.tiers.rates_for, on both engines' order paths), and promotion never lowers a rate."""
    tenant = make_tenant(client, "tiers-property")
    program(tenant, TIERS)
    for name in PEOPLE:
        register(tenant, name)
    recorded: dict[tuple[str, int], int] = {}  # (order, level) -> amount
    orders: list[tuple[str, int]] = []
    refunded: dict[str, int] = {}
    for n, (kind, x, y) in enumerate(events):
        levels = {p: profile(tenant, p)["tier_level"] for p in PEOPLE}
        if kind == "bind" and x != y:
            arrive(tenant, x, link_of(tenant, y))
        elif kind == "order":
            upline = profile_upline(tenant, x)
            response = order(tenant, f"o{n}", y, user=x)
            got = {c["level"]: (c["distributor_id"], c["amount_fen"])
                   for c in response.json()["commissions"]}  # fmt: skip
            expected = {}
            for level, earner in enumerate(upline, 1):
                rate = TIERS[levels[earner]]["commission_bps"][level - 1]
                if y * rate // 10_000:
                    expected[level] = (earner, y * rate // 10_000)
            assert got == expected
            for level, (_, amount) in got.items():
                recorded[(f"o{n}", level)] = amount
            orders.append((f"o{n}", y))
        elif kind == "refund" and orders:
            order_id, amount = orders[x % len(orders)]
            part = min(y, amount - refunded.get(order_id, 0))
            if part > 0:
                refund(tenant, order_id, f"r{n}", part)
                refunded[order_id] = refunded.get(order_id, 0) + part
        elif kind == "demote":
            tenant.put(f"/v1/distributors/{x}/tier", {"name": y})
        after = {p: profile(tenant, p)["tier_level"] for p in PEOPLE}
        if kind != "demote":  # only an operator moves anyone down
            assert all(after[p] >= levels[p] for p in PEOPLE), (kind, levels, after)
        for (order_id, level), amount in recorded.items():
            lines = tenant.get(f"/v1/orders/{order_id}/explain", scope="sdk").json()["commissions"]
            assert {c["level"]: c["amount_fen"] for c in lines}[level] == amount


def profile_upline(tenant: TenantKeys, user: str) -> list[str]:
    chain, who = [], user
    for _ in range(2):
        response = tenant.get(f"/v1/distributors/{who}", scope="sdk")
        if response.status_code != 200 or response.json()["inviter_id"] is None:
            break
        who = response.json()["inviter_id"]
        chain.append(who)
    return chain
