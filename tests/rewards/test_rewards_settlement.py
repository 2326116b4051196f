"""Settlement netting: totals reconcile to the fen; small or negative nets carry forward."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import EntryAmount, SettlementLine, settle, settlement_total


@st.composite
def _entry(draw: st.DrawFn) -> EntryAmount:
    kind = draw(st.sampled_from(["commission", "red_packet", "prize", "reversal"]))
    amount = draw(st.integers(min_value=0, max_value=10**7))
    return EntryAmount(
        draw(st.sampled_from(["a", "b", "c", "d", "e"])),
        kind,
        -amount if kind == "reversal" else amount,
    )


@given(st.lists(_entry(), max_size=60), st.integers(min_value=0, max_value=10**6))
def test_totals_reconcile(entries: list[EntryAmount], threshold: int) -> None:
    payable, carried = settle(entries, threshold)
    lines = payable + carried
    assert settlement_total(lines) == sum(e.amount_fen for e in entries)
    assert sorted(line.distributor_id for line in lines) == sorted(
        {e.distributor_id for e in entries}
    )
    assert [line.distributor_id for line in payable] == sorted(
        line.distributor_id for line in payable
    )
    assert [line.distributor_id for line in carried] == sorted(
        line.distributor_id for line in carried
    )
    for line in lines:
        parts = line.commission_fen + line.red_packet_fen + line.prize_fen + line.reversal_fen
        assert line.net_fen == parts
        own = [e for e in entries if e.distributor_id == line.distributor_id]
        assert line.net_fen == sum(e.amount_fen for e in own)
        assert line.reversal_fen == sum(e.amount_fen for e in own if e.kind == "reversal")
    assert all(line.net_fen > 0 and line.net_fen >= threshold for line in payable)
    assert all(line.net_fen <= 0 or line.net_fen < threshold for line in carried)


def test_example_settlement() -> None:
    entries = [
        EntryAmount("kol", "commission", 5000),
        EntryAmount("kol", "red_packet", 200),
        EntryAmount("kol", "prize", 88800),
        EntryAmount("kol", "reversal", -1500),
        EntryAmount("small", "commission", 99),
        EntryAmount("owes", "commission", 100),
        EntryAmount("owes", "reversal", -300),
        EntryAmount("zero", "commission", 100),
        EntryAmount("zero", "reversal", -100),
    ]
    payable, carried = settle(entries, payout_threshold_fen=100)
    assert payable == [SettlementLine("kol", 5000, 200, 88800, -1500, 92500)]
    assert [(line.distributor_id, line.net_fen) for line in carried] == [
        ("owes", -200),
        ("small", 99),
        ("zero", 0),
    ]
    assert settlement_total(payable) == 92500
    assert settle([], 0) == ([], [])


def test_zero_threshold_still_does_not_pay_zero() -> None:
    payable, carried = settle([EntryAmount("a", "commission", 0)], 0)
    assert payable == [] and [c.net_fen for c in carried] == [0]


@pytest.mark.parametrize(
    "entry",
    [
        EntryAmount("a", "bonus", 10),
        EntryAmount("a", "reversal", 10),
        EntryAmount("a", "commission", -10),
        EntryAmount("a", "prize", -1),
    ],
)
def test_malformed_entries_are_refused(entry: EntryAmount) -> None:
    with pytest.raises(ValueError):
        settle([entry], 0)


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError):
        settle([], -1)
