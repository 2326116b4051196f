"""The payout file: one row per payable line, in the column layout of the brand's payout channel.

Finance uploads it to a bank's batch transfer page or to WeChat Pay's 商家转账 batch. The layout
(columns, order, amount unit, encoding) is a small mapping: the tenant's own
(``program.payout_layout``) or a shipped preset (:data:`PRESETS`). Text cells get the CSV
escape of the statement (no formula injection, minimal quoting); amounts are formatted from
the integer fen, never through a float. Only approved or paid settlements have a payout file:
paying a draft would pay a statement nobody approved.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from server.common import from_us
from server.db import Connection
from server.errors import Conflict, InvalidInput
from server.program.schemas import PayoutColumn, PayoutLayout
from server.program.service import get_program
from server.settlements.csvformat import text_cell, yuan
from server.settlements.service import settlement_row

__all__ = ["PRESETS", "payout_chunks", "resolve_layout"]

PAGE = 5000

PRESETS: dict[str, PayoutLayout] = {
    # 通用银行批量代发: what most banks' batch pages take (GBK, yuan, a use per row).
    "generic_bank": PayoutLayout(
        columns=[
            PayoutColumn("line_no", "序号"),
            PayoutColumn("distributor_id", "收款人编号"),
            PayoutColumn("nickname", "收款人名称"),
            PayoutColumn("amount", "金额(元)"),
            PayoutColumn("remark", "用途"),
        ],
        amount_unit="yuan",
        encoding="gbk",
    ),
    # 微信支付 商家转账 batch details: openid, amount and a detail number unique per batch.
    "wechat_transfer": PayoutLayout(
        columns=[
            PayoutColumn("detail_no", "商家明细单号"),
            PayoutColumn("distributor_id", "收款用户openid"),
            PayoutColumn("amount", "转账金额(元)"),
            PayoutColumn("remark", "转账备注"),
        ],
        amount_unit="yuan",
        encoding="utf-8-sig",
    ),
}
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


async def resolve_layout(db: Connection, tenant_id: str, name: str | None) -> PayoutLayout:
    """``name`` ("program", a preset, or None: the program's layout, else ``generic_bank``)."""
    if name in (None, "", "program"):
        layout = (await get_program(db, tenant_id)).payout_layout
        if layout is not None:
            return layout
        if name == "program":
            raise InvalidInput(
                "layout", "the program has no payout_layout; set one with PUT /v1/program"
            )
        return PRESETS["generic_bank"]
    if name not in PRESETS:
        raise InvalidInput(
            "layout", f"unknown layout {name!r}: use program, {', '.join(sorted(PRESETS))}"
        )
    return PRESETS[name]


def media_charset(layout: PayoutLayout) -> str:
    return "gbk" if layout.encoding == "gbk" else "utf-8"


async def payout_chunks(
    db: Connection, tenant_id: str, settlement_id: str, layout: PayoutLayout
) -> AsyncIterator[bytes]:
    """The payout file in chunks (a page of lines each), encoded as the layout says."""
    row = await settlement_row(db, tenant_id, settlement_id)
    if row["status"] == "draft":
        raise Conflict(
            f"settlement {settlement_id!r} is a draft; approve it before making its payout file"
        )
    encoding = layout.encoding
    remark = layout.remark.replace("{settlement_id}", settlement_id).replace(
        "{cutoff_date}", from_us(int(row["cutoff_us"])).date().isoformat()
    )
    batch = _NOT_ALNUM.sub("", settlement_id)[:26]
    fields = [c.field for c in layout.columns]
    first = [",".join(text_cell(c.header) for c in layout.columns)] if layout.header_row else []
    line_no = 0
    after = ""
    prefix = "\ufeff" if encoding == "utf-8-sig" else ""
    while rows := await db.fetch_values(
        "SELECT distributor_id, nickname, net_fen, transfer_ref FROM settlement_lines"
        " WHERE tenant_id = $1 AND settlement_id = $2 AND distributor_id > $3 AND net_fen > 0"
        " ORDER BY distributor_id LIMIT $4",
        tenant_id,
        settlement_id,
        after,
        PAGE,
    ):
        out = first
        first = []
        for distributor_id, nickname, net_fen, transfer_ref in rows:
            line_no += 1
            values: dict[str, Any] = {
                "line_no": str(line_no),
                "detail_no": f"{batch}{line_no:06d}",
                "distributor_id": text_cell(distributor_id),
                "nickname": text_cell(nickname),
                "amount": yuan(int(net_fen)) if layout.amount_unit == "yuan" else str(net_fen),
                "transfer_ref": text_cell(transfer_ref),
                "settlement_id": text_cell(settlement_id),
                "remark": text_cell(remark),
            }
            out.append(",".join(values[f] for f in fields))
        yield _encode(prefix + "\r\n".join(out) + "\r\n", encoding)
        prefix = ""
        after = rows[-1][0]
    if first or prefix:  # no payable line: the header alone
        yield _encode(prefix + "".join(f"{h}\r\n" for h in first), encoding)


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "gbk":
        return text.encode("gbk", errors="replace")
    return text.encode("utf-8")
