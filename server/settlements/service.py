"""Settlement lifecycle: draft → approved (locks its entries) → paid. Totals reconcile to the fen.

A draft takes every entry whose freeze ended by the cutoff (which may not be later than now),
that no approved settlement holds, of active (not held/frozen) distributors, plus every known
reversal of the commissions it took (:mod:`server.settlements.netting`), and nets it per
distributor (``rewards.settle``); nets below the payout threshold, or negative, carry forward:
their entries stay out. Approval re-checks the lines (409 if an entry was reversed since the
draft, is not due, or its distributor is no longer active) and inserts one
``settlement_locks`` row per entry under a unique key, so two approvals of overlapping drafts
cannot both succeed (the second gets 409), and no entry is paid twice.
"""

from __future__ import annotations

from typing import Any

from rewards.settlement import EntryAmount, settle
from server.common import decode_cursor, encode_cursor, from_us, new_id, now_us
from server.db import Connection, UniqueViolation
from server.errors import Conflict, FieldError, InvalidInput, NotFound, Unprocessable
from server.ledger import totals
from server.program.schemas import Program
from server.settlements.csvformat import line_cells
from server.settlements.netting import (
    netted_reversals,
    recheck_before_approval,
    take_known_reversals,
)
from server.settlements.schemas import (
    Settlement,
    SettlementLine,
    SettlementPage,
    SettlementSummary,
)
from server.webhooks.outbox import enqueue_event

__all__ = ["approve", "create_draft", "get_settlement", "list_settlements", "mark_paid"]

DUE_ENTRIES_SQL = """
INSERT INTO settlement_items (tenant_id, settlement_id, entry_id)
SELECT e.tenant_id, $2, e.id FROM ledger_entries e
WHERE e.tenant_id = $1 AND e.available_at_us <= $3 AND e.kind <> 'absorbed_reversal'
  AND NOT EXISTS (SELECT 1 FROM settlement_locks l WHERE l.tenant_id = e.tenant_id
                  AND l.entry_id = e.id)
  AND NOT EXISTS (SELECT 1 FROM distributors d WHERE d.tenant_id = e.tenant_id
                  AND d.distributor_id = e.distributor_id AND d.status <> 'active')
"""
# Withdrawal entries a settlement may meet (the free half of a split, a released request's
# fee and its return; server.withdrawals) are booked as commission when positive and as
# deductions (the reversal column) when negative: the line's columns stay the four it has.
TOTALS_SQL = """
SELECT e.distributor_id, e.kind, SUM(e.amount_fen) AS amount
FROM (
  SELECT e.distributor_id, e.amount_fen,
    CASE WHEN e.kind IN ('withdrawal_fee', 'withdrawal_split')
         THEN CASE WHEN e.amount_fen < 0 THEN 'reversal' ELSE 'commission' END
         ELSE e.kind END AS kind
  FROM settlement_items i JOIN ledger_entries e ON e.tenant_id = i.tenant_id AND e.id = i.entry_id
  WHERE i.tenant_id = $1 AND i.settlement_id = $2
) AS e
GROUP BY e.distributor_id, e.kind
"""
DROP_CARRIED_SQL = """
DELETE FROM settlement_items WHERE tenant_id = $1 AND settlement_id = $2 AND entry_id IN (
  SELECT i.entry_id FROM settlement_items i
  JOIN ledger_entries e ON e.tenant_id = i.tenant_id AND e.id = i.entry_id
  WHERE i.tenant_id = $1 AND i.settlement_id = $2 AND NOT EXISTS (
    SELECT 1 FROM settlement_lines s WHERE s.tenant_id = $1 AND s.settlement_id = $2
    AND s.distributor_id = e.distributor_id))
"""


