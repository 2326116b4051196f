"""TOP-N prize tables and pool awards at campaign close."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import (
    Award,
    PrizeTier,
    RedPacketConfig,
    RewardConfigError,
    award_top_n,
    rank_standings,
    split_pool_awards,
    validate_prize_table,
    validate_red_packet_config,
)
from rewards.ranking import Ranked, Standing

TABLE = [PrizeTier(1, 1, 88800), PrizeTier(2, 3, 38800), PrizeTier(4, 10, 8800)]


def _board(scores: list[int]) -> list[Ranked]:
    return rank_standings(Standing(f"d{i:02d}", s, i) for i, s in enumerate(scores))


def test_domain_example_table() -> None:
    ranked = _board([50, 40, 30, 20, 10, 9, 8, 7, 6, 5, 4, 3])
    awards = award_top_n(ranked, TABLE)
    assert [(a.rank, a.amount_fen) for a in awards] == [
        (1, 88800), (2, 38800), (3, 38800), *[(r, 8800) for r in range(4, 11)]
    ]  # fmt: skip
    assert all(a.kind == "prize" for a in awards)
    assert sum(a.amount_fen for a in awards) == 88800 + 2 * 38800 + 7 * 8800


def test_min_score_and_zero_scores_do_not_win() -> None:
    ranked = _board([50, 40, 30, 0, 0])
    assert [a.rank for a in award_top_n(ranked, TABLE)] == [1, 2, 3]
    assert [a.rank for a in award_top_n(ranked, TABLE, min_score=35)] == [1, 2]
    assert award_top_n(ranked, TABLE, min_score=100) == []
    assert award_top_n([], TABLE) == []
    assert award_top_n(ranked, []) == []


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ([PrizeTier(0, 1, 100)], "prizes[0].rank_from"),
        ([PrizeTier(3, 2, 100)], "prizes[0].rank_to"),
        ([PrizeTier(1, 1, 0)], "prizes[0].amount_fen"),
        ([PrizeTier(1, 1, -5)], "prizes[0].amount_fen"),
        ([PrizeTier(1, 3, 100), PrizeTier(3, 5, 50)], "prizes[1].rank_from"),
        ([PrizeTier(4, 10, 100), PrizeTier(1, 1, 500), PrizeTier(2, 4, 50)], "prizes[0].rank_from"),
    ],
)
def test_refused_tables_name_the_tier(tiers: list[PrizeTier], field: str) -> None:
    with pytest.raises(RewardConfigError) as info:
        validate_prize_table(tiers)
    assert info.value.field == field


def test_tables_with_gaps_and_any_order_are_fine() -> None:
    validate_prize_table([PrizeTier(5, 5, 1), PrizeTier(1, 2, 10)])
    validate_prize_table([])
    ranked = _board([9, 8, 7, 6, 5])
    awards = award_top_n(ranked, [PrizeTier(5, 5, 1), PrizeTier(1, 2, 10)])
    assert [(a.rank, a.amount_fen) for a in awards] == [(1, 10), (2, 10), (5, 1)]


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30), st.integers(0, 25))
def test_top_n_awards_follow_ranking(scores: list[int], min_score: int) -> None:
    ranked = _board(scores)
    awards = award_top_n(ranked, TABLE, min_score)
    by_rank = {r.rank: r for r in ranked}
    assert [a.rank for a in awards] == sorted({a.rank for a in awards})
    for award in awards:
        row = by_rank[award.rank]
        assert award.distributor_id == row.distributor_id
        assert row.score >= max(min_score, 1)
    winners = {a.rank for a in awards}
    for row in ranked:
        if row.rank <= 10 and row.score >= max(min_score, 1):
            assert row.rank in winners


def _pool(mode: str, **kw: int | None) -> RedPacketConfig:
    return RedPacketConfig(mode, **kw)  # type: ignore[arg-type]


@given(
    st.lists(st.integers(min_value=0, max_value=50), max_size=40),
    st.sampled_from(["pool_split_random", "pool_split_proportional"]),
    st.integers(min_value=1, max_value=100_000),
    st.integers(min_value=1, max_value=300),
    st.one_of(st.none(), st.integers(min_value=300, max_value=50_000)),
    st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
    st.integers(min_value=0, max_value=10),
)
def test_pool_awards_sum_to_budget_among_qualifiers(
    scores: list[int],
    mode: str,
    budget: int,
    low: int,
    high: int | None,
    count: int | None,
    min_score: int,
) -> None:
    cfg = _pool(mode, budget_fen=budget, min_fen=low, max_fen=high, count=count, seed=7)
    try:
        validate_red_packet_config(cfg)
    except RewardConfigError:
        return
    ranked = _board(scores)
    awards = split_pool_awards(ranked, cfg, min_score)
    qualifying = [r for r in ranked if r.score >= max(min_score, 1)]
    assert all(isinstance(a, Award) and a.kind == "red_packet" for a in awards)
    assert [a.rank for a in awards] == [r.rank for r in qualifying[: len(awards)]]
    assert all(low <= a.amount_fen and (high is None or a.amount_fen <= high) for a in awards)
    total = sum(a.amount_fen for a in awards)
    if not awards:
        assert not qualifying
        return
    if high is not None and len(awards) * high < budget:
        assert total == len(awards) * high  # every sharer at max; the rest stays with the tenant
    else:
        assert total == budget
    assert split_pool_awards(ranked, cfg, min_score) == awards


def test_pool_awards_proportional_example_and_caps() -> None:
    ranked = _board([30, 10, 0, 10])
    cfg = _pool("pool_split_proportional", budget_fen=1000, min_fen=1)
    awards = split_pool_awards(ranked, cfg)
    assert [(a.distributor_id, a.amount_fen) for a in awards] == [
        ("d00", 600), ("d01", 200), ("d03", 200)
    ]  # fmt: skip
    capped = _pool("pool_split_proportional", budget_fen=1000, min_fen=1, count=2)
    assert [a.distributor_id for a in split_pool_awards(ranked, capped)] == ["d00", "d01"]
    # Only budget // min_fen sharers can get the floor: the top 2 of 3 qualifiers.
    floor = _pool("pool_split_random", budget_fen=1000, min_fen=400, seed=1)
    assert [a.rank for a in split_pool_awards(ranked, floor)] == [1, 2]


def test_pool_awards_refusals() -> None:
    ranked = _board([3, 2, 1])
    with pytest.raises(RewardConfigError) as info:
        split_pool_awards(ranked, _pool("pool_split_random", budget_fen=100))
    assert info.value.field == "seed"
    with pytest.raises(RewardConfigError) as info:
        split_pool_awards(ranked, _pool("fixed_per_invite", budget_fen=100, amount_fen=10))
    assert info.value.field == "mode"
