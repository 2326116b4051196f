"""``GET /v1/orders/{id}/explain``: why each distributor earned what they earned."""

from __future__ import annotations

import msgspec

from server.common import from_us
from server.db import Connection
from server.errors import NotFound
from server.orders.schemas import BindingEvent, CommissionLine, Explanation, RefundLine
from server.queries import ENTRY_LOCK_JOIN

__all__ = ["explain_order"]

BPS = 10_000


async def explain_order(db: Connection, tenant_id: str, order_id: str) -> Explanation:
    order = await db.fetchrow(
        "SELECT user_id, amount_fen, paid_at_us, created_at_us, upline, rates_bps, event_id"
        " FROM orders"
        " WHERE tenant_id = $1 AND order_id = $2",
        tenant_id,
        order_id,
    )
    if order is None:
        raise NotFound(f"order {order_id!r} does not exist")
    amount = int(order["amount_fen"])
    upline: list[str] = msgspec.json.decode(order["upline"])
    rates: list[int] = msgspec.json.decode(order["rates_bps"])
    events = await db.fetch(
        "SELECT id, occurred_at_us, outcome, reason, candidate_inviter_id, previous_inviter_id,"
        " link_code, channel, campaign_id FROM attribution_events"
        " WHERE tenant_id = $1 AND user_id = $2 AND recorded_at_us <= $3 ORDER BY id DESC LIMIT 50",
        tenant_id,
        order["user_id"],
        order["created_at_us"],
    )
    entries = await db.fetch(
        "SELECT e.distributor_id, e.kind, e.level, e.amount_fen, e.refund_id,"
        " e.reverses_entry_id, e.id, l.settlement_id FROM ledger_entries e"
        f" {ENTRY_LOCK_JOIN}"
        " WHERE e.tenant_id = $1 AND e.order_id = $2 ORDER BY e.id",
        tenant_id,
        order_id,
    )
    commissions = {e["id"]: e for e in entries if e["kind"] == "commission"}
    lines = [
        CommissionLine(
            level=e["level"],
            distributor_id=e["distributor_id"],
            rate_bps=rates[e["level"] - 1],
            amount_fen=int(e["amount_fen"]),
            arithmetic=f"floor({amount} × {rates[e['level'] - 1]} / {BPS}) = {e['amount_fen']}",
            settlement_id=e["settlement_id"],
        )
        for e in commissions.values()
    ]
    refunds = await db.fetch(
        "SELECT refund_id, amount_fen, refunded_before_fen FROM refunds"
        " WHERE tenant_id = $1 AND order_id = $2 ORDER BY id",
        tenant_id,
        order_id,
    )
    refund_lines = []
    for refund in refunds:
        before, r = int(refund["refunded_before_fen"]), int(refund["amount_fen"])
        reversals = []
        for e in entries:
            if e["refund_id"] != refund["refund_id"]:
                continue
            c = int(commissions[e["reverses_entry_id"]]["amount_fen"])
            reversals.append(
                CommissionLine(
                    level=e["level"],
                    distributor_id=e["distributor_id"],
                    rate_bps=rates[e["level"] - 1],
                    amount_fen=int(e["amount_fen"]),
                    arithmetic=(
                        f"-(floor({c} × {before + r} / {amount}) − floor({c} × {before} / "
                        f"{amount})) = {e['amount_fen']}"
                        + (" (absorbed by the tenant)" if e["kind"] == "absorbed_reversal" else "")
                    ),
                    settlement_id=e["settlement_id"],
                )
            )
        refund_lines.append(RefundLine(refund["refund_id"], r, before, reversals))
    return Explanation(
        order_id=order_id,
        user_id=order["user_id"],
        amount_fen=amount,
        paid_at=from_us(order["paid_at_us"]).isoformat(),
        self_purchase=bool(upline) and upline[0] == order["user_id"],
        upline=upline,
        rates_bps=rates,
        binding_events=[
            BindingEvent(
                event_id=int(ev["id"]),
                occurred_at=from_us(ev["occurred_at_us"]).isoformat(),
                outcome=ev["outcome"],
                reason=ev["reason"],
                candidate_inviter_id=ev["candidate_inviter_id"],
                previous_inviter_id=ev["previous_inviter_id"],
                link_code=ev["link_code"],
                channel=ev["channel"],
                campaign_id=ev["campaign_id"],
                credited=ev["id"] == order["event_id"],
            )
            for ev in events
        ],
        commissions=lines,
        refunds=refund_lines,
        note=(
            "Commission follows the buyer's binding as it stood when the order was reported, "
            "if it had not lapsed by paid_at (the snapshot above); later re-binding never "
            "changes it. Level k earns "
            "floor(amount × rate_k / 10000) fen; rounding leftovers stay with the tenant. "
            "Refunds reverse each commission cumulatively, so a full refund cancels it. "
            "settlement_id names the approved settlement that holds an entry: a reversal held "
            "by the settlement that holds its commission was netted into it (that commission "
            "was never paid out); one held by a later settlement clawed back a paid commission."
        ),
    )
