"""``GET /v1/withdrawals/export.csv``: the withdrawals of a status for the payout rail.

UTF-8 with a BOM (Excel), CRLF rows; amounts in fen and in yuan; text cells guarded against
formula injection (:func:`server.settlements.csvformat.text_cell`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from server.db import Connection
from server.settlements.csvformat import text_cell, yuan
from server.withdrawals.schemas import Withdrawal
from server.withdrawals.service import list_withdrawals

__all__ = ["Status", "export_csv"]

Status = Literal["requested", "approved", "rejected", "paid"]
_HEADER = (
    "withdrawal_id,distributor_id,nickname,amount_fen,amount_yuan,fee_fen,fee_yuan,"
    "net_fen,net_yuan,status,created_at,transfer_ref\r\n"
)


async def export_csv(db: Connection, tenant_id: str, status: Status) -> AsyncIterator[bytes]:
    """The file in chunks of at most 500 rows, oldest first."""
    yield ("\ufeff" + _HEADER).encode()
    cursor: str | None = None
    names: dict[str, str] = {}
    while True:
        page = await list_withdrawals(db, tenant_id, status, None, 500, cursor)
        missing = {w.distributor_id for w in page.withdrawals} - set(names)
        for d in sorted(missing):
            row = await db.fetchrow(
                "SELECT nickname FROM distributors WHERE tenant_id = $1 AND distributor_id = $2",
                tenant_id,
                d,
            )
            names[d] = "" if row is None else row["nickname"]
        yield "".join(_row(w, names[w.distributor_id]) for w in page.withdrawals).encode()
        cursor = page.next_cursor
        if cursor is None:
            return


def _row(w: Withdrawal, nickname: str) -> str:
    money = ",".join(f"{a},{yuan(a)}" for a in (w.amount_fen, w.fee_fen, w.net_fen))
    cells = [text_cell(w.id), text_cell(w.distributor_id), text_cell(nickname), money, w.status,
             w.created_at, text_cell(w.transfer_ref)]  # fmt: skip
    return ",".join(cells) + "\r\n"
