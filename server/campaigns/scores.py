"""Which open campaigns an event counts in, the score changes it makes, and writing them.

Scores are kept per campaign and period (``campaign``, ``d:YYYY-MM-DD``, ``w:YYYY-Www``,
``m:YYYY-MM`` in the program's time zone) and change in the same transaction as the event.
An event with a campaign (a campaign link, an order's ``campaign_id``) counts in that
campaign only; one without counts in every open campaign whose window contains it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import msgspec

from server.campaigns.schemas import RedPacketIn
from server.coherence import ALL, register
from server.common import from_us
from server.db import Connection

__all__ = [
    "ActiveCampaign",
    "Increment",
    "active_campaigns",
    "apply_increments",
    "invalidate_campaigns",
    "invite_increments",
    "matching",
    "merge",
    "mirror_increments",
    "write_increments",
    "order_increments",
    "period_key",
    "period_keys",
    "refund_increments",
]

CAMPAIGN_CACHE_SECONDS = 2.0


class ActiveCampaign(msgspec.Struct, frozen=True):
    campaign_id: str
    metric: str
    starts_at_us: int
    ends_at_us: int
    red_packet: RedPacketIn | None


class _Doc(msgspec.Struct):
    red_packet: RedPacketIn | None = None


# (campaign_id, period_key, distributor_id, delta, reached_at_us)
Increment = tuple[str, str, str, int, int]

_cache: dict[str, tuple[float, list[ActiveCampaign]]] = {}
_doc = msgspec.json.Decoder(_Doc)


async def active_campaigns(db: Connection, tenant_id: str) -> list[ActiveCampaign]:
    """Open campaigns of the tenant (cached briefly; invalidated here on create and close)."""
    hit = _cache.get(tenant_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    rows = await db.fetch(
        "SELECT campaign_id, metric, starts_at_us, ends_at_us, document FROM campaigns"
        " WHERE tenant_id = $1 AND status = 'open'",
        tenant_id,
    )
    campaigns = [
        ActiveCampaign(
            r["campaign_id"],
            r["metric"],
            int(r["starts_at_us"]),
            int(r["ends_at_us"]),
            _doc.decode(r["document"]).red_packet,
        )
        for r in rows
    ]
    _cache[tenant_id] = (time.monotonic() + CAMPAIGN_CACHE_SECONDS, campaigns)
    return campaigns


def invalidate_campaigns(tenant_id: str, key: str = "") -> None:
    """This process's copy only; writers call ``publish_invalidation("campaigns", ...)``."""
    _cache.clear() if tenant_id == ALL else _cache.pop(tenant_id, None)


register("campaigns", invalidate_campaigns)


def matching(
    campaigns: Iterable[ActiveCampaign], at_us: int, only: str | None, metrics: Sequence[str]
) -> list[ActiveCampaign]:
    return [
        c
        for c in campaigns
        if c.metric in metrics
        and c.starts_at_us <= at_us < c.ends_at_us
        and (only is None or c.campaign_id == only)
    ]


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def period_key(period: str, moment: datetime) -> str:
    if period == "campaign":
        return "campaign"
    if period == "day":
        return f"d:{moment:%Y-%m-%d}"
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"w:{year}-W{week:02d}"
    return f"m:{moment:%Y-%m}"


def period_keys(at_us: int, timezone: str) -> tuple[str, ...]:
    local = from_us(at_us).astimezone(_zone(timezone))
    return tuple(period_key(p, local) for p in ("campaign", "day", "week", "month"))


def _spread(
    campaigns: Iterable[ActiveCampaign],
    keys: tuple[str, ...],
    reached_us: int,
    changes: Mapping[str, Sequence[tuple[str, int]]],
) -> list[Increment]:
    out: list[Increment] = []
    for c in campaigns:
        for distributor, delta in changes.get(c.metric, ()):
            if delta:
                out.extend((c.campaign_id, k, distributor, delta, reached_us) for k in keys)
    return out


def invite_increments(
    campaigns: Iterable[ActiveCampaign], timezone: str, at_us: int, inviter: str
) -> list[Increment]:
    return _spread(campaigns, period_keys(at_us, timezone), at_us, {"invites": [(inviter, 1)]})


def order_increments(
    campaigns: Iterable[ActiveCampaign],
    timezone: str,
    paid_at_us: int,
    inviter: str | None,
    amount_fen: int,
    earned: Sequence[tuple[str, int]],
) -> list[Increment]:
    """``inviter`` is the buyer's own inviter (orders/gmv); ``earned`` who got commission."""
    bound = [(inviter, 1)] if inviter else []
    changes = {
        "orders": bound,
        "gmv": [(inviter, amount_fen)] if inviter else [],
        "commission": list(earned),
    }
    return _spread(campaigns, period_keys(paid_at_us, timezone), paid_at_us, changes)


def refund_increments(
    campaigns: Iterable[ActiveCampaign],
    timezone: str,
    paid_at_us: int,
    refund_us: int,
    inviter: str | None,
    refund_fen: int,
    fully_refunded: bool,
    reversed_fen: Sequence[tuple[str, int]],
) -> list[Increment]:
    """Undo what the order counted, in the periods the order counted in."""
    changes = {
        "orders": [(inviter, -1)] if inviter and fully_refunded else [],
        "gmv": [(inviter, -refund_fen)] if inviter else [],
        "commission": [(d, -amount) for d, amount in reversed_fen],
    }
    return _spread(campaigns, period_keys(paid_at_us, timezone), refund_us, changes)


def merge(increments: Iterable[Increment]) -> list[Increment]:
    """One change per (campaign, period, distributor): an upsert may touch a row once."""
    merged: dict[tuple[str, str, str], list[int]] = {}
    for campaign, key, distributor, delta, reached in increments:
        slot = merged.setdefault((campaign, key, distributor), [0, reached])
        slot[0] += delta
        slot[1] = max(slot[1], reached)
    return sorted((c, k, d, v[0], v[1]) for (c, k, d), v in merged.items() if v[0])


UPSERT_SQL = """
INSERT INTO leaderboard_scores (tenant_id, campaign_id, period_key, distributor_id, score,
                                reached_at_us)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, campaign_id, period_key, distributor_id) DO UPDATE
SET score = leaderboard_scores.score + excluded.score,
    reached_at_us = CASE WHEN excluded.reached_at_us > leaderboard_scores.reached_at_us
                         THEN excluded.reached_at_us ELSE leaderboard_scores.reached_at_us END
"""


async def apply_increments(tx: Connection, tenant_id: str, increments: Sequence[Increment]) -> None:
    """Write score changes in ``tx``; mirror them (Redis) once ``tx`` commits."""
    if not increments:
        return
    merged = merge(increments)
    await write_increments(tx, tenant_id, merged)
    await mirror_increments(tx, tenant_id, merged)


async def write_increments(tx: Connection, tenant_id: str, merged: Sequence[Increment]) -> None:
    """The database write alone (callers that mirror themselves)."""
    if merged:
        await tx.executemany(UPSERT_SQL, [(tenant_id, *inc) for inc in merged])


async def mirror_increments(db: Connection, tenant_id: str, merged: Sequence[Increment]) -> None:
    mirror = db.board_mirror
    if mirror is None or not merged:
        return
    if db.in_transaction:
        db.after_commit(lambda: mirror.apply(tenant_id, merged))
    else:
        await mirror.apply(tenant_id, merged)
