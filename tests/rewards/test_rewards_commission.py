from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import (
    MAX_LEVELS,
    RewardConfigError,
    cumulative_reversal,
    split_commission,
    validate_commission_rates,
)
from rewards.errors import RefundExceedsOrderError


@pytest.mark.parametrize(
    "rates", [[0], [1000], [1000, 500], [3000, 2000, 1000], [10000], [5000] * 2]
)
def test_valid_rates_pass(rates: list[int]) -> None:
    validate_commission_rates(rates)


@pytest.mark.parametrize(
    ("rates", "needle"),
    [
        ([], "at least one level"),
        ([100, 100, 100, 100], "传销"),
        ([100] * 7, "pyramid selling"),
        ([-1], "0..10000"),
        ([10001], "0..10000"),
        ([6000, 5000], "10000 bp"),
        ([4000, 4000, 2001], "sum"),
        ([1.5], "integer"),
        ([True], "integer"),
    ],
)
def test_refused_rates_name_the_field(rates: list[int], needle: str) -> None:
    with pytest.raises(RewardConfigError) as info:
        validate_commission_rates(rates)
    assert info.value.field == "commission_bps"
    assert needle in info.value.message
    assert isinstance(info.value, ValueError)


def test_depth_refusal_explains_law_and_wechat() -> None:
    with pytest.raises(RewardConfigError) as info:
        validate_commission_rates([100] * (MAX_LEVELS + 1))
    message = info.value.message
    assert "团队计酬" in message and "传销" in message and "WeChat" in message


def test_split_commission_floors_per_level() -> None:
    assert split_commission(9999, [1000, 500]) == [999, 499]
    assert split_commission(0, [3000]) == [0]
    assert split_commission(1, [9999]) == [0]


@given(
    st.integers(min_value=0, max_value=10**12),
    st.lists(st.integers(min_value=0, max_value=10000), min_size=1, max_size=3).filter(
        lambda r: sum(r) <= 10000
    ),
)
def test_split_commission_properties(amount: int, rates: list[int]) -> None:
    parts = split_commission(amount, rates)
    assert len(parts) == len(rates)
    assert sum(parts) <= amount
    for part, rate in zip(parts, rates, strict=True):
        assert part * 10000 <= amount * rate < (part + 1) * 10000


def test_split_commission_refuses_negative_amount_and_deep_rates() -> None:
    with pytest.raises(ValueError, match="amount_fen"):
        split_commission(-1, [100])
    with pytest.raises(RewardConfigError):
        split_commission(100, [1, 1, 1, 1])


@st.composite
def _refund_plans(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    amount = draw(st.integers(min_value=1, max_value=10**9))
    commission = draw(st.integers(min_value=0, max_value=amount))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=amount), max_size=8)))
    full = draw(st.booleans())
    points = [0, *cuts, amount] if full else [0, *cuts]
    refunds = [b - a for a, b in zip(points, points[1:], strict=False)]
    return commission, amount, refunds


@given(_refund_plans())
def test_cumulative_reversals_never_exceed_and_full_refund_cancels(
    plan: tuple[int, int, list[int]],
) -> None:
    commission, amount, refunds = plan
    refunded = reversed_total = 0
    for refund in refunds:
        step = cumulative_reversal(commission, amount, refunded, refund)
        assert step >= 0
        refunded += refund
        reversed_total += step
        assert reversed_total == commission * refunded // amount
        assert reversed_total <= commission
    if refunded == amount:
        assert reversed_total == commission


def test_cumulative_reversal_examples() -> None:
    # 3 equal partial refunds of a 100 fen order with 10 fen commission: 3 + 3 + 4.
    assert [cumulative_reversal(10, 99, r, 33) for r in (0, 33, 66)] == [3, 3, 4]
    assert cumulative_reversal(10, 100, 0, 100) == 10
    assert cumulative_reversal(0, 0, 0, 0) == 0


@pytest.mark.parametrize(("before", "refund"), [(0, 101), (60, 41), (100, 1)])
def test_over_refund_is_refused(before: int, refund: int) -> None:
    with pytest.raises(RefundExceedsOrderError) as info:
        cumulative_reversal(10, 100, before, refund)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("args", [(-1, 100, 0, 1), (10, 100, -1, 1), (10, 100, 0, -1)])
def test_negative_inputs_are_refused(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        cumulative_reversal(*args)
