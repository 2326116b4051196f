"""Distributors, share links and referral bindings.

Contract: docs/api.md, "Distributors and links" and "Referrals and orders".
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from server.campaigns.invites import RedPacketResult
from server.common import AwareDatetime, ExternalId
from server.recruitment.schemas import RecruitmentOut

__all__ = [
    "Balance",
    "DistributorPage",
    "DistributorSummary",
    "Distributor",
    "DistributorIn",
    "Link",
    "LinkIn",
    "ReferralIn",
    "ReferralOut",
    "TeamMember",
    "TeamPage",
]

Tier = Literal["seed", "koc", "member"]
DistributorStatus = Literal["active", "held", "frozen"]
Outcome = Literal["bound", "kept", "rejected"]
Channel = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
CampaignId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class DistributorIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    nickname: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    avatar_url: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    tier: Tier | None = None
    # Operators hold (fraud review) or freeze a distributor: left out of rankings and awards.
    status: DistributorStatus | None = None


class Balance(msgspec.Struct):
    pending_fen: int
    available_fen: int
    settled_fen: int
    paid_fen: int


class Counts(msgspec.Struct):
    direct_invitees: int
    indirect_invitees: int
    level2_invitees: int
    level3_invitees: int


class Distributor(msgspec.Struct):
    distributor_id: str
    nickname: str
    avatar_url: str | None
    tier: Tier
    status: DistributorStatus
    inviter_id: str | None
    counts: Counts
    balance: Balance
    created_at: str
    updated_at: str
    # Recruitment state (new | applied | approved | rejected), reason and application form.
    recruitment: RecruitmentOut | None = None
    # The distributor's tier among the program's tiers (0 = the first; its name, null when the
    # program has no tiers): it sets the rates they earn.
    tier_level: int = 0
    tier_name: str | None = None


class DistributorSummary(msgspec.Struct, kw_only=True):
    distributor_id: str
    nickname: str
    tier: Tier
    status: DistributorStatus
    updated_at: str
    recruitment: str = "approved"  # new | applied | approved | rejected


class DistributorPage(msgspec.Struct):
    distributors: list[DistributorSummary]
    next_cursor: str | None


class LinkIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    distributor_id: ExternalId
    campaign_id: CampaignId | None = None
    channel: Channel | None = None


class Link(msgspec.Struct):
    code: str
    scene: str
    url: str
    distributor_id: str
    campaign_id: str | None
    channel: str | None
    clicks: int = 0
    # The program's mini-program page (wxacode.getUnlimited `page`) to open with `scene`.
    page: str | None = None


class ReferralIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    user_id: ExternalId
    scene: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    occurred_at: AwareDatetime | None = None


class ReferralOut(msgspec.Struct):
    outcome: Outcome
    reason: str | None
    inviter_id: str | None
    upline: list[str]
    event_id: int
    # Per-invite red packets this binding paid the inviter (or why not: exhausted, capped).
    red_packets: list[RedPacketResult] = msgspec.field(default_factory=list)


class TeamMember(msgspec.Struct):
    user_id: str
    level: int
    inviter_id: str
    bound_at: str
    is_distributor: bool


class TeamPage(msgspec.Struct):
    members: list[TeamMember]
    next_cursor: str | None
