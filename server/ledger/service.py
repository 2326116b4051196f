"""A distributor's ledger: the status rule of an entry and paging, newest first."""

from __future__ import annotations

from server.common import decode_cursor, encode_cursor, from_us, now_us
from server.db import Connection
from server.ledger.schemas import Entry, EntryPage, EntryStatus
from server.queries import ENTRY_LOCK_JOIN

__all__ = ["entry_status", "list_entries"]


def entry_status(available_at_us: int, lock_status: str | None, at_us: int) -> EntryStatus:
    """Paid or settled while a settlement lock holds the entry, else pending until it is due."""
    if lock_status == "paid":
        return "paid"
    if lock_status is not None:
        return "settled"
    return "pending" if available_at_us > at_us else "available"


async def list_entries(
    db: Connection, tenant_id: str, distributor_id: str, limit: int, cursor: str | None
) -> EntryPage:
    after = decode_cursor(cursor, int)
    before_id = int(after[0]) if after else 2**62
    rows = await db.fetch(
        "SELECT e.id, e.kind, e.amount_fen, e.level, e.order_id, e.refund_id, e.campaign_id,"
        " e.memo, e.created_at_us, e.available_at_us, l.status FROM ledger_entries e"
        f" {ENTRY_LOCK_JOIN}"
        " WHERE e.tenant_id = $1 AND e.distributor_id = $2 AND e.id < $3"
        " ORDER BY e.id DESC LIMIT $4",
        tenant_id,
        distributor_id,
        before_id,
        limit + 1,
    )
    now = now_us()
    entries = [
        Entry(
            id=int(r["id"]),
            kind=r["kind"],
            amount_fen=int(r["amount_fen"]),
            status=entry_status(r["available_at_us"], r["status"], now),
            level=r["level"],
            order_id=r["order_id"],
            refund_id=r["refund_id"],
            campaign_id=r["campaign_id"],
            memo=r["memo"],
            created_at=from_us(r["created_at_us"]).isoformat(),
            available_at=from_us(r["available_at_us"]).isoformat(),
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(entries[-1].id) if len(rows) > limit else None
    return EntryPage(entries=entries, next_cursor=next_cursor)
