"""Campaign lifecycle: create, read, close with TOP-N prizes and pool splits (exactly once)."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from rewards.errors import RewardConfigError
from rewards.prizes import PrizeTier, award_top_n, split_pool_awards, validate_prize_table
from rewards.ranking import Standing, rank_standings
from rewards.red_packet_config import POOL_MODES, RedPacketConfig, validate_red_packet_config
from rewards.red_packets import budget_exhausted
from server.campaigns.schemas import (
    Award,
    Campaign,
    CampaignIn,
    CampaignPage,
    PrizeIn,
    RedPacketIn,
    RedPacketState,
)
from server.coherence import publish_invalidation
from server.common import decode_cursor, encode_cursor, from_us, new_id, now_us, to_us
from server.db import Connection
from server.errors import Conflict, InvalidInput, NotFound
from server.ledger.totals import add_entries
from server.program.schemas import Program
from server.queries import DAY_US
from server.webhooks.outbox import enqueue_event

__all__ = [
    "close_campaign",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "red_packet_config",
    "update_campaign",
]


class CampaignDoc(msgspec.Struct, kw_only=True):
    prizes: list[PrizeIn] = msgspec.field(default_factory=list)
    min_score: int | None = None
    red_packet: RedPacketIn | None = None
    awards: list[Award] | None = None


_doc_decoder = msgspec.json.Decoder(CampaignDoc)
_encoder = msgspec.json.Encoder()


def red_packet_config(rp: RedPacketIn) -> RedPacketConfig:
    return RedPacketConfig(
        mode=rp.mode,
        budget_fen=rp.budget_fen,
        amount_fen=rp.amount_fen,
        min_fen=rp.min_fen,
        max_fen=rp.max_fen,
        count=rp.count,
        seed=rp.seed,
    )


def _validate(data: CampaignIn) -> CampaignIn:
    if data.ends_at <= data.starts_at:
        raise InvalidInput("ends_at", "must be after starts_at")
    tiers = [PrizeTier(p.rank_from, p.rank_to, p.amount_fen) for p in data.prizes]
    try:
        validate_prize_table(tiers)
        if data.red_packet is not None:
            rp = data.red_packet
            if rp.seed is None:  # stored, so every random draw can be reproduced later
                rp = msgspec.structs.replace(rp, seed=secrets.randbits(62))
                data = msgspec.structs.replace(data, red_packet=rp)
            validate_red_packet_config(red_packet_config(rp))
    except RewardConfigError as exc:
        field = exc.field if exc.field.startswith("prizes") else f"red_packet.{exc.field}"
        raise InvalidInput(field, exc.message) from None
    return data


def _stored(data: CampaignIn) -> tuple[Any, ...]:
    """A validated campaign as stored, $3..$8 of both the insert and the update: name,
    starts_at_us, ends_at_us, metric, document (prizes, min_score, red packet) and the red
    packets' remaining budget (fen; the whole budget, as nothing is drawn before the start)."""
    doc = CampaignDoc(prizes=data.prizes, min_score=data.min_score, red_packet=data.red_packet)
    return (
        data.name,
        to_us(data.starts_at, "starts_at"),
        to_us(data.ends_at, "ends_at"),
        data.metric,
        _encoder.encode(doc).decode(),
        data.red_packet.budget_fen if data.red_packet else None,
    )


async def create_campaign(tx: Connection, tenant_id: str, data: CampaignIn) -> Campaign:
    data = _validate(data)
    campaign_id = new_id("cmp")
    await tx.execute(
        "INSERT INTO campaigns (tenant_id, campaign_id, name, starts_at_us, ends_at_us, metric,"
        " document, red_packet_remaining_fen, red_packets_issued, status, created_at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 'open', $9)",
        tenant_id,
        campaign_id,
        *_stored(data),
        now_us(),
    )
    await publish_invalidation("campaigns", tenant_id, tx=tx)
    return await get_campaign(tx, tenant_id, campaign_id)


async def update_campaign(
    tx: Connection, tenant_id: str, campaign_id: str, data: CampaignIn
) -> Campaign:
    """Replace a campaign that has not started yet (nothing has been scored or paid for it).

    Once it has started, its window, metric and prizes are what distributors competed on:
    409. The new start must also be in the future, so no event falls into a past window.
    """
    row = await campaign_row(tx, tenant_id, campaign_id, lock=True)
    now = now_us()
    if row["status"] != "open" or int(row["starts_at_us"]) <= now:
        raise Conflict(f"campaign {campaign_id!r} has started; only a campaign not yet started "
                       "can be edited")  # fmt: skip
    data = _validate(data)
    if to_us(data.starts_at, "starts_at") <= now:
        raise InvalidInput("starts_at", "must be in the future when editing a campaign")
    await tx.execute(
        "UPDATE campaigns SET name = $3, starts_at_us = $4, ends_at_us = $5, metric = $6,"
        " document = $7, red_packet_remaining_fen = $8 WHERE tenant_id = $1 AND campaign_id = $2",
        tenant_id,
        campaign_id,
        *_stored(data),
    )
    await publish_invalidation("campaigns", tenant_id, tx=tx)
    return await get_campaign(tx, tenant_id, campaign_id)