async def create_draft(tx: Connection, tenant_id: str, program: Program, cutoff_us: int) -> str:
    """Draft a settlement of what is due by ``cutoff_us``; a cutoff later than now is a 422.

    (Entries due by a future cutoff are still inside their freeze window: refunds may yet claw
    them back, so they are not paid early.)
    """
    now = now_us()
    if cutoff_us > now:
        raise InvalidInput(
            "cutoff",
            f"must not be later than now ({from_us(now).isoformat()}): entries due after now "
            "are still inside their freeze window; use the current time or an earlier one",
        )
    settlement_id = new_id("stl")
    await tx.execute(DUE_ENTRIES_SQL, tenant_id, settlement_id, cutoff_us)
    await take_known_reversals(tx, tenant_id, settlement_id, cutoff_us)
    totals = await tx.fetch(TOTALS_SQL, tenant_id, settlement_id)
    payable, _carried = settle(
        (EntryAmount(r[0], r[1], int(r[2])) for r in totals), program.payout_threshold_fen
    )
    if payable:
        # The statement is a document of its date: it keeps each payee's nickname as of now,
        # and its CSV cells are rendered once here (an export only joins them).
        rows = await tx.fetch_values(
            "SELECT distributor_id, nickname FROM distributors WHERE tenant_id = $1", tenant_id
        )
        names: dict[str, str] = {r[0]: r[1] for r in rows}
        netted = await netted_reversals(tx, tenant_id, settlement_id)
        await tx.executemany(
            "INSERT INTO settlement_lines (tenant_id, settlement_id, distributor_id, nickname,"
            " commission_fen, red_packet_fen, prize_fen, reversal_fen, net_fen, csv_cells,"
            " netted_reversal_fen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [
                _line_row(tenant_id, settlement_id, ln, names.get(ln.distributor_id, ""))
                + (netted.get(ln.distributor_id, 0),)
                for ln in payable
            ],
        )
    await tx.execute(DROP_CARRIED_SQL, tenant_id, settlement_id)
    await tx.execute(
        "INSERT INTO settlements (tenant_id, settlement_id, cutoff_us, status, total_fen,"
        " line_count, created_at_us) VALUES ($1, $2, $3, 'draft', $4, $5, $6)",
        tenant_id,
        settlement_id,
        cutoff_us,
        sum(ln.net_fen for ln in payable),
        len(payable),
        now_us(),
    )
    return settlement_id


def _line_row(tenant_id: str, settlement_id: str, ln: Any, nickname: str) -> tuple[Any, ...]:
    amounts = (ln.commission_fen, ln.red_packet_fen, ln.prize_fen, ln.reversal_fen, ln.net_fen)
    return (
        tenant_id,
        settlement_id,
        ln.distributor_id,
        nickname,
        *amounts,
        line_cells(ln.distributor_id, nickname, amounts),
    )


async def list_settlements(
    db: Connection, tenant_id: str, status: str | None, limit: int, cursor: str | None
) -> SettlementPage:
    """Newest first (by creation time, then id)."""
    after = decode_cursor(cursor, int, str) or [2**62, ""]
    status_filter = " AND status = $5" if status else ""
    rows = await db.fetch(
        "SELECT settlement_id, status, cutoff_us, total_fen, line_count, created_at_us"
        " FROM settlements WHERE tenant_id = $1 AND (created_at_us < $2"
        f" OR (created_at_us = $2 AND settlement_id < $3)){status_filter}"
        " ORDER BY created_at_us DESC, settlement_id DESC LIMIT $4",
        tenant_id,
        int(after[0]),
        str(after[1]),
        limit + 1,
        *([status] if status else []),
    )
    items = [
        SettlementSummary(
            r[0],
            r[1],
            from_us(int(r[2])).isoformat(),
            int(r[3]),
            int(r[4]),
            from_us(int(r[5])).isoformat(),
        )
        for r in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return SettlementPage(
        settlements=items,
        next_cursor=encode_cursor(int(last[5]), last[0]) if last is not None else None,
    )


async def settlement_row(
    db: Connection, tenant_id: str, settlement_id: str, lock: bool = False
) -> Any:
    row = await db.fetchrow(
        "SELECT settlement_id, status, cutoff_us, total_fen, line_count, created_at_us,"
        " approved_at_us, paid_at_us FROM settlements WHERE tenant_id = $1 AND settlement_id = $2"
        + (" FOR UPDATE" if lock and db.engine == "postgres" else ""),
        tenant_id,
        settlement_id,
    )
    if row is None:
        raise NotFound(f"settlement {settlement_id!r} does not exist")
    return row


async def get_settlement(
    db: Connection, tenant_id: str, settlement_id: str, limit: int = 500, cursor: str | None = None
) -> Settlement:
    row = await settlement_row(db, tenant_id, settlement_id)
    after = decode_cursor(cursor, str) or [""]
    lines = await db.fetch(
        "SELECT distributor_id, commission_fen, red_packet_fen, prize_fen, reversal_fen, net_fen,"
        " transfer_ref, netted_reversal_fen FROM settlement_lines"
        " WHERE tenant_id = $1 AND settlement_id = $2"
        " AND distributor_id > $3 ORDER BY distributor_id LIMIT $4",
        tenant_id,
        settlement_id,
        str(after[0]),
        limit + 1,
    )

    def ts(value: Any) -> str | None:
        return from_us(int(value)).isoformat() if value is not None else None

    return Settlement(
        id=settlement_id,
        status=row["status"],
        cutoff=from_us(int(row["cutoff_us"])).isoformat(),
        total_fen=int(row["total_fen"]),
        line_count=int(row["line_count"]),
        lines=[
            SettlementLine(
                r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), r[6], int(r[7])
            )
            for r in lines[:limit]
        ],
        next_cursor=encode_cursor(lines[limit - 1][0]) if len(lines) > limit else None,
        created_at=from_us(int(row["created_at_us"])).isoformat(),
        approved_at=ts(row["approved_at_us"]),
        paid_at=ts(row["paid_at_us"]),
    )


