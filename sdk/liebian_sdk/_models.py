"""Typed responses of the Liebian API v1 (msgspec Structs).

Units: amounts are integer fen (`*_fen`, 1 元 = 100 fen), rates basis points (`*_bps`,
10000 = 100%), times timezone-aware `datetime`s. Unknown response fields are ignored, so a newer
server that adds fields does not break an older SDK; enumerations (outcome, status, kind...) are
plain `str` for the same reason, with their known values listed in each docstring.
Fields that docs/api.md names are required; the others default to empty values, so that an SDK
and a server of slightly different versions still understand each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "Award",
    "Balance",
    "BindingEvent",
    "Campaign",
    "CampaignClosing",
    "Commission",
    "CommissionLine",
    "Distributor",
    "DistributorCounts",
    "Leaderboard",
    "LeaderboardEntry",
    "LeaderboardRank",
    "LedgerEntry",
    "LedgerPage",
    "Link",
    "Order",
    "OrderExplanation",
    "Prize",
    "Program",
    "Recruitment",
    "Withdrawal",
    "WithdrawalPage",
    "RedPacket",
    "RedPacketResult",
    "RedPacketState",
    "Referral",
    "Refund",
    "RefundLine",
    "Reversal",
    "Settlement",
    "SettlementLine",
    "TeamMember",
    "TeamPage",
    "Wxacode",
]


class Balance(msgspec.Struct, kw_only=True, frozen=True):
    """A distributor's money by ledger status, in fen."""

    pending_fen: int
    available_fen: int
    settled_fen: int
    paid_fen: int


class DistributorCounts(msgspec.Struct, kw_only=True, frozen=True):
    """How many users a distributor brought: directly (level 1) and below (levels 2 and 3)."""

    direct_invitees: int = 0
    indirect_invitees: int = 0
    level2_invitees: int = 0
    level3_invitees: int = 0


class Recruitment(msgspec.Struct, kw_only=True, frozen=True):
    """How far a user is on the way to being a distributor (the program's recruitment mode).

    `state`: "new" (registered, not a distributor) | "applied" (awaiting an operator) |
    "approved" | "rejected" (`reason` says why); `form`: the application's fields.
    """

    state: str
    reason: str | None = None
    form: dict[str, str] = {}
    updated_at: datetime | None = None


class Withdrawal(msgspec.Struct, kw_only=True, frozen=True):
    """A withdrawal (提现) request: `net_fen` = `amount_fen` - `fee_fen` is what gets paid.

    `status`: "requested" | "approved" | "rejected" (`reason` says why) | "paid"
    (`transfer_ref` is the payout rail's reference).
    """

    id: str
    distributor_id: str
    amount_fen: int
    fee_fen: int
    net_fen: int
    status: str
    reason: str | None = None
    transfer_ref: str | None = None
    created_at: datetime | None = None
    decided_at: datetime | None = None
    paid_at: datetime | None = None


class WithdrawalPage(msgspec.Struct, kw_only=True, frozen=True):
    withdrawals: list[Withdrawal]
    next_cursor: str | None = None


class Distributor(msgspec.Struct, kw_only=True, frozen=True):
    """A distributor's profile and balance.

    `tier`: "seed" | "koc" | "member"; `status`: "active" | "held" | "frozen" (held and frozen
    distributors are left out of rankings and awards).
    """

    distributor_id: str
    nickname: str
    avatar_url: str | None = None
    tier: str | None = None
    status: str | None = None
    inviter_id: str | None = None
    counts: DistributorCounts = DistributorCounts()
    balance: Balance
    created_at: datetime | None = None
    updated_at: datetime | None = None
    recruitment: Recruitment | None = None
    tier_level: int = 0
    tier_name: str | None = None


class LedgerEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One append-only ledger entry; `amount_fen` is negative for reversals.

    `kind`: "commission" | "reversal" | "red_packet" | "prize"...;
    `status`: "pending" | "available" | "settled" | "paid".
    """

    id: int | None = None
    kind: str
    status: str
    amount_fen: int
    level: int | None = None
    order_id: str | None = None
    refund_id: str | None = None
    campaign_id: str | None = None
    memo: str = ""
    created_at: datetime | None = None
    available_at: datetime | None = None


class LedgerPage(msgspec.Struct, kw_only=True, frozen=True):
    """Ledger entries, newest first; pass `next_cursor` back as `cursor=` for the next page."""

    entries: list[LedgerEntry]
    next_cursor: str | None = None


class TeamMember(msgspec.Struct, kw_only=True, frozen=True):
    """A user `level` steps below a distributor (1 = invited directly)."""

    user_id: str
    level: int = 1
    inviter_id: str | None = None
    bound_at: datetime | None = None
    is_distributor: bool = False


class TeamPage(msgspec.Struct, kw_only=True, frozen=True):
    """One page of a distributor's team at one level."""

    members: list[TeamMember]
    next_cursor: str | None = None