async def campaign_row(db: Connection, tenant_id: str, campaign_id: str, lock: bool = False) -> Any:
    row = await db.fetchrow(
        "SELECT campaign_id, name, starts_at_us, ends_at_us, metric, document,"
        " red_packet_remaining_fen, red_packets_issued, status, closed_at_us FROM campaigns"
        " WHERE tenant_id = $1 AND campaign_id = $2"
        + (" FOR UPDATE" if lock and db.engine == "postgres" else ""),
        tenant_id,
        campaign_id,
    )
    if row is None:
        raise NotFound(f"campaign {campaign_id!r} does not exist")
    return row


def _campaign_out(row: Any) -> Campaign:
    doc = _doc_decoder.decode(row["document"])
    state = None
    if doc.red_packet is not None:
        rp = doc.red_packet
        remaining = row["red_packet_remaining_fen"]
        issued = int(row["red_packets_issued"])
        if rp.mode in POOL_MODES:
            exhausted = row["status"] == "closed"
        else:
            from rewards.red_packet_config import planned_count

            cfg = red_packet_config(rp)
            exhausted = budget_exhausted(cfg, int(remaining), planned_count(cfg) - issued)
        state = RedPacketState(rp.mode, rp.budget_fen, remaining, issued, exhausted)
    return Campaign(
        id=row["campaign_id"],
        name=row["name"],
        starts_at=from_us(row["starts_at_us"]).isoformat(),
        ends_at=from_us(row["ends_at_us"]).isoformat(),
        metric=row["metric"],
        prizes=doc.prizes,
        min_score=doc.min_score,
        red_packet=doc.red_packet,
        red_packet_state=state,
        status=row["status"],
        closed_at=from_us(row["closed_at_us"]).isoformat() if row["closed_at_us"] else None,
        awards=doc.awards,
    )


_COLUMNS = (
    "campaign_id, name, starts_at_us, ends_at_us, metric, document, red_packet_remaining_fen,"
    " red_packets_issued, status, closed_at_us"
)


async def list_campaigns(
    db: Connection, tenant_id: str, status: str | None, limit: int, cursor: str | None
) -> CampaignPage:
    """Newest first, paged by the internal row id."""
    after = decode_cursor(cursor, int)
    args: list[Any] = [tenant_id]
    where = "tenant_id = $1"
    if after:
        args.append(int(after[0]))
        where += f" AND id < ${len(args)}"
    if status:
        args.append(status)
        where += f" AND status = ${len(args)}"
    rows = await db.fetch(
        f"SELECT id, {_COLUMNS} FROM campaigns WHERE {where} ORDER BY id DESC LIMIT {limit + 1}",
        *args,
    )
    return CampaignPage(
        campaigns=[_campaign_out(r) for r in rows[:limit]],
        next_cursor=encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None,
    )


async def get_campaign(db: Connection, tenant_id: str, campaign_id: str) -> Campaign:
    return _campaign_out(await campaign_row(db, tenant_id, campaign_id))


async def close_campaign(
    tx: Connection, tenant_id: str, program: Program, campaign_id: str
) -> list[Award]:
    """Award TOP-N prizes and pool splits once; closing again returns the same awards."""
    row = await campaign_row(tx, tenant_id, campaign_id, lock=True)
    doc = _doc_decoder.decode(row["document"])
    if row["status"] == "closed" and doc.awards is not None:
        return doc.awards
    rows = await tx.fetch(
        "SELECT s.distributor_id, s.score, s.reached_at_us FROM leaderboard_scores s"
        " JOIN distributors d ON d.tenant_id = s.tenant_id AND d.distributor_id = s.distributor_id"
        " WHERE s.tenant_id = $1 AND s.campaign_id = $2 AND s.period_key = 'campaign'"
        " AND d.status = 'active'",
        tenant_id,
        campaign_id,
    )
    ranked = rank_standings(Standing(r[0], int(r[1]), int(r[2])) for r in rows)
    min_score = doc.min_score or 0
    tiers = [PrizeTier(p.rank_from, p.rank_to, p.amount_fen) for p in doc.prizes]
    awards = list(award_top_n(ranked, tiers, min_score))
    if doc.red_packet is not None and doc.red_packet.mode in POOL_MODES:
        awards += split_pool_awards(ranked, red_packet_config(doc.red_packet), min_score)
    now = now_us()
    available = now + program.freeze_days * DAY_US
    if awards:
        await tx.executemany(
            "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, campaign_id,"
            " available_at_us, created_at_us, memo, dedupe_key)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    tenant_id,
                    a.distributor_id,
                    a.kind,
                    a.amount_fen,
                    campaign_id,
                    available,
                    now,
                    f"rank {a.rank}",
                    f"close:{campaign_id}:{a.kind}:{a.distributor_id}",
                )
                for a in awards
                if a.amount_fen > 0
            ],
        )
        await add_entries(
            tx,
            tenant_id,
            [(a.distributor_id, a.kind, a.amount_fen) for a in awards if a.amount_fen > 0],
        )
    out = [
        Award(a.distributor_id, a.rank, a.amount_fen, a.kind) for a in awards if a.amount_fen > 0
    ]
    doc.awards = out
    await tx.execute(
        "UPDATE campaigns SET status = 'closed', closed_at_us = $3, document = $4"
        " WHERE tenant_id = $1 AND campaign_id = $2",
        tenant_id,
        campaign_id,
        now,
        _encoder.encode(doc).decode(),
    )
    await publish_invalidation("campaigns", tenant_id, tx=tx)
    await enqueue_event(
        tx, tenant_id, "campaign.closed", campaign_id, {"campaign_id": campaign_id, "awards": out}
    )
    return out
