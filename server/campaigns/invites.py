"""What a new binding does inside campaigns: the ``invites`` score and per-invite red packets.

A user counts once per campaign as an invite (re-binding back and forth does not farm
invites or packets). Per-invite packets draw from the campaign budget under the campaign row
lock (PostgreSQL ``FOR UPDATE``; SQLite transactions are serialised), so concurrent invites
never spend a stale remainder; each inviter gets at most ``daily_cap_per_inviter`` a day.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from rewards.red_packet_config import PER_INVITE_MODES, planned_count
from rewards.red_packets import draw_per_invite
from server.campaigns.schemas import RedPacketIn
from server.campaigns.scores import (
    ActiveCampaign,
    Increment,
    _zone,
    active_campaigns,
    apply_increments,
    invite_increments,
    matching,
)
from server.campaigns.service import campaign_row, red_packet_config
from server.common import from_us, now_us, to_us
from server.db import Connection
from server.ledger.totals import add_entries
from server.program.schemas import Program
from server.queries import DAY_US

__all__ = ["RedPacketResult", "on_bound"]

ALL_METRICS = ("invites", "orders", "gmv", "commission")


class RedPacketResult(msgspec.Struct):
    campaign_id: str
    distributor_id: str
    amount_fen: int
    status: str  # paid | exhausted | capped


async def on_bound(
    tx: Connection,
    tenant_id: str,
    program: Program,
    inviter: str,
    user_id: str,
    at_us: int,
    event_id: int,
    link_campaign: str | None,
) -> list[RedPacketResult]:
    campaigns = matching(await active_campaigns(tx, tenant_id), at_us, link_campaign, ALL_METRICS)
    increments: list[Increment] = []
    packets: list[RedPacketResult] = []
    for campaign in campaigns:
        if campaign.metric != "invites" and (
            campaign.red_packet is None or campaign.red_packet.mode not in PER_INVITE_MODES
        ):
            continue
        earlier = await tx.fetchval(
            "SELECT 1 FROM attribution_events WHERE tenant_id = $1 AND user_id = $2"
            " AND outcome = 'bound' AND occurred_at_us >= $3 AND occurred_at_us < $4 AND id < $5"
            " LIMIT 1",
            tenant_id,
            user_id,
            campaign.starts_at_us,
            campaign.ends_at_us,
            event_id,
        )
        if earlier is not None:
            continue
        if campaign.metric == "invites":
            increments += invite_increments([campaign], program.timezone, at_us, inviter)
        rp = campaign.red_packet
        if rp is not None and rp.mode in PER_INVITE_MODES:
            packets.append(
                await _pay_packet(tx, tenant_id, program, campaign, rp, inviter, user_id, at_us)
            )
    await apply_increments(tx, tenant_id, increments)
    return packets


def _local_day_start(at_us: int, timezone: str) -> int:
    local = from_us(at_us).astimezone(_zone(timezone))
    return to_us(datetime(local.year, local.month, local.day, tzinfo=local.tzinfo))


async def _pay_packet(
    tx: Connection,
    tenant_id: str,
    program: Program,
    campaign: ActiveCampaign,
    rp: RedPacketIn,
    inviter: str,
    user_id: str,
    at_us: int,
) -> RedPacketResult:
    cid = campaign.campaign_id
    row = await campaign_row(tx, tenant_id, cid, lock=True)
    today = await tx.fetchval(
        "SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1 AND distributor_id = $2"
        " AND campaign_id = $3 AND kind = 'red_packet' AND created_at_us >= $4",
        tenant_id,
        inviter,
        cid,
        _local_day_start(at_us, program.timezone),
    )
    if int(today) >= rp.daily_cap_per_inviter:
        return RedPacketResult(cid, inviter, 0, "capped")
    cfg = red_packet_config(rp)
    issued = int(row["red_packets_issued"])
    remaining = int(row["red_packet_remaining_fen"])
    if cfg.seed is None:  # _validate gave every stored red-packet pool a seed
        raise RuntimeError("invariant broken: cfg.seed is None")
    amount = draw_per_invite(cfg, cfg.seed, issued, remaining, planned_count(cfg) - issued)
    if amount <= 0:
        return RedPacketResult(cid, inviter, 0, "exhausted")
    await tx.execute(
        "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, campaign_id,"
        " available_at_us, created_at_us, memo, dedupe_key)"
        " VALUES ($1, $2, 'red_packet', $3, $4, $5, $6, $7, $8)",
        tenant_id,
        inviter,
        amount,
        cid,
        at_us + program.freeze_days * DAY_US,
        at_us,
        f"invite {user_id}",
        f"invite:{cid}:{user_id}",
    )
    # a binding dated in the past may bring a red packet already mature (server.ledger.maturity)
    await add_entries(
        tx,
        tenant_id,
        [(inviter, "red_packet", amount)],
        at_us + program.freeze_days * DAY_US,
        now_us(),
    )
    await tx.execute(
        "UPDATE campaigns SET red_packet_remaining_fen = red_packet_remaining_fen - $3,"
        " red_packets_issued = red_packets_issued + 1 WHERE tenant_id = $1 AND campaign_id = $2",
        tenant_id,
        cid,
        amount,
    )
    return RedPacketResult(cid, inviter, amount, "paid")
