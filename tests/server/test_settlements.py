"""Settlements and finance exports: reconcile to the fen, never pay an entry twice."""

from __future__ import annotations

import csv
import io
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest

from tests.conftest import TenantKeys
from tests.server.test_orders import order, refund
from tests.server.test_referrals import arrive, link_of, register

PAID = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 6, 1, tzinfo=UTC)


def setup_earners(tenant: TenantKeys, **program) -> None:
    tenant.put("/v1/program", {"commission_bps": [1000, 500], **program})
    register(tenant, "top")
    register(tenant, "=near")  # a hostile-looking id: exports must escape it
    tenant.put("/v1/distributors/top", {"nickname": "+大使 top"}, scope="sdk")
    arrive(tenant, "=near", link_of(tenant, "top"))
    arrive(tenant, "buyer", link_of(tenant, "=near"))


def draft(tenant: TenantKeys, cutoff: datetime = CUTOFF) -> dict:
    response = tenant.post("/v1/settlements", {"cutoff": cutoff.isoformat()})
    assert response.status_code == 201, response.text
    return response.json()


def lines_of(settlement: dict) -> dict[str, dict]:
    return {line["distributor_id"]: line for line in settlement["lines"]}


def locked_entry_total(tenant: TenantKeys, settlement_id: str) -> int:
    async def total(db, tenant_id, settlement_id):
        return await db.fetchval(
            "SELECT COALESCE(SUM(e.amount_fen), 0) FROM settlement_items i JOIN ledger_entries e"
            " ON e.tenant_id = i.tenant_id AND e.id = i.entry_id"
            " WHERE i.tenant_id = $1 AND i.settlement_id = $2",
            tenant_id,
            settlement_id,
        )

    return int(tenant.call(total, tenant.tenant_id, settlement_id))


