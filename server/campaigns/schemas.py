"""Campaigns, leaderboards and awards (docs/api.md, "Campaigns and rewards")."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from rewards.red_packet_config import RedPacketMode
from server.common import AwareDatetime

__all__ = [
    "Campaign",
    "CampaignIn",
    "CampaignPage",
    "CloseOut",
    "Leaderboard",
    "LeaderboardEntry",
    "OwnRank",
    "PrizeIn",
    "RedPacketIn",
]

Metric = Literal["invites", "orders", "gmv", "commission"]
Period = Literal["day", "week", "month", "campaign"]
PositiveFen = Annotated[int, msgspec.Meta(ge=1, le=10**12)]


class PrizeIn(msgspec.Struct, forbid_unknown_fields=True):
    rank_from: Annotated[int, msgspec.Meta(ge=1)]
    rank_to: Annotated[int, msgspec.Meta(ge=1)]
    amount_fen: PositiveFen


class RedPacketIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mode: RedPacketMode
    budget_fen: PositiveFen
    amount_fen: PositiveFen | None = None
    min_fen: PositiveFen = 1
    max_fen: PositiveFen | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    # Per-invite packets reward recruiting alone (拉人头): capped per inviter per local day.
    daily_cap_per_inviter: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    metric: Metric
    prizes: list[PrizeIn] = msgspec.field(default_factory=list)
    min_score: Annotated[int, msgspec.Meta(ge=0)] | None = None
    red_packet: RedPacketIn | None = None


class RedPacketState(msgspec.Struct):
    mode: str
    budget_fen: int
    remaining_fen: int | None
    issued: int
    exhausted: bool


class Award(msgspec.Struct):
    distributor_id: str
    rank: int
    amount_fen: int
    kind: str


class Campaign(msgspec.Struct):
    id: str
    name: str
    starts_at: str
    ends_at: str
    metric: Metric
    prizes: list[PrizeIn]
    min_score: int | None
    red_packet: RedPacketIn | None
    red_packet_state: RedPacketState | None
    status: Literal["open", "closed"]
    closed_at: str | None
    awards: list[Award] | None


class CampaignPage(msgspec.Struct):
    campaigns: list[Campaign]
    next_cursor: str | None


class LeaderboardEntry(msgspec.Struct):
    rank: int
    distributor_id: str
    nickname: str
    score: int


class Leaderboard(msgspec.Struct):
    campaign_id: str
    period: Period
    period_key: str
    metric: Metric
    entries: list[LeaderboardEntry]


class OwnRank(msgspec.Struct):
    distributor_id: str
    rank: int | None
    score: int
    above: list[LeaderboardEntry]
    below: list[LeaderboardEntry]
    period_key: str


class CloseOut(msgspec.Struct):
    campaign_id: str
    awards: list[Award]
