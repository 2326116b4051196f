"""Withdrawal requests and finance's batch decisions (docs/api.md, "Withdrawals")."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Decision", "PaidIn", "Withdrawal", "WithdrawalIn", "WithdrawalPage"]

WithdrawalId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class WithdrawalIn(msgspec.Struct, forbid_unknown_fields=True):
    amount_fen: Annotated[int, msgspec.Meta(ge=1, le=10**12)]


class Decision(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A batch decision: up to 500 withdrawal ids; rejecting needs a reason."""

    ids: Annotated[list[WithdrawalId], msgspec.Meta(min_length=1, max_length=500)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class PaidIn(msgspec.Struct, forbid_unknown_fields=True):
    # withdrawal_id -> the payout rail's transfer reference (up to 500 at once).
    references: Annotated[
        dict[WithdrawalId, Annotated[str, msgspec.Meta(min_length=1, max_length=128)]],
        msgspec.Meta(min_length=1, max_length=500),
    ]


class Withdrawal(msgspec.Struct):
    """``status``: requested | approved | rejected | paid; ``net_fen`` = amount - fee."""

    id: str
    distributor_id: str
    amount_fen: int
    fee_fen: int
    net_fen: int
    status: str
    reason: str | None
    transfer_ref: str | None
    created_at: str
    decided_at: str | None
    paid_at: str | None


class WithdrawalPage(msgspec.Struct):
    withdrawals: list[Withdrawal]
    next_cursor: str | None = None
