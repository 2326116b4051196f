"""Leaderboard order: score desc, then earliest reached, then distributor id; ranks 1..n."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import Ranked, Standing, neighbours, rank_standings, sort_key

_standings = st.lists(
    st.builds(
        Standing,
        distributor_id=st.text(alphabet="abcdef0123", min_size=1, max_size=4),
        score=st.integers(min_value=0, max_value=5),
        reached_at_us=st.integers(min_value=0, max_value=5),
    ),
    unique_by=lambda s: s.distributor_id,
    max_size=40,
)


@given(_standings, st.randoms(use_true_random=False))
def test_ranking_is_strict_total_order(standings: list[Standing], rnd: random.Random) -> None:
    ranked = rank_standings(standings)
    assert [r.rank for r in ranked] == list(range(1, len(standings) + 1))
    assert sorted(r.distributor_id for r in ranked) == sorted(s.distributor_id for s in standings)
    for a, b in zip(ranked, ranked[1:], strict=False):
        assert (a.score > b.score) or (
            a.score == b.score
            and (a.reached_at_us, a.distributor_id) < (b.reached_at_us, b.distributor_id)
        )
    shuffled = list(standings)
    rnd.shuffle(shuffled)
    assert rank_standings(shuffled) == ranked


def test_ties_break_on_time_then_id() -> None:
    ranked = rank_standings(
        [
            Standing("b", 10, 200),
            Standing("a", 10, 200),
            Standing("c", 10, 100),
            Standing("d", 11, 900),
            Standing("e", 0, 0),
        ]
    )
    assert [(r.rank, r.distributor_id) for r in ranked] == [
        (1, "d"),
        (2, "c"),
        (3, "a"),
        (4, "b"),
        (5, "e"),
    ]
    assert sort_key(Standing("x", 3, 7)) == (-3, 7, "x")


def test_duplicate_distributor_is_refused() -> None:
    with pytest.raises(ValueError, match="more than one"):
        rank_standings([Standing("a", 1, 1), Standing("a", 2, 2)])


def test_empty_board() -> None:
    assert rank_standings([]) == []


def test_neighbours_window() -> None:
    ranked = rank_standings(Standing(f"d{i}", 100 - i, i) for i in range(10))
    assert [r.rank for r in neighbours(ranked, "d5", above=2, below=1)] == [4, 5, 6, 7]
    assert [r.rank for r in neighbours(ranked, "d0")] == [1, 2, 3]
    assert [r.rank for r in neighbours(ranked, "d9", above=1, below=5)] == [9, 10]
    assert neighbours(ranked, "nobody") == []
    with pytest.raises(ValueError):
        neighbours(ranked, "d1", above=-1)


def test_ranked_is_frozen_struct() -> None:
    row = Ranked(1, "a", 2, 3)
    with pytest.raises(AttributeError):
        row.rank = 2  # type: ignore[misc]
