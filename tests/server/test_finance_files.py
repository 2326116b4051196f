"""Finance files read back as finance tools read them: numbers are numbers, sums add up."""

from __future__ import annotations

import csv
import io
import time
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest

from tests.conftest import TenantKeys
from tests.server.test_orders import order, refund
from tests.server.test_settlements import draft, setup_earners

ZH_HEADER = [
    "分销员ID", "昵称", "佣金(分)", "佣金(元)", "红包(分)", "红包(元)", "奖金(分)", "奖金(元)",
    "退款冲回(分)", "退款冲回(元)", "应付净额(分)", "应付净额(元)", "转账单号",
    "其中抵扣本期佣金(分)", "其中抵扣本期佣金(元)",
]  # fmt: skip


def statement(tenant: TenantKeys) -> dict:
    setup_earners(tenant)
    tenant.put("/v1/distributors/top", {"nickname": '=HYPERLINK("x") 大使 😀'}, scope="sdk")
    order(tenant, "o1", 12345)
    order(tenant, "o2", 20001)
    refund(tenant, "o2", "r1", 5000)
    time.sleep(0.002)  # the reversal is due now; the cutoff may not be in the future
    return draft(tenant, datetime.now(UTC) - timedelta(milliseconds=1))


def xlsx(tenant: TenantKeys, settlement_id: str, lang: str = "zh") -> openpyxl.Workbook:
    response = tenant.get(f"/v1/settlements/{settlement_id}/export.xlsx?lang={lang}")
    assert response.status_code == 200, response.text
    return openpyxl.load_workbook(io.BytesIO(response.content), data_only=True)


def csv_rows(tenant: TenantKeys, settlement_id: str, lang: str = "zh") -> list[list[str]]:
    response = tenant.get(f"/v1/settlements/{settlement_id}/export.csv?lang={lang}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_xlsx_values_are_numbers_and_the_total_row_reconciles(tenant):
    settlement = statement(tenant)
    book = xlsx(tenant, settlement["id"])
    sheet = book["Lines"]
    rows = list(sheet.iter_rows(values_only=True))
    header, body, total = list(rows[0]), rows[1:-1], rows[-1]
    assert header == ZH_HEADER
    assert total[0] == "合计"
    assert len(body) == settlement["line_count"] == 2
    lines = {line["distributor_id"]: line for line in settlement["lines"]}
    for row in body:
        line = lines[row[0]]
        for n, kind in enumerate(("commission", "red_packet", "prize", "reversal", "net")):
            fen, yuan = row[2 + 2 * n], row[3 + 2 * n]
            assert isinstance(fen, int) and fen == line[f"{kind}_fen"]
            assert isinstance(yuan, int | float) and not isinstance(yuan, bool)
            # The stored number is the exact decimal fen/100 (what the cell text holds).
            assert Decimal(str(yuan)) == Decimal(fen) / 100
    for col in range(2, 12):
        assert total[col] == pytest.approx(sum(r[col] for r in body))
        if col % 2 == 0:
            assert total[col] == sum(r[col] for r in body)  # fen: exact integers
    assert total[10] == settlement["total_fen"]
    assert sheet.freeze_panes == "A2"
    # o2's refund came before the draft: netted against o2's commission (issue 20)
    netted = sum(line["reversal_fen"] for line in settlement["lines"])
    assert total[13] == sum(r[13] for r in body) == netted < 0
    assert sheet.auto_filter.ref == f"A1:O{len(body) + 1}"
    assert sheet.column_dimensions["A"].width >= 20
    assert sheet.cell(2, 4).number_format == "0.00"
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True)}
    assert summary["应付合计(分)"] == settlement["total_fen"]
    assert Decimal(str(summary["应付合计(元)"])) == Decimal(settlement["total_fen"]) / 100


def test_csv_and_xlsx_have_the_same_columns_and_totals_in_both_languages(tenant):
    settlement = statement(tenant)
    for lang in ("zh", "en"):
        rows = csv_rows(tenant, settlement["id"], lang)
        sheet_rows = list(xlsx(tenant, settlement["id"], lang)["Lines"].iter_rows(values_only=True))
        assert rows[0] == list(sheet_rows[0])
        assert rows[-1][0] == sheet_rows[-1][0] == ("合计" if lang == "zh" else "TOTAL")
        for col in range(2, 12, 2):
            assert int(rows[-1][col]) == sheet_rows[-1][col] == sum(int(r[col]) for r in rows[1:-1])
    assert csv_rows(tenant, settlement["id"], "en")[0][0] == "distributor_id"
    assert csv_rows(tenant, settlement["id"])[0] == ZH_HEADER


def test_hostile_text_is_escaped_in_csv_and_typed_text_in_xlsx(tenant):
    settlement = statement(tenant)
    rows = {r[0]: r for r in csv_rows(tenant, settlement["id"])}
    assert rows["top"][1].startswith("'=HYPERLINK")
    assert "'=near" in rows
    sheet = xlsx(tenant, settlement["id"])["Lines"]
    cells = {sheet.cell(r, 1).value: sheet.cell(r, 2) for r in range(2, 4)}
    assert cells["top"].data_type == "s" and cells["top"].value.startswith("=HYPERLINK")
    assert cells["top"].value.endswith("😀")


