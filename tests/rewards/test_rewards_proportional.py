"""Proportional pool split: exact sum, bounds, proportionality to the fen, deterministic ties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import split_pool_proportional


@st.composite
def _cases(draw: st.DrawFn) -> tuple[int, list[int], int, int | None]:
    scores = draw(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30))
    n = len(scores)
    low = draw(st.integers(min_value=1, max_value=1000))
    budget = n * low + draw(st.integers(min_value=0, max_value=10**6))
    if draw(st.booleans()):
        return budget, scores, low, None
    return budget, scores, low, max(low, -(-budget // n)) + draw(st.integers(0, 10**5))


@given(_cases())
def test_sum_bounds_and_fair_rounding(case: tuple[int, list[int], int, int | None]) -> None:
    budget, scores, low, high = case
    shares = split_pool_proportional(budget, scores, low, high)
    assert len(shares) == len(scores)
    assert sum(shares) == budget
    assert all(low <= s and (high is None or s <= high) for s in shares)
    assert split_pool_proportional(budget, scores, low, high) == shares
    positive = [i for i, s in enumerate(scores) if s > 0]
    for i in positive:
        for j in positive:
            if scores[i] > scores[j]:
                assert shares[i] >= shares[j]
            # No single fen could move from j to i and bring both closer to one common rate:
            # (share_i + 1) / score_i > (share_j - 1) / score_j unless a bound pins them.
            if shares[i] != high and shares[j] != low:
                assert (shares[i] + 1) * scores[j] > (shares[j] - 1) * scores[i]
    all_positive_at_max = all(shares[i] == high for i in positive)
    for i, score in enumerate(scores):
        if score == 0 and not all_positive_at_max:
            assert shares[i] == low


@given(
    st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=10**7),
)
def test_unbounded_shares_are_within_one_fen_of_exact(scores: list[int], extra: int) -> None:
    budget = len(scores) + extra
    total = sum(scores)
    shares = split_pool_proportional(budget, scores, 1, None)
    assert sum(shares) == budget
    if budget * min(scores) >= total:  # no exact share is below the 1 fen floor
        for share, score in zip(shares, scores, strict=True):
            assert abs(share * total - budget * score) < total


@pytest.mark.parametrize(
    ("budget", "scores", "low", "high", "expected"),
    [
        (1000, [1, 1, 1], 1, None, [334, 333, 333]),  # tie: earlier position gets the fen
        (1000, [3, 1], 1, None, [750, 250]),
        (1000, [5, 3, 2, 0, 1], 100, 300, [300, 300, 200, 100, 100]),
        (1000, [90, 5, 5], 100, 500, [500, 250, 250]),  # capped share redistributed
        (1000, [0, 0, 0], 100, None, [334, 333, 333]),  # all zero: equal
        (1000, [5, 0, 0], 100, 400, [400, 300, 300]),  # zeros share what the max leaves
        (88800, [10], 1, None, [88800]),
    ],
)
def test_examples(
    budget: int, scores: list[int], low: int, high: int | None, expected: list[int]
) -> None:
    assert split_pool_proportional(budget, scores, low, high) == expected


def test_negative_score_is_refused() -> None:
    with pytest.raises(ValueError):
        split_pool_proportional(100, [1, -1], 1, None)
