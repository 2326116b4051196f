"""Settlements net the refunds known when they are drafted and approved (issue 20), and never
pay commission still inside its freeze window (issue 12).

The two sequences of issue 20 are replayed as they were found; a property test then drives
random orders, refunds, drafts and approvals over the HTTP API and reckons every distributor's
money independently.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import openpyxl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantKeys, make_tenant
from tests.server.test_orders import balance, order, refund
from tests.server.test_referrals import arrive, link_of, register
from tests.server.test_settlements import draft, lines_of, locked_entry_total

CST = timezone(timedelta(hours=8))
FIRST = {"bind_mode": "first", "commission_bps": [171, 1227], "freeze_days": 10}


def bind(tenant: TenantKeys, distributor: str, *buyers: str) -> None:
    register(tenant, distributor)
    for buyer in buyers:
        arrive(tenant, buyer, link_of(tenant, distributor))


def approve(tenant: TenantKeys, settlement_id: str):
    return tenant.post(f"/v1/settlements/{settlement_id}/approve")


def settled_total(tenant: TenantKeys, distributor: str) -> int:
    """What every approved or paid settlement pays ``distributor`` (their lines' nets)."""
    total, cursor = 0, None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = tenant.get("/v1/settlements", params=params).json()
        for summary in page["settlements"]:
            if summary["status"] == "draft":
                continue
            lines = lines_of(tenant.get(f"/v1/settlements/{summary['id']}").json())
            total += lines[distributor]["net_fen"] if distributor in lines else 0
        cursor = page["next_cursor"]
        if not cursor:
            return total


# ------------------------------------------------------------------ issue 20, sequence 1


def test_refund_before_the_draft_is_netted_even_before_it_is_due(tenant):
    """Order of 185 fen paid 2026-10-07, refunded in full today, draft with cutoff 2026-10-19:
    the 3 fen commission (due 10-17) and its -3 fen reversal (due today) net to 0, so D's line
    carries forward instead of paying 3 fen and leaving D at -3 fen."""
    tenant.put("/v1/program", {**FIRST, "clawback": "net_off"})
    bind(tenant, "D", "buyer")
    created = order(tenant, "o185", 185, paid_at=datetime(2026, 10, 7, 12, tzinfo=CST))
    assert [c["amount_fen"] for c in created.json()["commissions"]] == [3]
    assert refund(tenant, "o185", "full", 185).json()["reversals"][0]["amount_fen"] == -3
    settlement = draft(tenant, datetime(2026, 10, 19, tzinfo=CST))
    assert "D" not in lines_of(settlement)  # nets to 0: carried forward, nothing paid
    assert approve(tenant, settlement["id"]).status_code == 200
    assert balance(tenant, "D") == {
        "pending_fen": 0, "available_fen": 0, "settled_fen": 0, "paid_fen": 0
    }
    assert settled_total(tenant, "D") == 0


def test_a_netted_reversal_is_locked_with_its_commission(tenant):
    """The same refund beside a second, unrefunded order: D's line pays 17 + 3 - 3 fen, both
    the commission and its not-yet-due reversal are locked by this settlement (so no later one
    takes the reversal again), and explain, the line, the CSV and the XLSX say so."""
    tenant.put("/v1/program", {**FIRST, "clawback": "net_off"})
    bind(tenant, "D", "buyer")
    paid_at = datetime(2026, 10, 7, 12, tzinfo=CST)
    order(tenant, "o185", 185, paid_at=paid_at)
    order(tenant, "o1000", 1000, paid_at=paid_at)  # 17 fen
    refund(tenant, "o185", "full", 185)
    settlement = draft(tenant, datetime(2026, 10, 19, tzinfo=CST))
    line = lines_of(settlement)["D"]
    assert line["commission_fen"] == 20 and line["reversal_fen"] == -3
    assert line["netted_reversal_fen"] == -3 and line["net_fen"] == 17
    assert settlement["total_fen"] == 17 == locked_entry_total(tenant, settlement["id"])
    assert approve(tenant, settlement["id"]).status_code == 200
    assert balance(tenant, "D") == {
        "pending_fen": 0, "available_fen": 0, "settled_fen": 17, "paid_fen": 0
    }
    later = draft(tenant, datetime.now(UTC))
    assert "D" not in lines_of(later)  # the reversal is not taken a second time
    explained = tenant.get("/v1/orders/o185/explain", scope="sdk").json()
    assert explained["commissions"][0]["settlement_id"] == settlement["id"]
    assert explained["refunds"][0]["reversals"][0]["settlement_id"] == settlement["id"]
    rows = list(
        csv.DictReader(
            io.StringIO(
                tenant.get(f"/v1/settlements/{settlement['id']}/export.csv?lang=en").content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    by_id = {r["distributor_id"]: r for r in rows}
    assert by_id["D"]["reversal_fen"] == "-3" and by_id["D"]["netted_reversal_fen"] == "-3"
    assert by_id["D"]["netted_reversal_yuan"] == "-0.03"
    assert by_id["TOTAL"]["netted_reversal_fen"] == "-3"
    book = openpyxl.load_workbook(
        io.BytesIO(tenant.get(f"/v1/settlements/{settlement['id']}/export.xlsx?lang=en").content)
    )
    sheet = list(book["Lines"].iter_rows(values_only=True))
    assert sheet[1][sheet[0].index("netted_reversal_fen")] == -3


def test_a_clawback_of_an_earlier_settlement_is_not_counted_as_netted(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 7})
    bind(tenant, "D", "buyer")
    order(tenant, "o1", 10000, paid_at=datetime(2026, 10, 1, tzinfo=UTC))
    first = draft(tenant, datetime(2026, 10, 10, tzinfo=UTC))
    assert approve(tenant, first["id"]).status_code == 200
    refund(tenant, "o1", "r1", 5000)  # -500, after payment: net_off takes it next time
    order(tenant, "o2", 20000, paid_at=datetime(2026, 10, 2, tzinfo=UTC))
    line = lines_of(draft(tenant, datetime.now(UTC)))["D"]
    assert (line["commission_fen"], line["reversal_fen"], line["netted_reversal_fen"]) == (
        2000,
        -500,
        0,
    )


def test_absorb_keeps_its_meaning_after_approval(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 7, "clawback": "absorb"})
    bind(tenant, "D", "buyer")
    order(tenant, "o1", 10000, paid_at=datetime(2026, 10, 1, tzinfo=UTC))
    order(tenant, "o2", 10000, paid_at=datetime(2026, 10, 1, tzinfo=UTC))
    refund(tenant, "o1", "before", 10000)  # before the draft: netted, D is not paid for o1
    first = draft(tenant, datetime(2026, 10, 10, tzinfo=UTC))
    assert lines_of(first)["D"]["net_fen"] == 1000
    assert approve(tenant, first["id"]).status_code == 200
    after = refund(tenant, "o2", "after", 10000).json()["reversals"]  # after approval
    assert [r["kind"] for r in after] == ["absorbed_reversal"]
    assert "D" not in lines_of(draft(tenant, datetime.now(UTC)))
    assert sum(balance(tenant, "D").values()) == 1000


# ------------------------------------------------------------------ issue 20, sequence 2


def test_a_refund_between_draft_and_approval_makes_approval_409(tenant):
    """Order of 226,258 fen paid 2026-10-08, draft with cutoff 2026-10-16, then a full refund:
    approving would lock (and pay) the 2,963 fen commission the refund already took back.
    Approval answers 409 naming the line; nothing is locked; a new draft nets the refund."""
    # The sequence had a shorter freeze and a 131 bps rate: 10 days after 10-08 is
    # after the 10-16 cutoff, and 171 bps of 226,258 fen is 3,869 fen, not the 2,963 it locked.
    tenant.put("/v1/program", {"commission_bps": [131], "freeze_days": 7, "clawback": "net_off"})
    bind(tenant, "D", "buyer")
    order(tenant, "o226258", 226258, paid_at=datetime(2026, 10, 8, 12, tzinfo=CST))
    settlement = draft(tenant, datetime(2026, 10, 16, tzinfo=CST))
    assert lines_of(settlement)["D"]["net_fen"] == 2963
    refund(tenant, "o226258", "full", 226258)
    refused = approve(tenant, settlement["id"])
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["errors"] == [
        {"field": "lines.D", "message": "an entry was reversed since the draft"}
    ]
    assert "new draft" in problem["detail"]
    assert tenant.get(f"/v1/settlements/{settlement['id']}").json()["status"] == "draft"
    assert balance(tenant, "D")["settled_fen"] == 0
    assert sum(balance(tenant, "D").values()) == 0
    redrafted = draft(tenant, datetime(2026, 10, 16, tzinfo=CST))
    assert "D" not in lines_of(redrafted)  # 2,963 - 2,963: nothing to pay


def test_approve_rechecks_that_entries_are_still_due(tenant, monkeypatch):
    """A draft stored before cutoffs were checked (a cutoff in the future) is refused at
    approval, as is a line whose distributor was put on hold after the draft."""
    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 7})
    bind(tenant, "D", "b1")
    bind(tenant, "E", "b2")
    now = datetime.now(UTC)
    order(tenant, "fresh", 10000, user="b1", paid_at=now - timedelta(days=1))  # due in 6 days
    order(tenant, "old", 10000, user="b2", paid_at=now - timedelta(days=30))

    import server.settlements.service as service

    # A draft as an earlier version made it, with a cutoff 10 days ahead: the draft's clock
    # is moved forward so the cutoff check lets it through; approval reads the real clock.
    ahead = int((now + timedelta(days=10, minutes=1)).timestamp() * 1_000_000)
    monkeypatch.setattr(service, "now_us", lambda: ahead)
    stale = draft(tenant, now + timedelta(days=10))["id"]
    monkeypatch.undo()
    refused = approve(tenant, stale)
    assert refused.status_code == 409
    assert refused.json()["errors"] == [
        {"field": "lines.D", "message": "an entry is still inside its freeze window"}
    ]
    held = draft(tenant, now)
    assert set(lines_of(held)) == {"E"}
    tenant.put("/v1/distributors/E", {"nickname": "E", "status": "held"})
    refused = approve(tenant, held["id"])
    assert refused.status_code == 409
    assert refused.json()["errors"] == [
        {"field": "lines.E", "message": "the distributor is no longer active"}
    ]
    assert balance(tenant, "E")["settled_fen"] == 0