def test_draft_nets_each_distributor_and_reconciles(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    order(tenant, "o2", 20000)
    refund(tenant, "o2", "r1", 5000)
    order(tenant, "late", 10000, paid_at=datetime.now(UTC) - timedelta(days=1))  # still frozen
    settlement = draft(tenant, datetime.now(UTC))
    lines = lines_of(settlement)
    assert lines["=near"] == {
        "distributor_id": "=near",
        "commission_fen": 3000,
        "red_packet_fen": 0,
        "prize_fen": 0,
        "reversal_fen": -500,
        "net_fen": 2500,
        "transfer_ref": None,
        "netted_reversal_fen": -500,  # the refund of o2 nets against o2's commission
    }
    assert lines["top"]["net_fen"] == 1250
    assert settlement["status"] == "draft"
    assert settlement["total_fen"] == sum(ln["net_fen"] for ln in settlement["lines"]) == 3750
    assert locked_entry_total(tenant, settlement["id"]) == 3750


def test_threshold_and_negative_nets_carry_forward(tenant):
    setup_earners(tenant, payout_threshold_fen=1500)
    order(tenant, "o1", 20000)  # near 2000, top 1000 (< threshold)
    settlement = draft(tenant)
    assert set(lines_of(settlement)) == {"=near"}
    assert settlement["total_fen"] == 2000
    assert locked_entry_total(tenant, settlement["id"]) == 2000


def test_approve_locks_entries_and_paid_moves_them(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    settlement = draft(tenant)
    approved = tenant.post(f"/v1/settlements/{settlement['id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert tenant.post(f"/v1/settlements/{settlement['id']}/approve").json()["status"] == "approved"
    balance = tenant.get("/v1/distributors/=near", scope="sdk").json()["balance"]
    assert balance == {"pending_fen": 0, "available_fen": 0, "settled_fen": 1000, "paid_fen": 0}
    assert draft(tenant)["lines"] == []  # approved entries never show again
    unknown = tenant.post(f"/v1/settlements/{settlement['id']}/paid",
                          {"references": {"top": "T1", "stranger": "T2"}})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "references.stranger"
    refs = {"top": "wx-001", "=near": "wx-002"}
    paid = tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": refs})
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert {ln["transfer_ref"] for ln in paid.json()["lines"]} == {"wx-001", "wx-002"}
    assert (
        tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": refs}).status_code
        == 200
    )
    other = tenant.post(
        f"/v1/settlements/{settlement['id']}/paid", {"references": {"top": "x", "=near": "y"}}
    )
    assert other.status_code == 409
    balance = tenant.get("/v1/distributors/=near", scope="sdk").json()["balance"]
    assert balance["paid_fen"] == 1000 and balance["settled_fen"] == 0


def test_paying_a_draft_is_409(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    settlement = draft(tenant)
    response = tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": {}})
    assert response.status_code == 409


def test_overlapping_drafts_one_approval_wins(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    first, second = draft(tenant), draft(tenant)
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(
            pool.map(
                lambda s: tenant.post(f"/v1/settlements/{s['id']}/approve").status_code,
                [first, second],
            )
        )
    assert statuses == [200, 409]


def test_clawback_after_payment_nets_off_next_time(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    order(tenant, "o2", 10000)
    first = draft(tenant)
    tenant.post(f"/v1/settlements/{first['id']}/approve")
    refund(tenant, "o1", "r1", 10000)  # near owes 1000 back
    order(tenant, "o3", 30000, paid_at=PAID + timedelta(days=1))
    second = lines_of(draft(tenant, datetime.now(UTC)))
    assert second["=near"]["commission_fen"] == 3000
    assert second["=near"]["reversal_fen"] == -1000
    assert second["=near"]["net_fen"] == 2000


def test_held_distributor_is_left_out(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    tenant.put("/v1/distributors/top", {"nickname": "top", "status": "held"})
    assert set(lines_of(draft(tenant))) == {"=near"}


def test_csv_export_reads_back_and_is_stable(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 12345)
    settlement = draft(tenant)
    response = tenant.get(f"/v1/settlements/{settlement['id']}/export.csv?lang=en")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    assert (
        tenant.get(f"/v1/settlements/{settlement['id']}/export.csv?lang=en").content
        == response.content
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    by_id = {r["distributor_id"]: r for r in rows}
    assert by_id["'=near"]["net_fen"] == "1234" and by_id["'=near"]["net_yuan"] == "12.34"
    assert by_id["top"]["nickname"] == "'+大使 top"
    assert by_id["TOTAL"]["net_fen"] == str(settlement["total_fen"])
    assert (
        sum(int(r["net_fen"]) for r in rows if r["distributor_id"] != "TOTAL")
        == settlement["total_fen"]
    )


def test_xlsx_export_reads_back_and_is_stable(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 12345)
    settlement = draft(tenant)
    first = tenant.get(f"/v1/settlements/{settlement['id']}/export.xlsx?lang=en")
    assert first.status_code == 200
    again = tenant.get(f"/v1/settlements/{settlement['id']}/export.xlsx?lang=en")
    assert again.content == first.content
    book = openpyxl.load_workbook(io.BytesIO(first.content))
    rows = list(book["Lines"].iter_rows(values_only=True))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    net = header.index("net_fen")
    assert sum(r[net] for r in body) == settlement["total_fen"] == total[net]
    assert total[0] == "TOTAL"
    assert {r[0] for r in body} == {"=near", "top"}  # XLSX cells are typed text: no formula risk
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True)}
    assert summary["total_fen"] == settlement["total_fen"]


def test_cli_export_writes_the_file(tenant, tmp_path):
    from server.settlements.export import export_to_file

    setup_earners(tenant)
    order(tenant, "o1", 10000)
    settlement = draft(tenant)
    target = tmp_path / "out.csv"
    log = io.StringIO()
    args = Namespace(
        settlement_id=settlement["id"], tenant=None, format="csv", output=str(target), lang="zh"
    )
    assert tenant.call(lambda db: export_to_file(db, args, log)) == 0
    assert (
        target.read_bytes() == tenant.get(f"/v1/settlements/{settlement['id']}/export.csv").content
    )
    assert log.getvalue() == f"wrote 2 lines to {target}\n"


def test_settlements_are_tenant_scoped(tenant, other_tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    settlement = draft(tenant)
    for path in ("", "/export.csv", "/export.xlsx"):
        assert other_tenant.get(f"/v1/settlements/{settlement['id']}{path}").status_code == 404
    assert other_tenant.post(f"/v1/settlements/{settlement['id']}/approve").status_code == 404
    assert (
        tenant.post("/v1/settlements", {"cutoff": CUTOFF.isoformat()}, scope="sdk").status_code
        == 403
    )


@pytest.mark.parametrize("cutoff", ["2026-06-01", "yesterday", None])
def test_bad_cutoff_is_422(tenant, cutoff):
    response = tenant.post("/v1/settlements", {"cutoff": cutoff})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cutoff"


HOSTILE = [
    "a,b",
    'say "hi"',
    "line\nbreak",
    "cr\rx",
    "=SUM(A1)",
    "-5",
    "@x",
    "\ttab",
    "+1",
    "中文,逗号",
    "x",
]


def test_database_formatted_csv_equals_python_csv_writer(tenant):
    """The export's lines are built in SQL; they must be exactly what csv.writer would write."""
    from rewards.money import fen_to_yuan_str
    from server.settlements.export import HEADER, escape_cell

    tenant.put("/v1/program", {"commission_bps": [1000]})
    for n, nickname in enumerate(HOSTILE):
        distributor = f"d{n},{n}" if n % 3 == 0 else f"d{n}"
        register(tenant, distributor)
        tenant.put(f"/v1/distributors/{distributor}", {"nickname": nickname}, scope="sdk")
        arrive(tenant, f"buyer{n}", link_of(tenant, distributor))
        order(tenant, f"o{n}", 1234 + 997 * n, user=f"buyer{n}")
        if n % 2:
            refund(tenant, f"o{n}", "r", 1000)
    settlement = draft(tenant, datetime.now(UTC))
    refs = {
        line["distributor_id"]: f"-ref,{line['distributor_id']}" for line in settlement["lines"]
    }
    lines = []
    cursor = None
    while True:
        page = tenant.get(
            f"/v1/settlements/{settlement['id']}",
            params={"limit": 500} | ({"cursor": cursor} if cursor else {}),
        ).json()
        lines += page["lines"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    tenant.post(f"/v1/settlements/{settlement['id']}/approve")
    tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": refs})
    nicknames = {}
    for line in lines:
        nicknames[line["distributor_id"]] = tenant.get(
            f"/v1/distributors/{line['distributor_id']}", scope="sdk"
        ).json()["nickname"]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(HEADER)
    totals = [0] * 6
    for line in sorted(lines, key=lambda ln: ln["distributor_id"]):
        amounts = [
            line[f"{k}_fen"]
            for k in ("commission", "red_packet", "prize", "reversal", "net", "netted_reversal")
        ]
        totals = [t + a for t, a in zip(totals, amounts, strict=True)]
        writer.writerow(
            [escape_cell(line["distributor_id"]), escape_cell(nicknames[line["distributor_id"]])]
            + [c for a in amounts[:5] for c in (str(a), fen_to_yuan_str(a))]
            + [escape_cell(refs[line["distributor_id"]])]
            + [str(amounts[5]), fen_to_yuan_str(amounts[5])]
        )
    writer.writerow(
        ["TOTAL", ""]
        + [c for t in totals[:5] for c in (str(t), fen_to_yuan_str(t))]
        + ["", str(totals[5]), fen_to_yuan_str(totals[5])]
    )
    exported = tenant.get(f"/v1/settlements/{settlement['id']}/export.csv?lang=en").content
    assert exported == "\ufeff".encode() + expected.getvalue().encode()


def test_lines_without_stored_cells_export_the_same(tenant):
    """Drafts made before cells were stored (migration 0010) are rendered on export."""
    setup_earners(tenant)
    order(tenant, "o1", 12345)
    settlement = draft(tenant)
    stored = tenant.get(f"/v1/settlements/{settlement['id']}/export.csv").content

    async def clear(db, tenant_id, settlement_id):
        await db.execute(
            "UPDATE settlement_lines SET csv_cells = '' WHERE tenant_id = $1"
            " AND settlement_id = $2",
            tenant_id,
            settlement_id,
        )

    tenant.call(clear, tenant.tenant_id, settlement["id"])
    assert tenant.get(f"/v1/settlements/{settlement['id']}/export.csv").content == stored


def test_settlements_and_campaigns_are_listed_for_operators(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    first, second = draft(tenant), draft(tenant)
    tenant.post(f"/v1/settlements/{first['id']}/approve")
    listed = tenant.get("/v1/settlements", params={"limit": 1}).json()
    rest = tenant.get(
        "/v1/settlements", params={"limit": 1, "cursor": listed["next_cursor"]}
    ).json()
    assert [s["id"] for s in listed["settlements"] + rest["settlements"]] == [
        second["id"],
        first["id"],
    ]
    approved = tenant.get("/v1/settlements", params={"status": "approved"}).json()["settlements"]
    assert [s["id"] for s in approved] == [first["id"]]
    assert tenant.get("/v1/settlements", scope="sdk").status_code == 403
    body = {
        "name": "c",
        "starts_at": "2026-01-01T00:00:00+08:00",
        "ends_at": "2027-01-01T00:00:00+08:00",
        "metric": "gmv",
    }
    ids = [tenant.post("/v1/campaigns", body).json()["id"] for _ in range(3)]
    tenant.post(f"/v1/campaigns/{ids[0]}/close")
    page = tenant.get("/v1/campaigns", scope="sdk", params={"limit": 2}).json()
    more = tenant.get(
        "/v1/campaigns", scope="sdk", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [c["id"] for c in page["campaigns"] + more["campaigns"]] == ids[::-1]
    closed = tenant.get("/v1/campaigns", scope="sdk", params={"status": "closed"}).json()[
        "campaigns"
    ]
    assert [c["id"] for c in closed] == [ids[0]]


def test_a_line_without_a_reference_is_still_paid(tenant):
    setup_earners(tenant)
    order(tenant, "o1", 10000)
    settlement = draft(tenant)
    tenant.post(f"/v1/settlements/{settlement['id']}/approve")
    paid = tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": {"top": "wx-9"}})
    assert paid.status_code == 200
    refs = {ln["distributor_id"]: ln["transfer_ref"] for ln in paid.json()["lines"]}
    assert refs == {"top": "wx-9", "=near": None}
    assert tenant.get("/v1/distributors/=near", scope="sdk").json()["balance"]["paid_fen"] == 1000
