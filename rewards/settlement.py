"""Settlement (结算): per-distributor totals of the entries a batch covers. Integer fen.

``settle`` nets each distributor's commissions, red packets, prizes and (negative) reversals.
A net that is positive and at least the payout threshold is payable; any other net (below the
threshold, zero or negative) carries forward to the next settlement, entries untouched. Every
line satisfies ``net = commission + red_packet + prize + reversal``, and the totals of the
payable plus carried lines equal the sum of the entries.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from rewards.money import require_fen

__all__ = ["ENTRY_KINDS", "EntryAmount", "SettlementLine", "settle", "settlement_total"]

ENTRY_KINDS: frozenset[str] = frozenset({"commission", "red_packet", "prize", "reversal"})


class EntryAmount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ledger entry's amount in fen: ``kind`` is commission, red_packet, prize or reversal.

    Reversals are <= 0; the other kinds are >= 0.
    """

    distributor_id: str
    kind: str
    amount_fen: int


class SettlementLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A distributor's totals in fen; ``net_fen`` is the sum of the four parts."""

    distributor_id: str
    commission_fen: int
    red_packet_fen: int
    prize_fen: int
    reversal_fen: int
    net_fen: int


def settle(
    entries: Iterable[EntryAmount], payout_threshold_fen: int
) -> tuple[list[SettlementLine], list[SettlementLine]]:
    """Return ``(payable, carried_forward)`` lines, each list sorted by distributor id.

    Payable: ``net_fen > 0`` and ``net_fen >= payout_threshold_fen``. Carried forward: the rest,
    including negative nets (a clawback the next settlement nets off). Raises ``ValueError`` for
    an unknown kind, a positive reversal or a negative non-reversal.
    """
    require_fen("payout_threshold_fen", payout_threshold_fen)
    totals: dict[str, dict[str, int]] = {}
    for entry in entries:
        if entry.kind not in ENTRY_KINDS:
            raise ValueError(f"unknown entry kind {entry.kind!r}; expected one of {ENTRY_KINDS}")
        amount = require_fen("amount_fen", entry.amount_fen, minimum=None)
        if (amount > 0) if entry.kind == "reversal" else (amount < 0):
            raise ValueError(f"a {entry.kind} entry of {amount} fen has the wrong sign")
        parts = totals.setdefault(entry.distributor_id, dict.fromkeys(ENTRY_KINDS, 0))
        parts[entry.kind] += amount
    payable: list[SettlementLine] = []
    carried: list[SettlementLine] = []
    for distributor_id in sorted(totals):
        parts = totals[distributor_id]
        line = SettlementLine(
            distributor_id=distributor_id,
            commission_fen=parts["commission"],
            red_packet_fen=parts["red_packet"],
            prize_fen=parts["prize"],
            reversal_fen=parts["reversal"],
            net_fen=sum(parts.values()),
        )
        is_payable = line.net_fen > 0 and line.net_fen >= payout_threshold_fen
        (payable if is_payable else carried).append(line)
    return payable, carried


def settlement_total(lines: Iterable[SettlementLine]) -> int:
    """Sum of ``net_fen`` over ``lines``, in fen."""
    return sum(line.net_fen for line in lines)
