"""Reading an endpoint's deliveries (the outbox rows), newest first, for operators."""

from __future__ import annotations

import msgspec

from server.common import decode_cursor, encode_cursor, from_us
from server.db import Connection
from server.webhooks.service import get_endpoint

__all__ = ["Delivery", "DeliveryPage", "list_deliveries"]


class Delivery(msgspec.Struct):
    id: int
    event_id: str
    event_type: str
    attempts: int
    status: str  # delivered | pending (retrying with backoff)
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str
    created_at: str


class DeliveryPage(msgspec.Struct):
    deliveries: list[Delivery]
    next_cursor: str | None


async def list_deliveries(
    db: Connection, tenant_id: str, endpoint_id: str, limit: int, cursor: str | None
) -> DeliveryPage:
    """The endpoint's deliveries, newest first (404 for another tenant's endpoint)."""
    await get_endpoint(db, tenant_id, endpoint_id)
    after = decode_cursor(cursor, int)
    rows = await db.fetch(
        "SELECT id, event_id, event_type, attempts, next_attempt_at_us, delivered_at_us,"
        " last_error, created_at_us FROM webhook_outbox"
        " WHERE tenant_id = $1 AND endpoint_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        tenant_id, endpoint_id, int(after[0]) if after else 2**62, limit + 1,
    )  # fmt: skip
    items = [
        Delivery(
            id=int(r[0]),
            event_id=r[1],
            event_type=r[2],
            attempts=int(r[3]),
            status="delivered" if r[5] is not None else "pending",
            next_attempt_at=None if r[5] is not None else from_us(int(r[4])).isoformat(),
            delivered_at=from_us(int(r[5])).isoformat() if r[5] is not None else None,
            last_error=str(r[6] or "")[:500],
            created_at=from_us(int(r[7])).isoformat(),
        )
        for r in rows[:limit]
    ]
    return DeliveryPage(items, encode_cursor(items[-1].id) if len(rows) > limit else None)
