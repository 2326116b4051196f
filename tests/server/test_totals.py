"""Maintained balances and team counts (issue 21) equal the ledger and the bindings, always.

The property test drives random histories through the API (bindings and re-bindings that move
subtrees, bindings that lapse, orders, refunds, settlements approved and paid, both clawback
modes, maturity checkpoints advanced to random past times in batches of random size) and after
every step checks three things: the reconciliation finds no difference, each balance equals
the sum over the ledger (``balance_by_scan``, now and after the freeze window), and each
distributor's team counts equal a Python model of the active referral tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantKeys, make_tenant
from tests.server.test_referrals import arrive, link_of, register

DISTRIBUTORS = [f"d{i}" for i in range(5)]
BUYERS = ["u0", "u1"]
DAY = timedelta(days=1)
DAY_US = 86_400_000_000


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def _differences(db: Any, tenant_id: str) -> list[dict]:
    from server.ledger.reconcile import verify

    return [d async for d in verify(db, tenant_id, batch=2)]


async def _scan_balances(db: Any, tenant_id: str, at_us: int) -> dict[str, dict[str, int]]:
    from server.ledger.balances import balance_by_scan

    return {d: await balance_by_scan(db, tenant_id, d, at_us) for d in DISTRIBUTORS}


async def _bindings(db: Any, tenant_id: str) -> list[tuple[str, str | None, int | None]]:
    rows = await db.fetch(
        "SELECT user_id, inviter_id, expires_at_us FROM user_bindings WHERE tenant_id = $1",
        tenant_id,
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def _balances_at(db: Any, tenant_id: str, at_us: int) -> dict[str, dict[str, int]]:
    from server.ledger.balances import balance_of

    return {d: await balance_of(db, tenant_id, d, at_us) for d in DISTRIBUTORS}


async def _advance(db: Any, tenant_id: str, at_us: int, batch: int) -> int:
    from server.ledger.maturity import advance_maturity

    return await advance_maturity(db, tenant_id, at_us=at_us, batch=batch)


def model_members(
    bindings: list[tuple[str, str | None, int | None]], at_us: int
) -> dict[tuple[str, int], set[str]]:
    """(ancestor, level) -> the users that many steps below it, from the active bindings."""
    parent = {
        u: inviter
        for u, inviter, expires in bindings
        if inviter is not None and (expires is None or expires > at_us)
    }
    members: dict[tuple[str, int], set[str]] = {}
    for user in parent:
        node: str | None = user
        for level in range(1, 4):
            node = parent.get(node) if node is not None else None
            if node is None:
                break
            members.setdefault((node, level), set()).add(user)
    return members


def team_members(tenant: TenantKeys, d: str, level: int, limit: int = 50) -> list[str]:
    """Every member of the level, page after page by keyset (bound time, user)."""
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"level": level, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = tenant.get(f"/v1/distributors/{d}/team", scope="sdk", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert all(m["level"] == level for m in page["members"])
        seen += [(m["bound_at"], m["user_id"]) for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    return [user for _, user in seen]


def model_counts(bindings: list[tuple[str, str | None, int | None]], at_us: int) -> dict:
    """Team sizes per level from the active bindings, in plain Python."""
    parent = {
        u: inviter
        for u, inviter, expires in bindings
        if inviter is not None and (expires is None or expires > at_us)
    }
    counts: dict[str, list[int]] = {}
    for user in parent:
        node = user
        for level in range(3):
            node = parent.get(node)  # type: ignore[assignment]
            if node is None:
                break
            counts.setdefault(node, [0, 0, 0])[level] += 1
    return counts


def profile(tenant: TenantKeys, distributor_id: str) -> dict:
    response = tenant.get(f"/v1/distributors/{distributor_id}", scope="sdk")
    assert response.status_code == 200, response.text
    return response.json()


def check_everything(tenant: TenantKeys) -> None:
    from server.common import now_us

    profiles = {d: profile(tenant, d) for d in DISTRIBUTORS}
    at = now_us()
    assert tenant.call(_differences, tenant.tenant_id) == []
    scans = tenant.call(_scan_balances, tenant.tenant_id, at)
    bindings = tenant.call(_bindings, tenant.tenant_id)
    model = model_counts(bindings, at)
    members = model_members(bindings, at)
    for d in DISTRIBUTORS:
        for level in (1, 2, 3):
            assert set(team_members(tenant, d, level, limit=2)) == members.get((d, level), set())
    for d, p in profiles.items():
        assert p["balance"] == scans[d], d
        level1, level2, level3 = model.get(d, [0, 0, 0])
        assert p["counts"]["direct_invitees"] == level1, d
        assert p["counts"]["level2_invitees"] == level2, d
        assert p["counts"]["level3_invitees"] == level3, d
    later = at + 8 * DAY_US  # after every freeze window: the range since the checkpoint is long
    assert tenant.call(_balances_at, tenant.tenant_id, later) == tenant.call(
        _scan_balances, tenant.tenant_id, later
    )


step = st.one_of(
    st.tuples(
        st.just("bind"),
        st.sampled_from(DISTRIBUTORS + BUYERS),
        st.sampled_from(DISTRIBUTORS),
        st.sampled_from([0, 10, 40]),  # days ago: with 30-day validity, 40 has lapsed
    ),
    st.tuples(
        st.just("order"),
        st.sampled_from(BUYERS + DISTRIBUTORS[3:]),
        st.integers(1, 50_000),
        st.sampled_from([0, 3, 20]),  # days ago: 7-day freeze, so pending or available
    ),
    st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 30_000)),
    st.tuples(st.just("settle"), st.booleans()),
    st.tuples(st.just("clawback"), st.sampled_from(["net_off", "absorb"])),
    # the maintenance step, to a time days ago, in batches of this many entries
    st.tuples(st.just("mature"), st.sampled_from([0, 2, 8, 30]), st.sampled_from([1, 3, 5000])),
)


def run_step(tenant: TenantKeys, state: dict, action: tuple) -> None:
    kind = action[0]
    if kind == "bind":
        _, user, inviter, days = action
        arrive(tenant, user, state["links"][inviter], at=now() - days * DAY)
    elif kind == "order":
        _, buyer, amount, days = action
        order_id = f"o{len(state['orders'])}"
        body = {
            "order_id": order_id,
            "user_id": buyer,
            "amount_fen": amount,
            "paid_at": (now() - days * DAY).isoformat(),
        }
        assert tenant.post("/v1/orders", body, scope="sdk").status_code == 201
        state["orders"].append(order_id)
    elif kind == "refund" and state["orders"]:
        _, index, amount = action
        order_id = state["orders"][index % len(state["orders"])]
        body = {"refund_id": f"r{state['refunds']}", "amount_fen": amount}
        state["refunds"] += 1
        response = tenant.post(f"/v1/orders/{order_id}/refunds", body, scope="sdk")
        assert response.status_code in (201, 422), response.text
    elif kind == "settle":
        created = tenant.post("/v1/settlements", {"cutoff": now().isoformat()})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        assert tenant.post(f"/v1/settlements/{sid}/approve").status_code == 200
        if action[1]:
            paid = tenant.post(f"/v1/settlements/{sid}/paid", {"references": {}})
            assert paid.status_code == 200, paid.text
    elif kind == "clawback":
        assert tenant.put("/v1/program", {"clawback": action[1]}).status_code == 200
    elif kind == "mature":
        _, days, batch = action
        at = int((now() - days * DAY).timestamp()) * 1_000_000
        tenant.call(_advance, tenant.tenant_id, at, batch)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_totals_and_counts_equal_the_ledger_and_bindings_at_every_step(client, steps):
    tenant = make_tenant(client, "totals-property")
    program = {
        "bind_mode": "last",
        "bind_validity_days": 30,
        "commission_bps": [1000, 500, 200],
        "freeze_days": 7,
        "payout_threshold_fen": 0,
    }
    assert tenant.put("/v1/program", program).status_code == 200
    for d in DISTRIBUTORS:
        register(tenant, d)
    state: dict = {"links": {d: link_of(tenant, d) for d in DISTRIBUTORS}, "orders": [],
                   "refunds": 0}
    # a chain d0 <- d1 <- d2 <- d3 <- u0, and u1 under d4, that the steps then reshape
    for child, parent in (("d1", "d0"), ("d2", "d1"), ("d3", "d2"), ("u0", "d3"), ("u1", "d4")):
        arrive(tenant, child, state["links"][parent])
    for action in steps:
        run_step(tenant, state, action)
        check_everything(tenant)


# ---------------------------------------------------------------- team counts, one by one


def counts(tenant: TenantKeys, d: str) -> tuple[int, int, int]:
    c = profile(tenant, d)["counts"]
    return c["direct_invitees"], c["level2_invitees"], c["level3_invitees"]


def test_rebinding_moves_the_subtree_level_by_level(tenant):
    tenant.put("/v1/program", {"bind_mode": "last", "commission_bps": [1000, 500, 200]})
    for d in ("top", "a", "b", "c", "x"):
        register(tenant, d)
    arrive(tenant, "a", link_of(tenant, "top"))
    arrive(tenant, "b", link_of(tenant, "a"))
    arrive(tenant, "c", link_of(tenant, "b"))
    for i in range(3):
        arrive(tenant, f"leaf{i}", link_of(tenant, "c"))
    assert counts(tenant, "top") == (1, 1, 1)
    assert counts(tenant, "a") == (1, 1, 3)
    # b (with c and c's three leaves) moves under x: a and top lose it, x gains it
    arrive(tenant, "b", link_of(tenant, "x"))
    assert counts(tenant, "a") == (0, 0, 0)
    assert counts(tenant, "top") == (1, 0, 0)
    assert counts(tenant, "x") == (1, 1, 3)
    assert counts(tenant, "b") == (1, 3, 0)
    assert tenant.call(_differences, tenant.tenant_id) == []


def test_a_lapsed_binding_leaves_the_counts_when_due(tenant):
    tenant.put("/v1/program", {"bind_validity_days": 5})
    register(tenant, "top")
    register(tenant, "mid")
    arrive(tenant, "mid", link_of(tenant, "top"), at=now() - 2 * DAY)
    arrive(tenant, "old", link_of(tenant, "mid"), at=now() - 6 * DAY)  # lapsed a day ago
    arrive(tenant, "new", link_of(tenant, "mid"), at=now() - DAY)
    assert counts(tenant, "mid") == (1, 0, 0)
    assert counts(tenant, "top") == (1, 1, 0)
    team = tenant.get("/v1/distributors/mid/team", scope="sdk").json()["members"]
    assert [m["user_id"] for m in team] == ["new"]
    assert tenant.call(_differences, tenant.tenant_id) == []


def test_team_pages_by_keyset_without_gaps_or_repeats(tenant):
    register(tenant, "big")
    link = link_of(tenant, "big")
    start = now() - 10 * DAY
    for i in range(23):
        arrive(tenant, f"m{i:02d}", link, at=start + (i // 3) * timedelta(minutes=1))
    seen, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = tenant.get("/v1/distributors/big/team", scope="sdk", params=params).json()
        seen += [(m["bound_at"], m["user_id"]) for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 23 and seen == sorted(seen)
    assert counts(tenant, "big") == (23, 0, 0)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("level", "index"),
    [(1, "ix_bindings_team"), (2, "ix_team_ancestor2"), (3, "ix_team_ancestor3")],
)
def test_team_page_reads_the_keyset_index(client, level, index):
    from server.referrals.service import TEAM_PAGE_SQL

    async def plan(db: Any) -> str:
        # under the statistics of a big tenant (a LEFT JOIN once made SQLite sort the level)
        await db.execute("ANALYZE team_trees")  # creates sqlite_stat1
        await db.execute(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES"
            " ('user_bindings', 'ix_bindings_team', '120000 120000 40000 1 1'),"
            " ('user_bindings', 'ix_bindings_inviter', '120000 120000 40000'),"
            " ('user_bindings', 'ux_bindings_user', '120000 120000 1'),"
            " ('team_ancestors', 'ix_team_ancestor2', '20000 20000 10000 1 1'),"
            " ('team_ancestors', 'ix_team_ancestor3', '20000 20000 10000 1 1'),"
            " ('team_ancestors', 'sqlite_autoindex_team_ancestors_1', '20000 20000 1')"
        )
        await db.execute("ANALYZE sqlite_schema")  # reload the statistics
        try:
            rows = await db.fetch(
                "EXPLAIN QUERY PLAN " + TEAM_PAGE_SQL[level], "t", "d", 1, 1, "", 51
            )
        finally:
            await db.execute("DELETE FROM sqlite_stat1")
            await db.execute("ANALYZE sqlite_schema")
        return " ".join(str(r[3]) for r in rows)

    with client.portal() as portal:
        text = portal.call(plan, client.app.state.db)
    assert index in text and "TEMP B-TREE" not in text, text


def test_team_pages_at_levels_2_and_3_follow_a_moved_subtree(tenant):
    tenant.put("/v1/program", {"bind_mode": "last", "commission_bps": [1000, 500, 200]})
    for d in ("top", "a", "b", "x"):
        register(tenant, d)
    links = {d: link_of(tenant, d) for d in ("top", "a", "b", "x")}
    arrive(tenant, "a", links["top"])
    arrive(tenant, "b", links["a"])
    start = now() - 5 * DAY
    for i in range(7):  # a's grand-children (top's 3rd level), some bound at one moment
        arrive(tenant, f"g{i}", links["b"], at=start + (i // 2) * timedelta(minutes=1))
    assert team_members(tenant, "top", 2, limit=1) == ["b"]
    assert team_members(tenant, "top", 3, limit=3) == [f"g{i}" for i in range(7)]
    assert team_members(tenant, "a", 2, limit=2) == [f"g{i}" for i in range(7)]
    # b and its seven move under x: top and a lose them, x gains them a level up
    arrive(tenant, "b", links["x"])
    assert team_members(tenant, "top", 2) == [] and team_members(tenant, "top", 3) == []
    assert team_members(tenant, "a", 2) == []
    assert team_members(tenant, "x", 2, limit=4) == [f"g{i}" for i in range(7)]
    # x moves under top: b's seven are now top's 3rd level again
    arrive(tenant, "x", links["top"])
    assert team_members(tenant, "top", 2) == ["b"]
    assert team_members(tenant, "top", 3, limit=5) == [f"g{i}" for i in range(7)]
    assert tenant.call(_differences, tenant.tenant_id) == []


def test_an_intermediate_lapse_leaves_the_deeper_pages(tenant):
    tenant.put("/v1/program", {"bind_validity_days": 5})
    for d in ("top", "mid"):
        register(tenant, d)
    arrive(tenant, "mid", link_of(tenant, "top"), at=now() - 6 * DAY)  # lapsed a day ago
    arrive(tenant, "leaf", link_of(tenant, "mid"), at=now() - DAY)
    assert team_members(tenant, "top", 2) == []
    assert team_members(tenant, "mid", 1) == ["leaf"]
    assert tenant.call(_differences, tenant.tenant_id) == []


# ---------------------------------------------------------------- reconciliation


def _corrupt(tenant: TenantKeys) -> None:
    async def run(db: Any, tenant_id: str) -> None:
        await db.execute(
            "UPDATE distributor_totals SET credited_fen = credited_fen + 7"
            " WHERE tenant_id = $1 AND distributor_id = 'near'",
            tenant_id,
        )
        await db.execute(
            "UPDATE team_counts SET level1 = level1 + 2 WHERE tenant_id = $1 AND user_id = 'near'",
            tenant_id,
        )

    tenant.call(run, tenant.tenant_id)


def _earning_chain(tenant: TenantKeys) -> None:
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    body = {"order_id": "o1", "user_id": "buyer", "amount_fen": 10000,
            "paid_at": (now() - 20 * DAY).isoformat()}
    assert tenant.post("/v1/orders", body, scope="sdk").status_code == 201


def test_verify_reports_and_fixes_a_drifted_total(tenant):
    from server.ledger.reconcile import verify

    _earning_chain(tenant)
    _corrupt(tenant)
    diffs = tenant.call(_differences, tenant.tenant_id)
    assert {(d["kind"], d["id"]) for d in diffs} == {("totals", "near"), ("team_counts", "near")}
    totals = next(d for d in diffs if d["kind"] == "totals")
    assert totals["stored"]["credited_fen"] - totals["recomputed"]["credited_fen"] == 7

    async def fix(db: Any, tenant_id: str) -> int:
        return len([d async for d in verify(db, tenant_id, fix=True)])

    assert tenant.call(fix, tenant.tenant_id) == 2
    assert tenant.call(_differences, tenant.tenant_id) == []
    assert profile(tenant, "near")["balance"]["available_fen"] == 1000


def test_backfill_rebuilds_caches_from_nothing(tenant):
    """What migration 0012b does for data written before the caches existed."""
    from server.ledger.reconcile import verify
    from server.migrations.liebian_0012b_totals_backfill import _counted_inviters

    _earning_chain(tenant)
    register(tenant, "top")
    arrive(tenant, "near", link_of(tenant, "top"))
    before = profile(tenant, "top"), profile(tenant, "near")

    async def wipe_and_backfill(db: Any, tenant_id: str) -> int:
        from server.common import now_us

        for sql in (
            "DELETE FROM distributor_totals WHERE tenant_id = $1",
            "DELETE FROM team_counts WHERE tenant_id = $1",
            "UPDATE user_bindings SET team_inviter_id = NULL WHERE tenant_id = $1",
        ):
            await db.execute(sql, tenant_id)
        await _counted_inviters(db, now_us())
        return len([d async for d in verify(db, tenant_id, fix=True, batch=1)])

    assert tenant.call(wipe_and_backfill, tenant.tenant_id) > 0
    assert (profile(tenant, "top"), profile(tenant, "near")) == before
    assert tenant.call(_differences, tenant.tenant_id) == []


@pytest.mark.sqlite_only
def test_cli_ledger_verify_exits_1_on_a_difference_and_fixes_it(client, settings, tenant):
    _earning_chain(tenant)
    _corrupt(tenant)
    env = {**os.environ, "LIEBIAN_DATABASE_URL": settings.database_url}
    cmd = [sys.executable, "-m", "server.cli", "ledger", "verify", "--tenant", tenant.tenant_id]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 1, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert {(d["kind"], d["id"]) for d in lines} == {("totals", "near"), ("team_counts", "near")}
    fixed = subprocess.run([*cmd, "--fix"], capture_output=True, text=True, env=env, check=False)
    assert fixed.returncode == 1 and len(fixed.stdout.splitlines()) == 2
    clean = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert clean.returncode == 0 and clean.stdout == "", clean.stdout


def test_concurrent_orders_keep_the_totals_exact(tenant):
    from concurrent.futures import ThreadPoolExecutor

    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))

    def pay(i: int) -> int:
        body = {"order_id": f"c{i}", "user_id": "buyer", "amount_fen": 1000 + i,
                "paid_at": (now() - 20 * DAY).isoformat()}
        return tenant.post("/v1/orders", body, scope="sdk").status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(pay, range(40))) == {201}
    assert profile(tenant, "near")["balance"]["available_fen"] == sum(
        (1000 + i) * 1000 // 10000 for i in range(40)
    )
    assert tenant.call(_differences, tenant.tenant_id) == []



def test_concurrent_bindings_and_subtree_moves_keep_counts_exact(tenant):
    """First bindings (PostgreSQL: the one-statement path) race re-bindings that move their
    inviters' subtrees; the locks must leave every counter exact."""
    from concurrent.futures import ThreadPoolExecutor

    tenant.put("/v1/program", {"bind_mode": "last", "commission_bps": [1000, 500, 200]})
    for d in ("a", "b", "c", "x", "y"):
        register(tenant, d)
    links = {d: link_of(tenant, d) for d in ("a", "b", "c", "x", "y")}
    arrive(tenant, "b", links["a"])
    arrive(tenant, "c", links["b"])

    def work(i: int) -> None:
        if i % 6 == 0:
            arrive(tenant, "b", links["x" if i % 12 == 0 else "a"])
        elif i % 6 == 3:
            arrive(tenant, "c", links["y" if i % 12 == 3 else "b"])
        else:
            arrive(tenant, f"n{i}", links["c" if i % 2 else "b"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(120)))
    assert tenant.call(_differences, tenant.tenant_id) == []
    from server.common import now_us

    model = model_counts(tenant.call(_bindings, tenant.tenant_id), now_us())
    for d in ("a", "b", "c", "x", "y"):
        assert list(counts(tenant, d)) == model.get(d, [0, 0, 0]), d