def test_refunds_racing_an_approval_keep_the_clawback_mode(tenant):
    """Twelve full refunds at the moment of approval, under ``absorb``: either a refund lands
    first and approval is a 409 (nothing settled, so nothing is absorbed), or approval lands
    first and every refund then finds its commission settled and absorbs it."""
    from concurrent.futures import ThreadPoolExecutor

    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 7, "clawback": "absorb"})
    bind(tenant, "D", "buyer")
    for n in range(12):
        order(tenant, f"o{n}", 1000, paid_at=datetime(2026, 10, 1, tzinfo=UTC))
    settlement = draft(tenant, datetime(2026, 10, 10, tzinfo=UTC))
    with ThreadPoolExecutor(max_workers=4) as pool:
        approval = pool.submit(approve, tenant, settlement["id"])
        refunds = [pool.submit(refund, tenant, f"o{n}", "r", 1000) for n in range(12)]
        status = approval.result().status_code
        kinds = [r.result().json()["reversals"][0]["kind"] for r in refunds]
    assert status in (200, 409)
    if status == 200:
        assert set(kinds) == {"absorbed_reversal"}
        assert sum(balance(tenant, "D").values()) == 1200
    else:
        assert set(kinds) == {"reversal"}
        assert sum(balance(tenant, "D").values()) == 0


