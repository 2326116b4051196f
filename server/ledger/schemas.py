"""Ledger entries as the API shows them (``GET /v1/distributors/{id}/ledger``).

Contract: docs/api.md, "Referrals and orders". Amounts are integer fen; an entry's status is
derived (:func:`server.ledger.service.entry_status`), never stored on the entry.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Entry", "EntryPage", "EntryStatus"]

EntryStatus = Literal["pending", "available", "settled", "paid"]


class Entry(msgspec.Struct):
    id: int
    kind: str
    amount_fen: int
    status: EntryStatus
    level: int | None
    order_id: str | None
    refund_id: str | None
    campaign_id: str | None
    memo: str
    created_at: str
    available_at: str


class EntryPage(msgspec.Struct):
    entries: list[Entry]
    next_cursor: str | None