@pytest.mark.postgres_only
def test_a_first_binding_whose_snapshot_predates_a_move_binds_nothing_then_counts_exactly(tenant):
    """The one-statement first binding reads the inviter's chain in its snapshot and only then
    takes the tree lock (shared). A move that holds the lock (exclusive) while the statement
    starts, and commits while it waits, leaves that chain stale: the statement must bind
    nothing (the full path then binds under the new chain), never count under the old one."""
    import asyncio

    from server.common import now_us
    from server.program.service import get_program
    from server.referrals.fast import bind_new_user
    from server.referrals.service import Arrival, bind_referral, resolve_code
    from server.referrals.teams import lock_tree

    tenant.put("/v1/program", {"bind_mode": "last", "commission_bps": [1000, 500, 200]})
    for d in ("a", "b", "c", "x"):
        register(tenant, d)
    arrive(tenant, "b", link_of(tenant, "a"))
    arrive(tenant, "c", link_of(tenant, "b"))
    code_c, code_x = link_of(tenant, "c")["code"], link_of(tenant, "x")["code"]
    tid = tenant.tenant_id

    async def race(db: Any) -> Any:
        program = await get_program(db, tid)
        link_c, link_x = await resolve_code(db, tid, code_c), await resolve_code(db, tid, code_x)
        async with db.transaction() as tx:
            await lock_tree(tx, tid, exclusive=True)  # a move under way
            fast = asyncio.ensure_future(
                bind_new_user(db, tid, program, Arrival("n1", link_c, now_us(), None))
            )
            for _ in range(500):  # until the statement waits for the tree lock
                waiting = await db.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = 21"
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting == 1
            # c (with the chain above n1) moves from under b to under x, then commits
            await bind_referral(tx, tid, program, Arrival("c", link_x, now_us(), None))
        return await fast

    assert tenant.call(race) is None  # stale chain: nothing bound, the full path is needed
    assert arrive(tenant, "n1", link_of(tenant, "c"))["upline"] == ["c", "x"]
    assert tenant.call(_differences, tid) == []
    assert counts(tenant, "x") == (1, 1, 0)
    assert counts(tenant, "b") == (0, 0, 0)
    assert counts(tenant, "a") == (1, 0, 0)