# ------------------------------------------------------------------ issue 12: no early pay


def test_a_cutoff_in_the_future_is_422(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 7})
    bind(tenant, "D", "buyer")
    order(tenant, "o1", 10000, paid_at=datetime.now(UTC) - timedelta(days=3))  # due in 4 days
    for ahead in (timedelta(days=10), timedelta(seconds=30)):
        response = tenant.post(
            "/v1/settlements", {"cutoff": (datetime.now(UTC) + ahead).isoformat()}
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "cutoff"
        assert "later than now" in response.json()["errors"][0]["message"]
    assert tenant.get("/v1/settlements").json()["settlements"] == []  # nothing half-written
    assert "D" not in lines_of(draft(tenant, datetime.now(UTC)))  # still frozen


# ------------------------------------------------------------------ property


DAY = timedelta(days=1)
ORDER = st.tuples(st.just("order"), st.integers(0, 40), st.integers(1, 300_000), st.integers(0, 2))
Op = st.one_of(
    ORDER,
    # refund: which order, how much (0 = whatever remains: a full refund)
    st.tuples(
        st.just("refund"), st.integers(0, 9), st.one_of(st.just(0), st.integers(1, 300_000)),
        st.just(0),
    ),
    st.tuples(st.just("draft"), st.integers(0, 60), st.just(0), st.just(0)),
    # approve: the latest draft, or one n drafts before it
    st.tuples(st.just("approve"), st.integers(0, 3), st.just(0), st.just(0)),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.tuples(st.lists(ORDER, min_size=1, max_size=4), st.lists(Op, min_size=2, max_size=12))
    .map(lambda pair: pair[0] + pair[1]),
    clawback=st.sampled_from(["net_off", "absorb"]),
    threshold=st.sampled_from([0, 0, 500]),
)
def test_settlements_and_balances_reconcile_with_an_independent_reckoning(
    client, ops, clawback, threshold
):
    """Random orders (paid 0..40 days into a 60-day past window), refunds (today), drafts
    (cutoffs in that window or today) and approvals. Reckoned without the server: each
    distributor's commission minus the reversals that count against them (under ``absorb``, a
    reversal of an already settled commission is the tenant's loss). Then for every
    distributor, what approved settlements pay plus their balance equals that, to the fen; and
    no approved settlement pays a commission whose refund it knew of when it was approved."""
    tenant = make_tenant(client, "prop-settle")
    rates = [1000, 700, 300]
    program = {"commission_bps": rates, "freeze_days": 7, "clawback": clawback,
               "payout_threshold_fen": threshold}
    assert tenant.put("/v1/program", program).status_code == 200
    buyers = ["b0", "b1", "b2"]
    uplines = {"b0": ["A"], "b1": ["B", "A"], "b2": ["C", "B", "A"]}
    register(tenant, "A")
    arrive(tenant, "B", link_of(tenant, "A"))
    register(tenant, "B")
    arrive(tenant, "C", link_of(tenant, "B"))
    register(tenant, "C")
    for buyer, chain in uplines.items():
        arrive(tenant, buyer, link_of(tenant, chain[0]))
    start = datetime.now(UTC).replace(microsecond=0) - 60 * DAY
    orders: list[tuple[str, int, list[str]]] = []  # (order id, amount, upline)
    refunded: dict[str, int] = {}
    expected = dict.fromkeys("ABC", 0)
    commission_of: dict[tuple[str, int], int] = {}  # (order, level) -> fen
    settled: set[tuple[str, int]] = set()  # commissions locked by an approved settlement
    drafts: list[str] = []
    approved_step: dict[str, int] = {}
    for step, (kind, a, b, c) in enumerate(ops):
        if kind == "order":
            order_id, buyer = f"o{step}", buyers[c]
            response = order(tenant, order_id, b, user=buyer, paid_at=start + a * DAY)
            assert response.status_code == 201, response.text
            orders.append((order_id, b, uplines[buyer]))
            refunded[order_id] = 0
            for level, (d, rate) in enumerate(zip(uplines[buyer], rates, strict=False), 1):
                commission_of[(order_id, level)] = b * rate // 10000
                expected[d] += b * rate // 10000
        elif kind == "refund" and orders:
            order_id, amount, upline = orders[a % len(orders)]
            fen = min(b or amount, amount - refunded[order_id])
            if fen == 0:
                continue
            assert refund(tenant, order_id, f"r{step}", fen).status_code == 201
            for level, d in enumerate(upline, 1):
                c_fen = commission_of[(order_id, level)]
                taken = (c_fen * (refunded[order_id] + fen) // amount
                         - c_fen * refunded[order_id] // amount)
                if not (clawback == "absorb" and (order_id, level) in settled):
                    expected[d] -= taken
            refunded[order_id] += fen
        elif kind == "draft":
            cutoff = min(start + a * DAY, datetime.now(UTC))
            drafts.append(draft(tenant, cutoff)["id"])
        elif kind == "approve" and drafts:
            settlement_id = drafts[-1 - a % len(drafts)]
            response = approve(tenant, settlement_id)
            assert response.status_code in (200, 409), response.text
            event(f"approval answered {response.status_code}")
            if response.status_code == 200:
                approved_step.setdefault(settlement_id, step)
                for order_id, _, _ in orders:
                    for line in tenant.get(f"/v1/orders/{order_id}/explain",
                                           scope="sdk").json()["commissions"]:
                        if line["settlement_id"] is not None:
                            settled.add((order_id, line["level"]))
    for order_id, _, _ in orders:
        explained = tenant.get(f"/v1/orders/{order_id}/explain", scope="sdk").json()
        for line in explained["commissions"]:
            if line["settlement_id"] is None:
                continue
            # Every reversal of a paid commission that existed when its settlement was
            # approved is held by that same settlement: a known refund is never paid out.
            approved_at = approved_step[line["settlement_id"]]
            for refund_line in explained["refunds"]:
                if int(refund_line["refund_id"][1:]) > approved_at:
                    continue
                for r in refund_line["reversals"]:
                    if r["level"] == line["level"]:
                        event("a paid commission had a refund known at approval")
                        assert r["settlement_id"] == line["settlement_id"], (order_id, r)
    for d in "ABC":
        b = balance(tenant, d)
        assert settled_total(tenant, d) == b["settled_fen"] + b["paid_fen"]
        assert settled_total(tenant, d) + b["pending_fen"] + b["available_fen"] == expected[d]
    for settlement_id in drafts:
        s = tenant.get(f"/v1/settlements/{settlement_id}").json()
        assert s["total_fen"] == sum(ln["net_fen"] for ln in s["lines"])
        assert s["total_fen"] == locked_entry_total(tenant, settlement_id)
