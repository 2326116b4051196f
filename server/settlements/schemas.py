"""Settlements (docs/api.md, "Settlements")."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from rewards import settlement
from server.common import AwareDatetime

__all__ = [
    "PaidIn",
    "Settlement",
    "SettlementIn",
    "SettlementLine",
    "SettlementPage",
    "SettlementSummary",
]


class SettlementIn(msgspec.Struct, forbid_unknown_fields=True):
    cutoff: AwareDatetime


class PaidIn(msgspec.Struct, forbid_unknown_fields=True):
    # distributor_id -> the payout rail's transfer reference (e.g. a WeChat Pay batch detail id)
    references: dict[str, Annotated[str, msgspec.Meta(min_length=1, max_length=128)]]


class SettlementLine(settlement.SettlementLine, frozen=True):
    """A line of a settlement: the totals :func:`rewards.settlement.settle` computed (fen), and
    what paying it recorded."""

    transfer_ref: str | None = None
    # The part of reversal_fen netted against commission this same line pays (refunds known
    # when the draft was made, taken before their own due date); the rest of reversal_fen is
    # clawback of commission an earlier settlement paid.
    netted_reversal_fen: int = 0


class Settlement(msgspec.Struct):
    id: str
    status: Literal["draft", "approved", "paid"]
    cutoff: str
    total_fen: int
    line_count: int
    lines: list[SettlementLine]
    next_cursor: str | None
    created_at: str
    approved_at: str | None
    paid_at: str | None


class SettlementSummary(msgspec.Struct):
    id: str
    status: Literal["draft", "approved", "paid"]
    cutoff: str
    total_fen: int
    line_count: int
    created_at: str


class SettlementPage(msgspec.Struct):
    settlements: list[SettlementSummary]
    next_cursor: str | None
