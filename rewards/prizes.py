"""TOP-N prizes and pool splits awarded when a campaign closes. Amounts in integer fen.

Both award on the leaderboard order (``rewards.ranking``). Only qualifiers win: a score of at
least ``max(min_score, 1)`` — nobody wins a prize or a share of a pool with nothing done.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from rewards.errors import RewardConfigError
from rewards.ranking import Ranked
from rewards.red_packets import (
    POOL_MODES,
    RedPacketConfig,
    split_pool_proportional,
    split_pool_random,
    validate_red_packet_config,
)

__all__ = [
    "KIND_PRIZE",
    "KIND_RED_PACKET",
    "Award",
    "PrizeTier",
    "award_top_n",
    "qualifiers",
    "split_pool_awards",
    "validate_prize_table",
]

KIND_PRIZE = "prize"
KIND_RED_PACKET = "red_packet"


class PrizeTier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Each rank in ``rank_from..rank_to`` (inclusive, 1-based) wins ``amount_fen``."""

    rank_from: int
    rank_to: int
    amount_fen: int


class Award(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One payout at campaign close; ``kind`` is ``"prize"`` or ``"red_packet"``."""

    distributor_id: str
    rank: int
    amount_fen: int
    kind: str


def validate_prize_table(tiers: Sequence[PrizeTier]) -> None:
    """Raise ``RewardConfigError`` (field ``prizes[i].<name>``) unless the table is usable.

    Each tier: ``1 <= rank_from <= rank_to`` and ``amount_fen >= 1``; no rank in two tiers. Tiers
    may come in any order and may leave gaps; an empty table awards nothing.
    """
    for i, tier in enumerate(tiers):
        for name in ("rank_from", "rank_to", "amount_fen"):
            value = getattr(tier, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RewardConfigError(f"prizes[{i}].{name}", "must be a whole number >= 1")
        if tier.rank_to < tier.rank_from:
            raise RewardConfigError(
                f"prizes[{i}].rank_to",
                f"rank_to {tier.rank_to} is before rank_from {tier.rank_from}",
            )
    by_start = sorted(range(len(tiers)), key=lambda i: tiers[i].rank_from)
    for prev, cur in zip(by_start, by_start[1:], strict=False):
        if tiers[cur].rank_from <= tiers[prev].rank_to:
            raise RewardConfigError(
                f"prizes[{cur}].rank_from",
                f"ranks {tiers[cur].rank_from}..{min(tiers[cur].rank_to, tiers[prev].rank_to)} "
                f"are also in prizes[{prev}]; each rank may win only one prize",
            )


def qualifiers(ranked: Sequence[Ranked], min_score: int = 0) -> list[Ranked]:
    """Rows with ``score >= max(min_score, 1)``, in rank order."""
    floor = max(min_score, 1)
    return sorted((r for r in ranked if r.score >= floor), key=lambda r: r.rank)


def award_top_n(
    ranked: Sequence[Ranked], tiers: Sequence[PrizeTier], min_score: int = 0
) -> list[Award]:
    """Prizes by rank range for the qualifiers of a final ranking, in rank order.

    A rank covered by no tier, or held by a non-qualifier, wins nothing; prizes of ranks nobody
    qualified for stay with the tenant (they do not move up to lower scores).
    """
    validate_prize_table(tiers)
    amounts = sorted((t.rank_from, t.rank_to, t.amount_fen) for t in tiers)
    awards: list[Award] = []
    for row in qualifiers(ranked, min_score):
        for start, end, amount in amounts:
            if start <= row.rank <= end:
                awards.append(Award(row.distributor_id, row.rank, amount, KIND_PRIZE))
                break
    return awards


def split_pool_awards(
    ranked: Sequence[Ranked], cfg: RedPacketConfig, min_score: int = 0
) -> list[Award]:
    """Split a ``pool_split_*`` budget among the qualifiers at close (瓜分), in rank order.

    Sharers are the top qualifiers, at most ``cfg.count`` and at most ``budget_fen // min_fen``
    (so everyone gets the floor). The awards sum to ``budget_fen`` exactly, except when even
    ``max_fen`` for every sharer falls short: then each gets ``max_fen`` and the rest stays with
    the tenant. No qualifiers, no awards. ``pool_split_random`` needs ``cfg.seed`` and gives the
    same split for the same ranking and seed; ``pool_split_proportional`` follows the scores.
    """
    validate_red_packet_config(cfg)
    if cfg.mode not in POOL_MODES:
        raise RewardConfigError("mode", f"{cfg.mode} is paid per invite, not split at close")
    sharers = qualifiers(ranked, min_score)
    limit = cfg.budget_fen // cfg.min_fen
    if cfg.count is not None:
        limit = min(limit, cfg.count)
    sharers = sharers[:limit]
    if not sharers:
        return []
    n = len(sharers)
    budget = cfg.budget_fen if cfg.max_fen is None else min(cfg.budget_fen, n * cfg.max_fen)
    if cfg.mode == "pool_split_random":
        if cfg.seed is None:
            raise RewardConfigError(
                "seed", "pool_split_random needs a stored seed to be replayable"
            )
        amounts = split_pool_random(budget, n, cfg.min_fen, cfg.max_fen, cfg.seed)
    else:
        scores = [r.score for r in sharers]
        amounts = split_pool_proportional(budget, scores, cfg.min_fen, cfg.max_fen)
    return [
        Award(r.distributor_id, r.rank, amount, KIND_RED_PACKET)
        for r, amount in zip(sharers, amounts, strict=True)
    ]