def test_verify_reports_and_fixes_drifted_ancestors(tenant):
    from server.ledger.reconcile import verify

    for d in ("top", "mid"):
        register(tenant, d)
    arrive(tenant, "mid", link_of(tenant, "top"))
    arrive(tenant, "leaf", link_of(tenant, "mid"))

    async def drift(db: Any, tenant_id: str) -> None:
        await db.execute(
            "UPDATE team_ancestors SET ancestor2 = 'mid' WHERE tenant_id = $1"
            " AND user_id = 'leaf'",
            tenant_id,
        )

    tenant.call(drift, tenant.tenant_id)
    assert team_members(tenant, "top", 2) == [] and team_members(tenant, "mid", 2) == ["leaf"]
    diffs = tenant.call(_differences, tenant.tenant_id)
    assert [(d["kind"], d["id"], d["recomputed"]["ancestor2"]) for d in diffs] == [
        ("counted_ancestors", "leaf", "top")
    ]

    async def fix(db: Any, tenant_id: str) -> int:
        return len([d async for d in verify(db, tenant_id, fix=True)])

    assert tenant.call(fix, tenant.tenant_id) == 1
    assert team_members(tenant, "top", 2) == ["leaf"]


def test_migration_0024_backfills_team_ancestors_and_maturity(tenant):
    """What migration 0024 does for bindings and entries written before it (batched)."""
    from server.migrations import liebian_0024_pending_checkpoint as m0024

    for d in ("top", "mid", "low"):
        register(tenant, d)
    arrive(tenant, "mid", link_of(tenant, "top"))
    arrive(tenant, "low", link_of(tenant, "mid"))
    arrive(tenant, "leaf", link_of(tenant, "low"))
    body = {"order_id": "o1", "user_id": "leaf", "amount_fen": 10000,
            "paid_at": (now() - 20 * DAY).isoformat()}
    assert tenant.post("/v1/orders", body, scope="sdk").status_code == 201

    async def wipe(db: Any, tenant_id: str) -> None:
        await db.execute("DELETE FROM team_ancestors WHERE tenant_id = $1", tenant_id)

    tenant.call(wipe, tenant.tenant_id)
    assert {d["kind"] for d in tenant.call(_differences, tenant.tenant_id)} == {
        "counted_ancestors"
    }

    async def backfill(db: Any, tenant_id: str) -> int:
        from server.ledger.maturity import advance_maturity

        await m0024._ancestors(db)
        return await advance_maturity(db, tenant_id, batch=1)

    assert tenant.call(backfill, tenant.tenant_id) >= 1
    assert tenant.call(_differences, tenant.tenant_id) == []
    assert team_members(tenant, "top", 3) == ["leaf"]
    assert team_members(tenant, "mid", 2) == ["leaf"]