class Link(msgspec.Struct, kw_only=True, frozen=True):
    """A share link: `code` for `/s/{code}`, `scene` for wxacode.getUnlimited, `url` to share;
    `page`: the program's mini-program page to open with `scene` (None when it sets none)."""

    code: str
    scene: str
    url: str
    distributor_id: str | None = None
    campaign_id: str | None = None
    channel: str | None = None
    clicks: int = 0
    page: str | None = None


class Wxacode(msgspec.Struct, kw_only=True, frozen=True):
    """A link's stored mini-program code (小程序码): `source` "upload" | "wechat", the image's
    `media_type` ("image/png" | "image/jpeg"), its `width` and `height` in px and `size_bytes`."""

    code: str
    source: str
    media_type: str
    width: int
    height: int
    size_bytes: int


class RedPacketResult(msgspec.Struct, kw_only=True, frozen=True):
    """A per-invite red packet a binding paid the inviter. `status`: "paid" | "exhausted" |
    "capped" (no packet: the budget is spent, or the inviter's daily cap is reached)."""

    campaign_id: str
    distributor_id: str
    amount_fen: int
    status: str


class Referral(msgspec.Struct, kw_only=True, frozen=True):
    """A binding decision. `outcome`: "bound" | "kept" | "rejected" (then `reason` says why).

    `upline` lists the user's distributors, nearest first.
    """

    outcome: str
    reason: str | None = None
    inviter_id: str | None = None
    upline: list[str]
    event_id: int | None = None
    red_packets: list[RedPacketResult] = []


class Commission(msgspec.Struct, kw_only=True, frozen=True):
    """A commission credited for an order. `status`: "pending" | "available" | ..."""

    distributor_id: str
    level: int
    amount_fen: int
    status: str


class Order(msgspec.Struct, kw_only=True, frozen=True):
    """The result of reporting a paid order: the commissions it credited (replay-safe)."""

    order_id: str
    commissions: list[Commission]


class Reversal(msgspec.Struct, kw_only=True, frozen=True):
    """A ledger entry taking back (part of) a commission after a refund: `amount_fen` < 0.

    `kind`: "reversal" | "absorbed_reversal" (the tenant bears it: clawback "absorb").
    """

    distributor_id: str
    amount_fen: int
    level: int | None = None
    kind: str | None = None
    status: str | None = None


class Refund(msgspec.Struct, kw_only=True, frozen=True):
    """The result of reporting a refund: the `reversals` it caused."""

    reversals: list[Reversal]
    order_id: str | None = None
    refund_id: str | None = None
    amount_fen: int | None = None
    refunded_total_fen: int | None = None


class BindingEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One recorded binding decision about the order's user. `credited`: the commission
    followed this binding."""

    event_id: int | None = None
    occurred_at: datetime | None = None
    outcome: str
    reason: str | None = None
    candidate_inviter_id: str | None = None
    previous_inviter_id: str | None = None
    link_code: str | None = None
    channel: str | None = None
    campaign_id: str | None = None
    credited: bool = False


class CommissionLine(msgspec.Struct, kw_only=True, frozen=True):
    """One level's share: `amount_fen` = floor(base × `rate_bps` / 10000), spelled out in
    `arithmetic`."""

    level: int
    distributor_id: str
    rate_bps: int = 0
    amount_fen: int
    arithmetic: str = ""
    settlement_id: str | None = None  # the approved settlement holding this entry, if any


class RefundLine(msgspec.Struct, kw_only=True, frozen=True):
    """One refund and the reversals it caused."""

    refund_id: str
    amount_fen: int
    refunded_before_fen: int = 0
    reversals: list[CommissionLine] = []


class OrderExplanation(msgspec.Struct, kw_only=True, frozen=True):
    """Why an order earned what it earned: binding events, upline snapshot, rates, arithmetic."""

    order_id: str
    user_id: str | None = None
    amount_fen: int | None = None
    paid_at: datetime | None = None
    self_purchase: bool = False
    upline: list[str] = []
    rates_bps: list[int] = []
    binding_events: list[BindingEvent] = []
    commissions: list[CommissionLine] = []
    refunds: list[RefundLine] = []
    note: str = ""


class Program(msgspec.Struct, kw_only=True, frozen=True):
    """The tenant's standing rules.

    `bind_mode`: "first" | "new_user_only" | "last"; `clawback`: "net_off" | "absorb";
    `commission_bps`: one rate per level (1–3 levels, sum ≤ 10000); `bind_validity_days`
    None: bindings never lapse; `avatar_hosts`: hosts poster avatars may come from;
    `short_link_base_url`: the tenant's own domain for links, poster QR codes and signed poster
    URLs (None: the service's); `mini_program_page`: the page links open, e.g. "pages/index/index".
    """

    bind_mode: str
    bind_validity_days: int | None = None
    commission_bps: list[int]
    freeze_days: int = 7
    self_purchase_commission: bool = False
    clawback: str = "net_off"
    payout_threshold_fen: int = 0
    timezone: str = "Asia/Shanghai"
    landing_url: str | None = None
    avatar_hosts: list[str] = []
    short_link_base_url: str | None = None
    mini_program_page: str | None = None
    recruitment: dict[str, Any] | None = None
    updated_at: datetime | None = None


class Prize(msgspec.Struct, kw_only=True, frozen=True):
    """A TOP-N prize: ranks `rank_from`..`rank_to` (inclusive) each get `amount_fen`."""

    rank_from: int
    rank_to: int
    amount_fen: int


class RedPacket(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A campaign's red-packet rule (None fields are left to the server's defaults).

    `mode`: "fixed_per_invite" (each `amount_fen`) | "random_per_invite" (拼手气, between
    `min_fen` and `max_fen`, about `count` packets) | "pool_split_random" |
    "pool_split_proportional" (瓜分 at close); `seed` makes draws reproducible;
    `daily_cap_per_inviter` caps per-invite packets per inviter per local day.
    """

    mode: str
    budget_fen: int
    amount_fen: int | None = None
    min_fen: int | None = None
    max_fen: int | None = None
    count: int | None = None
    seed: int | None = None
    daily_cap_per_inviter: int | None = None


class RedPacketState(msgspec.Struct, kw_only=True, frozen=True):
    """How much of a campaign's red-packet budget is left."""

    mode: str
    budget_fen: int
    remaining_fen: int | None = None
    issued: int = 0
    exhausted: bool = False


class Award(msgspec.Struct, kw_only=True, frozen=True):
    """A reward given when a campaign closes. `kind`: "prize" | "red_packet"..."""

    distributor_id: str
    rank: int | None = None
    amount_fen: int
    kind: str


class Campaign(msgspec.Struct, kw_only=True, frozen=True):
    """A time-boxed contest. `metric`: "invites" | "orders" | "gmv" | "commission";
    `status`: "open" | "closed" (then `awards` lists what it gave)."""

    id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    metric: str
    prizes: list[Prize] = []
    min_score: int | None = None
    red_packet: RedPacket | None = None
    red_packet_state: RedPacketState | None = None
    status: str | None = None
    closed_at: datetime | None = None
    awards: list[Award] | None = None


class CampaignClosing(msgspec.Struct, kw_only=True, frozen=True):
    """The awards of a closed campaign (closing twice returns the same awards)."""

    awards: list[Award]
    campaign_id: str | None = None


class LeaderboardEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One row of a leaderboard; `score` is in the campaign metric's unit (fen for gmv)."""

    rank: int
    distributor_id: str
    nickname: str | None = None
    score: int


class Leaderboard(msgspec.Struct, kw_only=True, frozen=True):
    """Top entries of a campaign's leaderboard for one period (`period_key`, e.g. a date)."""

    entries: list[LeaderboardEntry]
    campaign_id: str | None = None
    period: str | None = None
    period_key: str | None = None
    metric: str | None = None


class LeaderboardRank(msgspec.Struct, kw_only=True, frozen=True):
    """A distributor's own standing and its neighbours. `rank` is None when not ranked."""

    rank: int | None
    score: int
    above: list[LeaderboardEntry] = []
    below: list[LeaderboardEntry] = []
    distributor_id: str | None = None
    period_key: str | None = None


class SettlementLine(msgspec.Struct, kw_only=True, frozen=True):
    """One distributor's due amounts in a settlement, in fen; `net_fen` is what to pay."""

    distributor_id: str
    commission_fen: int
    red_packet_fen: int
    prize_fen: int
    reversal_fen: int
    net_fen: int
    # The part of `reversal_fen` netted against commission this same line pays (refunds known
    # when the draft was made); the rest is clawback of commission an earlier settlement paid.
    netted_reversal_fen: int = 0


class Settlement(msgspec.Struct, kw_only=True, frozen=True):
    """A finance batch. `status`: "draft" | "approved" | "paid"."""

    id: str
    status: str
    lines: list[SettlementLine]
    total_fen: int
    cutoff: datetime | None = None
    created_at: datetime | None = None
    approved_at: datetime | None = None
    paid_at: datetime | None = None
