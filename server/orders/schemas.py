"""Orders, refunds and the explanation of a commission (ledger entries: server.ledger).

Contract: docs/api.md, "Referrals and orders".
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from server.common import AwareDatetime, ExternalId
from server.ledger.schemas import EntryStatus

__all__ = [
    "Commission",
    "EntryStatus",
    "Explanation",
    "OrderIn",
    "OrderOut",
    "RefundIn",
    "RefundOut",
    "Reversal",
]

Fen = Annotated[int, msgspec.Meta(ge=1, le=10**13)]


class OrderIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    order_id: ExternalId
    user_id: ExternalId
    amount_fen: Fen
    paid_at: AwareDatetime
    campaign_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class Commission(msgspec.Struct):
    distributor_id: str
    level: int
    amount_fen: int
    status: EntryStatus


class OrderOut(msgspec.Struct):
    order_id: str
    commissions: list[Commission]


class RefundIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    refund_id: ExternalId
    amount_fen: Fen


class Reversal(msgspec.Struct):
    distributor_id: str
    level: int
    amount_fen: int  # negative: what the entry takes back
    kind: Literal["reversal", "absorbed_reversal"]
    status: EntryStatus


class RefundOut(msgspec.Struct):
    order_id: str
    refund_id: str
    amount_fen: int
    refunded_total_fen: int
    reversals: list[Reversal]


class BindingEvent(msgspec.Struct):
    event_id: int
    occurred_at: str
    outcome: str
    reason: str | None
    candidate_inviter_id: str | None
    previous_inviter_id: str | None
    link_code: str | None
    channel: str | None
    campaign_id: str | None
    credited: bool  # the binding this order's commission followed


class CommissionLine(msgspec.Struct):
    level: int
    distributor_id: str
    rate_bps: int
    amount_fen: int
    arithmetic: str
    # The approved settlement holding this entry (None while no approved settlement does).
    settlement_id: str | None = None


class RefundLine(msgspec.Struct):
    refund_id: str
    amount_fen: int
    refunded_before_fen: int
    reversals: list[CommissionLine]


class Explanation(msgspec.Struct):
    order_id: str
    user_id: str
    amount_fen: int
    paid_at: str
    self_purchase: bool
    upline: list[str]
    rates_bps: list[int]
    binding_events: list[BindingEvent]
    commissions: list[CommissionLine]
    refunds: list[RefundLine]
    note: str