async def approve(tx: Connection, tenant_id: str, settlement_id: str) -> None:
    row = await settlement_row(tx, tenant_id, settlement_id, lock=True)
    if row["status"] != "draft":
        return  # approving again is a no-op: the entries are locked already
    now = now_us()
    await recheck_before_approval(tx, tenant_id, settlement_id, int(row["cutoff_us"]), now)
    try:
        await tx.execute(
            "INSERT INTO settlement_locks (tenant_id, entry_id, settlement_id, status)"
            " SELECT tenant_id, entry_id, settlement_id, 'settled' FROM settlement_items"
            " WHERE tenant_id = $1 AND settlement_id = $2",
            tenant_id,
            settlement_id,
        )
    except UniqueViolation:
        raise Conflict(
            f"settlement {settlement_id!r} covers entries that another approved settlement "
            "already holds; create a new draft"
        ) from None
    await totals.on_approved(tx, tenant_id, settlement_id)
    await tx.execute(
        "UPDATE settlements SET status = 'approved', approved_at_us = $3"
        " WHERE tenant_id = $1 AND settlement_id = $2",
        tenant_id,
        settlement_id,
        now,
    )
    await enqueue_event(
        tx,
        tenant_id,
        "settlement.approved",
        f"{settlement_id}:approved",
        {
            "settlement_id": settlement_id,
            "total_fen": int(row["total_fen"]),
            "line_count": int(row["line_count"]),
        },
    )


async def mark_paid(
    tx: Connection, tenant_id: str, settlement_id: str, references: dict[str, str]
) -> None:
    row = await settlement_row(tx, tenant_id, settlement_id, lock=True)
    if row["status"] == "draft":
        raise Conflict(
            f"settlement {settlement_id!r} is a draft; approve it before marking it paid"
        )
    lines = {
        r[0]: r[1]
        for r in await tx.fetch(
            "SELECT distributor_id, transfer_ref FROM settlement_lines"
            " WHERE tenant_id = $1 AND settlement_id = $2",
            tenant_id,
            settlement_id,
        )
    }
    # A reference per line is expected (the payout rail's transfer id); a line without one is
    # still paid. Naming a distributor the settlement does not pay is an error.
    unknown = sorted(set(references) - set(lines))
    if unknown:
        raise Unprocessable(
            f"references name {len(unknown)} distributor(s) this settlement does not pay",
            [
                FieldError(f"references.{d}", "is not a line of this settlement")
                for d in unknown[:20]
            ],
        )
    if row["status"] == "paid":
        if any(lines[d] != ref for d, ref in references.items()):
            raise Conflict(f"settlement {settlement_id!r} was already paid with other references")
        return
    await tx.executemany(
        "UPDATE settlement_lines SET transfer_ref = $4 WHERE tenant_id = $1 AND settlement_id = $2"
        " AND distributor_id = $3",
        [(tenant_id, settlement_id, d, ref) for d, ref in sorted(references.items())],
    )
    await tx.execute(
        "UPDATE settlement_locks SET status = 'paid' WHERE tenant_id = $1 AND settlement_id = $2",
        tenant_id,
        settlement_id,
    )
    await totals.on_paid(tx, tenant_id, settlement_id)
    await tx.execute(
        "UPDATE settlements SET status = 'paid', paid_at_us = $3"
        " WHERE tenant_id = $1 AND settlement_id = $2",
        tenant_id,
        settlement_id,
        now_us(),
    )
    await enqueue_event(
        tx,
        tenant_id,
        "settlement.paid",
        f"{settlement_id}:paid",
        {
            "settlement_id": settlement_id,
            "total_fen": int(row["total_fen"]),
            "references": dict(sorted(references.items())),
        },
    )