def test_details_sheet_traces_every_line_to_its_entries(tenant):
    settlement = statement(tenant)
    book = xlsx(tenant, settlement["id"], "en")
    rows = list(book["Details"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[:5] == ("distributor_id", "entry_id", "kind", "level", "order_id")
    amount = header.index("amount_fen")
    per_distributor: dict[str, int] = {}
    for row in body:
        per_distributor[row[0]] = per_distributor.get(row[0], 0) + row[amount]
        assert Decimal(str(row[amount + 1])) == Decimal(row[amount]) / 100
    assert per_distributor == {
        line["distributor_id"]: line["net_fen"] for line in settlement["lines"]
    }
    kinds = {row[2] for row in body}
    assert {"commission", "reversal"} <= kinds
    assert {row[4] for row in body} == {"o1", "o2"}
    assert any(row[5] == "r1" for row in body)
    zh = list(xlsx(tenant, settlement["id"])["Details"].iter_rows(values_only=True))
    assert zh[0][0] == "分销员ID" and {"佣金", "退款冲回"} <= {row[2] for row in zh[1:]}


def approved(tenant: TenantKeys) -> dict:
    settlement = statement(tenant)
    assert tenant.post(f"/v1/settlements/{settlement['id']}/approve").status_code == 200
    return settlement


def test_payout_file_of_a_draft_is_refused(tenant):
    settlement = statement(tenant)
    response = tenant.get(f"/v1/settlements/{settlement['id']}/payout.csv")
    assert response.status_code == 409
    assert "approve" in response.json()["detail"]


def test_payout_generic_bank_preset_is_gbk_in_yuan(tenant):
    settlement = approved(tenant)
    response = tenant.get(f"/v1/settlements/{settlement['id']}/payout.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=gbk"
    rows = list(csv.reader(io.StringIO(response.content.decode("gbk"))))
    assert rows[0] == ["序号", "收款人编号", "收款人名称", "金额(元)", "用途"]
    body = rows[1:]
    assert [r[0] for r in body] == ["1", "2"]
    assert sum(Decimal(r[3]) for r in body) * 100 == settlement["total_fen"]
    by_id = {r[1]: r for r in body}
    assert by_id["top"][2].startswith("'=HYPERLINK") and by_id["top"][2].endswith(
        "?"
    )  # no emoji in GBK
    assert "'=near" in by_id
    assert by_id["top"][4] == f"佣金结算 {settlement['id']}"


def test_payout_wechat_preset_and_tenant_layout(tenant):
    settlement = approved(tenant)
    response = tenant.get(f"/v1/settlements/{settlement['id']}/payout.csv?layout=wechat_transfer")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "商家明细单号"
    detail_numbers = [r[0] for r in rows[1:]]
    assert len(set(detail_numbers)) == 2 and all(
        d.isalnum() and len(d) <= 32 for d in detail_numbers
    )

    layout = {
        "columns": [
            {"field": "distributor_id", "header": "payee"},
            {"field": "amount", "header": "amount_fen"},
            {"field": "transfer_ref", "header": "ref"},
        ],
        "amount_unit": "fen",
        "encoding": "utf-8-sig",
    }
    program = tenant.get("/v1/program").json()
    program.pop("updated_at", None)
    assert tenant.put("/v1/program", {**program, "payout_layout": layout}).status_code == 200
    tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": {"top": "TX-1"}})
    rows = list(
        csv.reader(
            io.StringIO(
                tenant.get(f"/v1/settlements/{settlement['id']}/payout.csv").content.decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert rows[0] == ["payee", "amount_fen", "ref"]
    assert sum(int(r[1]) for r in rows[1:]) == settlement["total_fen"]
    assert {r[0]: r[2] for r in rows[1:]}["top"] == "TX-1"


@pytest.mark.parametrize(
    ("query", "field"),
    [("layout=swift", "layout"), ("layout=program", "layout")],
)
def test_payout_layout_errors_name_the_field(tenant, query, field):
    settlement = approved(tenant)
    response = tenant.get(f"/v1/settlements/{settlement['id']}/payout.csv?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_bad_payout_layout_in_program_is_422(tenant):
    response = tenant.put(
        "/v1/program",
        {"payout_layout": {"columns": [{"field": "iban", "header": "x"}]}},
    )
    assert response.status_code == 422
    assert "payout_layout" in response.json()["errors"][0]["field"]


def test_finance_files_are_tenant_scoped(tenant, other_tenant):
    settlement = approved(tenant)
    for path in ("/export.csv?lang=en", "/export.xlsx", "/payout.csv"):
        assert other_tenant.get(f"/v1/settlements/{settlement['id']}{path}").status_code == 404


def test_cli_exports_in_english_and_the_payout_file(tenant, tmp_path):
    from server.settlements.export import export_to_file

    settlement = approved(tenant)
    for fmt, lang, path in (
        ("csv", "en", "/export.csv?lang=en"),
        ("payout", "zh", "/payout.csv"),
    ):
        target = tmp_path / f"out.{fmt}"
        args = Namespace(
            settlement_id=settlement["id"],
            tenant=None,
            format=fmt,
            output=str(target),
            lang=lang,
            layout=None,
        )
        assert tenant.call(lambda db, a=args: export_to_file(db, a, io.StringIO())) == 0
        assert (
            target.read_bytes() == tenant.get(f"/v1/settlements/{settlement['id']}{path}").content
        )
