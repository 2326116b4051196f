"""Campaigns: live leaderboards by period, TOP-N prizes and pool splits at close, red packets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import TenantKeys, make_tenant
from tests.server.test_orders import order, refund
from tests.server.test_referrals import arrive, link_of, register

START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 7, 1, tzinfo=UTC)
IN_WINDOW = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai


APPS = {"database": "client", "redis": "redis_client", "redis-cluster": "redis_cluster_client"}


@pytest.fixture(params=list(APPS))
def api(request):
    """Every campaign test runs on every leaderboard backend: the database, Redis and a
    three-master Redis Cluster."""
    return request.getfixturevalue(APPS[request.param])


@pytest.fixture
def tenant(api) -> TenantKeys:
    return make_tenant(api, "campaigns-a")


@pytest.fixture
def other_tenant(api) -> TenantKeys:
    return make_tenant(api, "campaigns-b")


def campaign(tenant: TenantKeys, metric: str = "invites", **extra) -> dict:
    body = {
        "name": "六月推广赛",
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "metric": metric,
        **extra,
    }
    response = tenant.post("/v1/campaigns", body)
    assert response.status_code == 201, response.text
    return response.json()


def board(tenant: TenantKeys, campaign_id: str, **params) -> list[tuple]:
    response = tenant.get(f"/v1/campaigns/{campaign_id}/leaderboard", scope="sdk", params=params)
    assert response.status_code == 200, response.text
    return [(e["rank"], e["distributor_id"], e["score"]) for e in response.json()["entries"]]


def invite(
    tenant: TenantKeys, inviter: str, users: int, at: datetime, prefix: str = ""
) -> list[dict]:
    link = link_of(tenant, inviter)
    return [
        arrive(tenant, f"{prefix}{inviter}-u{n}", link, at + timedelta(seconds=n))
        for n in range(users)
    ]


def test_invites_board_orders_by_score_then_time_then_id(tenant):
    c = campaign(tenant)
    for d in ("amy", "bob", "cat", "dan"):
        register(tenant, d)
    invite(tenant, "bob", 3, IN_WINDOW)
    invite(tenant, "amy", 3, IN_WINDOW + timedelta(hours=1))  # same score, reached later
    invite(tenant, "cat", 1, IN_WINDOW)
    invite(tenant, "dan", 2, START - timedelta(days=1))  # before the window: not counted
    assert board(tenant, c["id"]) == [(1, "bob", 3), (2, "amy", 3), (3, "cat", 1)]
    entry = tenant.get(f"/v1/campaigns/{c['id']}/leaderboard", scope="sdk").json()["entries"][0]
    assert entry["nickname"] == "bob"


def test_periods_follow_the_program_time_zone(tenant):
    c = campaign(tenant)
    register(tenant, "amy")
    late = datetime(2026, 6, 10, 16, 30, tzinfo=UTC)  # 00:30 on June 11 in Shanghai
    invite(tenant, "amy", 1, late)
    june_11 = datetime(2026, 6, 11, 12, tzinfo=UTC)
    assert board(tenant, c["id"], period="day", at=june_11.isoformat()) == [(1, "amy", 1)]
    assert board(tenant, c["id"], period="day", at=(june_11 - timedelta(days=1)).isoformat()) == []
    assert board(tenant, c["id"], period="month", at=june_11.isoformat()) == [(1, "amy", 1)]
    assert board(tenant, c["id"], period="week", at=june_11.isoformat()) == [(1, "amy", 1)]


def test_own_rank_with_neighbours_and_held_are_left_out(tenant):
    c = campaign(tenant)
    for n in range(6):
        register(tenant, f"d{n}")
        invite(tenant, f"d{n}", 6 - n, IN_WINDOW)
    mine = tenant.get(
        f"/v1/campaigns/{c['id']}/leaderboard/d3", scope="sdk", params={"around": 2}
    ).json()
    assert (mine["rank"], mine["score"]) == (4, 3)
    assert [(e["rank"], e["distributor_id"]) for e in mine["above"]] == [(2, "d1"), (3, "d2")]
    assert [(e["rank"], e["distributor_id"]) for e in mine["below"]] == [(5, "d4"), (6, "d5")]
    register(tenant, "d1", status="held")
    mine = tenant.get(
        f"/v1/campaigns/{c['id']}/leaderboard/d3", scope="sdk", params={"around": 2}
    ).json()
    assert mine["rank"] == 3
    assert [e["distributor_id"] for e in mine["above"]] == ["d0", "d2"]
    assert [d for _, d, _ in board(tenant, c["id"])] == ["d0", "d2", "d3", "d4", "d5"]
    held = tenant.get(f"/v1/campaigns/{c['id']}/leaderboard/d1", scope="sdk").json()
    assert held["rank"] is None


def test_rebinding_does_not_farm_invites(tenant):
    tenant.put("/v1/program", {"bind_mode": "last"})
    c = campaign(tenant)
    register(tenant, "a")
    register(tenant, "b")
    for n in range(3):
        arrive(
            tenant,
            "u",
            link_of(tenant, "a" if n % 2 == 0 else "b"),
            IN_WINDOW + timedelta(minutes=n),
        )
    assert board(tenant, c["id"]) == [(1, "a", 1)]


def test_gmv_and_orders_are_net_of_refunds_and_commission_counts_each_level(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000, 500]})
    gmv = campaign(tenant, "gmv")
    orders = campaign(tenant, "orders")
    commission = campaign(tenant, "commission")
    register(tenant, "top")
    register(tenant, "near")
    arrive(tenant, "near", link_of(tenant, "top"))
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000, paid_at=IN_WINDOW)
    order(tenant, "o2", 5000, paid_at=IN_WINDOW)
    order(tenant, "o3", 7000, paid_at=END + timedelta(days=1))  # after the window
    refund(tenant, "o2", "r1", 5000)
    refund(tenant, "o1", "r1", 2000)
    assert board(tenant, gmv["id"]) == [(1, "near", 8000)]
    assert board(tenant, orders["id"]) == [(1, "near", 1)]
    assert board(tenant, commission["id"]) == [(1, "near", 800), (2, "top", 400)]


def test_order_with_campaign_id_counts_only_there(tenant):
    first = campaign(tenant, "gmv")
    second = campaign(tenant, "gmv")
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    body = {
        "order_id": "o1",
        "user_id": "buyer",
        "amount_fen": 900,
        "paid_at": IN_WINDOW.isoformat(),
        "campaign_id": first["id"],
    }
    assert tenant.post("/v1/orders", body, scope="sdk").status_code == 201
    assert board(tenant, first["id"]) == [(1, "near", 900)]
    assert board(tenant, second["id"]) == []


def test_close_awards_top_n_once_with_min_score(tenant):
    prizes = [
        {"rank_from": 1, "rank_to": 1, "amount_fen": 88800},
        {"rank_from": 2, "rank_to": 3, "amount_fen": 38800},
    ]
    c = campaign(tenant, prizes=prizes, min_score=2)
    for name, n in (("a", 5), ("b", 4), ("c", 1)):
        register(tenant, name)
        invite(tenant, name, n, IN_WINDOW)
    closed = tenant.post(f"/v1/campaigns/{c['id']}/close")
    assert closed.status_code == 200, closed.text
    awards = [
        (a["distributor_id"], a["rank"], a["amount_fen"], a["kind"])
        for a in closed.json()["awards"]
    ]
    assert awards == [("a", 1, 88800, "prize"), ("b", 2, 38800, "prize")]
    again = tenant.post(f"/v1/campaigns/{c['id']}/close").json()
    assert again["awards"] == closed.json()["awards"]
    ledger = tenant.get("/v1/distributors/a/ledger", scope="sdk").json()["entries"]
    assert [e["amount_fen"] for e in ledger if e["kind"] == "prize"] == [88800]
    assert tenant.get(f"/v1/campaigns/{c['id']}", scope="sdk").json()["status"] == "closed"
    invite(
        tenant, "c", 5, IN_WINDOW + timedelta(days=1), prefix="late-"
    )  # closed: no longer counts
    assert ("c", 1) in [(d, s) for _, d, s in board(tenant, c["id"])]


def test_pool_split_at_close_sums_to_the_budget(tenant):
    c = campaign(
        tenant, red_packet={"mode": "pool_split_proportional", "budget_fen": 10000, "min_fen": 100}
    )
    for name, n in (("a", 3), ("b", 2), ("c", 1)):
        register(tenant, name)
        invite(tenant, name, n, IN_WINDOW)
    awards = tenant.post(f"/v1/campaigns/{c['id']}/close").json()["awards"]
    assert sum(a["amount_fen"] for a in awards) == 10000
    assert {a["kind"] for a in awards} == {"red_packet"}
    assert [a["distributor_id"] for a in sorted(awards, key=lambda a: -a["amount_fen"])] == [
        "a",
        "b",
        "c",
    ]


def test_fixed_per_invite_packets_until_the_budget_is_exhausted(tenant):
    c = campaign(
        tenant,
        red_packet={
            "mode": "fixed_per_invite",
            "budget_fen": 500,
            "amount_fen": 200,
            "min_fen": 100,
        },
    )
    register(tenant, "amy")
    results = invite(tenant, "amy", 4, IN_WINDOW)
    packets = [r["red_packets"][0] for r in results]
    assert [(p["amount_fen"], p["status"]) for p in packets] == [
        (200, "paid"),
        (200, "paid"),
        (100, "paid"),
        (0, "exhausted"),
    ]
    state = tenant.get(f"/v1/campaigns/{c['id']}", scope="sdk").json()["red_packet_state"]
    assert state == {
        "mode": "fixed_per_invite",
        "budget_fen": 500,
        "remaining_fen": 0,
        "issued": 3,
        "exhausted": True,
    }


def test_concurrent_random_invites_never_overspend(tenant):
    budget = 20000
    c = campaign(
        tenant,
        red_packet={
            "mode": "random_per_invite",
            "budget_fen": budget,
            "min_fen": 100,
            "max_fen": 1000,
            "seed": 7,
            "daily_cap_per_inviter": 1000,
        },
    )
    inviters = [f"d{n}" for n in range(4)]
    links = {}
    for d in inviters:
        register(tenant, d)
        links[d] = link_of(tenant, d)

    def one(n: int) -> dict:
        return arrive(tenant, f"user{n}", links[inviters[n % 4]], IN_WINDOW)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(60)))
    paid = [p["amount_fen"] for r in results for p in r["red_packets"] if p["status"] == "paid"]
    assert sum(paid) <= budget
    assert all(100 <= p <= 1000 for p in paid)
    state = tenant.get(f"/v1/campaigns/{c['id']}", scope="sdk").json()["red_packet_state"]
    assert state["remaining_fen"] == budget - sum(paid)
    assert state["issued"] == len(paid)


def test_daily_cap_per_inviter(tenant):
    campaign(
        tenant,
        red_packet={
            "mode": "fixed_per_invite",
            "budget_fen": 100000,
            "amount_fen": 100,
            "daily_cap_per_inviter": 2,
        },
    )
    register(tenant, "amy")
    statuses = [r["red_packets"][0]["status"] for r in invite(tenant, "amy", 3, IN_WINDOW)]
    assert statuses == ["paid", "paid", "capped"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"ends_at": START.isoformat()}, "ends_at"),
        ({"metric": "likes"}, "metric"),
        ({"prizes": [{"rank_from": 3, "rank_to": 1, "amount_fen": 10}]}, "prizes"),
        ({"red_packet": {"mode": "fixed_per_invite", "budget_fen": 100}}, "red_packet.amount_fen"),
        (
            {"red_packet": {"mode": "random_per_invite", "budget_fen": 100, "min_fen": 200}},
            "red_packet",
        ),
    ],
)
def test_impossible_campaigns_are_refused_naming_the_field(tenant, extra, field):
    body = {
        "name": "x",
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "metric": "invites",
        **extra,
    }
    response = tenant.post("/v1/campaigns", body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith(field)


def test_campaigns_are_tenant_scoped_and_admin_only_to_create(tenant, other_tenant):
    c = campaign(tenant)
    assert other_tenant.get(f"/v1/campaigns/{c['id']}", scope="sdk").status_code == 404
    assert other_tenant.get(f"/v1/campaigns/{c['id']}/leaderboard", scope="sdk").status_code == 404
    assert other_tenant.post(f"/v1/campaigns/{c['id']}/close").status_code == 404
    body = {
        "name": "x",
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "metric": "invites",
    }
    assert tenant.post("/v1/campaigns", body, scope="sdk").status_code == 403


def test_big_board_snapshot_ranks_match_live_counts(tenant):
    """The snapshot path (used on big PostgreSQL boards) agrees with the live count."""
    import asyncio

    from server.campaigns.boards import DbBoard

    c = campaign(tenant)
    for n in range(8):
        register(tenant, f"s{n}")
        invite(tenant, f"s{n}", (n * 5) % 7 + 1, IN_WINDOW)

    async def ranks(db, small):
        live = DbBoard(db)
        snap = DbBoard(db, snapshot_min_members=1)
        await snap.rank(tenant.tenant_id, c["id"], "campaign", "s0", 1)  # schedules the snapshot
        await asyncio.sleep(0.05)
        out = []
        for n in range(8):
            a = await live.rank(tenant.tenant_id, c["id"], "campaign", f"s{n}", 2)
            b = await snap.rank(tenant.tenant_id, c["id"], "campaign", f"s{n}", 2)
            out.append((a, b))
        return out, snap._snapshots

    pairs, snapshots = tenant.call(ranks, None)
    assert all(a == b for a, b in pairs)
    assert any(s.scores is not None for s in snapshots.values())


@pytest.mark.parametrize("app", ["redis_client", "redis_cluster_client"])
def test_redis_board_rebuilds_from_the_database_after_losing_its_data(request, app):
    from server.redisconn import sync_redis_client

    api = request.getfixturevalue(app)
    tenant = make_tenant(api, "campaigns-rebuild")
    c = campaign(tenant)
    for name, n in (("a", 2), ("b", 3)):
        register(tenant, name)
        invite(tenant, name, n, IN_WINDOW)
    before = board(tenant, c["id"])
    plain = sync_redis_client(api.app.state.settings)
    for key in plain.scan_iter(f"lb*:{{{tenant.tenant_id}}}:*"):
        plain.delete(key)
    plain.script_flush()
    plain.close()
    assert board(tenant, c["id"]) == before == [(1, "b", 3), (2, "a", 2)]
    mine = tenant.get(f"/v1/campaigns/{c['id']}/leaderboard/a", scope="sdk").json()
    assert (mine["rank"], mine["score"]) == (2, 2)
    invite(tenant, "a", 2, IN_WINDOW + timedelta(hours=1), prefix="more-")  # NOSCRIPT path
    assert board(tenant, c["id"]) == [(1, "a", 4), (2, "b", 3)]
