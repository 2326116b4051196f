"""Reward rules of liebian, as pure functions and msgspec Structs (no I/O, no web or DB imports).

Money is integer fen, rates are basis points, times are epoch microseconds. Submodules:
``commission`` (per-level split, pro-rata reversal), ``red_packets`` (fixed, random and pool
splits), ``ranking`` (leaderboard order), ``prizes`` (TOP-N and pool awards at close),
``settlement`` (netting per distributor), ``money`` (formatting), ``errors``.
"""

from rewards.commission import (
    BPS_DENOMINATOR,
    MAX_LEVELS,
    cumulative_reversal,
    split_commission,
    validate_commission_rates,
)
from rewards.errors import RefundExceedsOrderError, RewardConfigError, RewardError
from rewards.money import fen_to_yuan_str
from rewards.prizes import (
    KIND_PRIZE,
    KIND_RED_PACKET,
    Award,
    PrizeTier,
    award_top_n,
    qualifiers,
    split_pool_awards,
    validate_prize_table,
)
from rewards.ranking import Ranked, Standing, neighbours, rank_standings, sort_key
from rewards.red_packets import (
    PER_INVITE_MODES,
    POOL_MODES,
    RedPacketConfig,
    RedPacketMode,
    budget_exhausted,
    draw_per_invite,
    planned_count,
    split_pool_proportional,
    split_pool_random,
    validate_red_packet_config,
)
from rewards.settlement import ENTRY_KINDS, EntryAmount, SettlementLine, settle, settlement_total

__all__ = [
    "BPS_DENOMINATOR",
    "ENTRY_KINDS",
    "KIND_PRIZE",
    "KIND_RED_PACKET",
    "MAX_LEVELS",
    "PER_INVITE_MODES",
    "POOL_MODES",
    "Award",
    "EntryAmount",
    "PrizeTier",
    "Ranked",
    "RedPacketConfig",
    "RedPacketMode",
    "RefundExceedsOrderError",
    "RewardConfigError",
    "RewardError",
    "SettlementLine",
    "Standing",
    "award_top_n",
    "budget_exhausted",
    "cumulative_reversal",
    "draw_per_invite",
    "fen_to_yuan_str",
    "neighbours",
    "planned_count",
    "qualifiers",
    "rank_standings",
    "settle",
    "settlement_total",
    "sort_key",
    "split_commission",
    "split_pool_awards",
    "split_pool_proportional",
    "split_pool_random",
    "validate_commission_rates",
    "validate_prize_table",
    "validate_red_packet_config",
]
