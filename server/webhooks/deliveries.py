"""Reading an endpoint's deliveries (the outbox rows), newest first, for operators.

A delivery's ``status``: ``delivered``; ``sending`` (an attempt is in flight: its lease has
not run out); ``pending`` (waiting for its next attempt, with backoff); ``failed`` (given up
after ``MAX_ATTEMPTS`` or because its endpoint was deleted: only "retry now" sends it again).
"""

from __future__ import annotations

from typing import Any

import msgspec

from server.common import decode_cursor, encode_cursor, from_us, now_us
from server.db import Connection
from server.errors import NotFound
from server.webhooks.service import get_endpoint

__all__ = ["Delivery", "DeliveryPage", "get_delivery", "list_deliveries"]

NEVER_US = 2**62
_COLUMNS = (
    "id, event_id, event_type, attempts, next_attempt_at_us, delivered_at_us,"
    " last_error, created_at_us, lease_until_us"
)


class Delivery(msgspec.Struct):
    id: int
    event_id: str
    event_type: str
    attempts: int
    status: str  # delivered | sending | pending | failed (module docstring)
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str
    created_at: str


class DeliveryPage(msgspec.Struct):
    deliveries: list[Delivery]
    next_cursor: str | None


def _status(next_at: int, delivered_at: Any, lease: Any, now: int) -> str:
    if delivered_at is not None:
        return "delivered"
    if lease is not None and int(lease) > now:
        return "sending"
    return "failed" if next_at >= NEVER_US else "pending"


def _delivery(r: Any, now: int) -> Delivery:
    status = _status(int(r[4]), r[5], r[8], now)
    return Delivery(
        id=int(r[0]),
        event_id=r[1],
        event_type=r[2],
        attempts=int(r[3]),
        status=status,
        next_attempt_at=from_us(int(r[4])).isoformat() if status == "pending" else None,
        delivered_at=from_us(int(r[5])).isoformat() if r[5] is not None else None,
        last_error=str(r[6] or "")[:500],
        created_at=from_us(int(r[7])).isoformat(),
    )


async def list_deliveries(
    db: Connection, tenant_id: str, endpoint_id: str, limit: int, cursor: str | None
) -> DeliveryPage:
    """The endpoint's deliveries, newest first (404 for another tenant's endpoint)."""
    await get_endpoint(db, tenant_id, endpoint_id)
    after = decode_cursor(cursor, int)
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM webhook_outbox"
        " WHERE tenant_id = $1 AND endpoint_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        tenant_id, endpoint_id, int(after[0]) if after else 2**62, limit + 1,
    )  # fmt: skip
    now = now_us()
    items = [_delivery(r, now) for r in rows[:limit]]
    return DeliveryPage(items, encode_cursor(items[-1].id) if len(rows) > limit else None)


async def get_delivery(
    db: Connection, tenant_id: str, endpoint_id: str, delivery_id: int
) -> Delivery:
    """One delivery of the tenant's endpoint (404 otherwise, another tenant's included)."""
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_outbox"
        " WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3",
        tenant_id, endpoint_id, delivery_id,
    )  # fmt: skip
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} of endpoint {endpoint_id!r} does not exist")
    return _delivery(row, now_us())
