"""A user's attribution history: every arrival and binding decision, newest first, paged."""

from __future__ import annotations

import msgspec

from server.common import decode_cursor, encode_cursor, from_us
from server.db import Connection
from server.orders.schemas import BindingEvent

__all__ = ["HistoryPage", "attribution_history"]


class HistoryPage(msgspec.Struct):
    user_id: str
    events: list[BindingEvent]
    next_cursor: str | None


async def attribution_history(
    db: Connection, tenant_id: str, user_id: str, limit: int, cursor: str | None
) -> HistoryPage:
    """The append-only ``attribution_events`` of one user (index ``ix_events_user``)."""
    after = decode_cursor(cursor, int)
    rows = await db.fetch(
        "SELECT id, occurred_at_us, outcome, reason, candidate_inviter_id, previous_inviter_id,"
        " link_code, channel, campaign_id FROM attribution_events"
        " WHERE tenant_id = $1 AND user_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        tenant_id, user_id, int(after[0]) if after else 2**62, limit + 1,
    )  # fmt: skip
    events = [
        BindingEvent(
            event_id=int(r[0]),
            occurred_at=from_us(int(r[1])).isoformat(),
            outcome=r[2],
            reason=r[3],
            candidate_inviter_id=r[4],
            previous_inviter_id=r[5],
            link_code=r[6],
            channel=r[7],
            campaign_id=r[8],
            credited=False,
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(events[-1].event_id) if len(rows) > limit else None
    return HistoryPage(user_id, events, next_cursor)
