"""Leaderboard views: top K with nicknames, and a distributor's own rank with neighbours."""

from __future__ import annotations

from datetime import datetime

from rewards.prizes import PrizeTier, award_top_n
from rewards.ranking import Ranked
from server.campaigns.boards import Board, Standing
from server.campaigns.schemas import Award, Leaderboard, LeaderboardEntry, OwnRank, Period
from server.campaigns.scores import _zone, period_key
from server.campaigns.service import campaign_row, get_campaign
from server.common import from_us, now_us, to_us
from server.db import Connection
from server.errors import NotFound
from server.program.schemas import Program

__all__ = ["Leaderboards", "board_key", "preview_awards"]


def board_key(period: Period, at: datetime | None, program: Program) -> str:
    moment = from_us(to_us(at, "at") if at else now_us()).astimezone(_zone(program.timezone))
    return period_key(period, moment)


async def _nicknames(db: Connection, tenant_id: str, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    marks = ", ".join(f"${n}" for n in range(2, len(ids) + 2))
    rows = await db.fetch(
        f"SELECT distributor_id, nickname FROM distributors WHERE tenant_id = $1"
        f" AND distributor_id IN ({marks})",
        tenant_id,
        *ids,
    )
    return {r[0]: r[1] for r in rows}


def _entries(
    standings: list[Standing], first_rank: int, names: dict[str, str]
) -> list[LeaderboardEntry]:
    return [
        LeaderboardEntry(rank=first_rank + n, distributor_id=d, nickname=names.get(d, d), score=s)
        for n, (d, s, _) in enumerate(standings)
    ]


class Leaderboards:
    """A tenant's leaderboards, read from its board store (Redis sorted sets or the database)
    for the period that holds ``at`` (now by default) in the program's time zone."""

    __slots__ = ("board", "db", "program", "tenant_id")

    def __init__(self, db: Connection, board: Board, tenant_id: str, program: Program) -> None:
        self.db = db
        self.board = board
        self.tenant_id = tenant_id
        self.program = program

    async def top(
        self, campaign_id: str, period: Period, at: datetime | None, limit: int
    ) -> Leaderboard:
        """The first ``limit`` standings, with nicknames (404 for an unknown campaign)."""
        db, tenant_id = self.db, self.tenant_id
        row = await campaign_row(db, tenant_id, campaign_id)
        key = board_key(period, at, self.program)
        standings = await self.board.top(tenant_id, campaign_id, key, limit)
        names = await _nicknames(db, tenant_id, [s[0] for s in standings])
        return Leaderboard(
            campaign_id=campaign_id,
            period=period,
            period_key=key,
            metric=row["metric"],
            entries=_entries(standings, 1, names),
        )

    async def rank(
        self,
        campaign_id: str,
        distributor_id: str,
        period: Period,
        at: datetime | None,
        around: int,
    ) -> OwnRank:
        """The distributor's rank and ``around`` neighbours on each side (404 for an unknown
        campaign or distributor)."""
        db, tenant_id = self.db, self.tenant_id
        await campaign_row(db, tenant_id, campaign_id)
        exists = await db.fetchval(
            "SELECT 1 FROM distributors WHERE tenant_id = $1 AND distributor_id = $2",
            tenant_id,
            distributor_id,
        )
        if exists is None:
            raise NotFound(f"distributor {distributor_id!r} does not exist")
        key = board_key(period, at, self.program)
        rank, score, above, below = await self.board.rank(
            tenant_id, campaign_id, key, distributor_id, around
        )
        names = await _nicknames(db, tenant_id, [s[0] for s in above + below])
        return OwnRank(
            distributor_id=distributor_id,
            rank=rank,
            score=score,
            period_key=key,
            above=_entries(above, (rank or 0) - len(above), names) if rank else [],
            below=_entries(below, (rank or 0) + 1, names) if rank else [],
        )


async def preview_awards(
    db: Connection, board: Board, tenant_id: str, program: Program, campaign_id: str
) -> list[Award]:
    """The TOP-N prizes closing now would award, on the live board (nothing is written).

    Same ordering and ``award_top_n`` as closing; pool splits are drawn only at close.
    """
    campaign = await get_campaign(db, tenant_id, campaign_id)
    if not campaign.prizes:
        return []
    deepest = min(max(p.rank_to for p in campaign.prizes), 500)
    key = board_key("campaign", None, program)
    standings = await board.top(tenant_id, campaign_id, key, deepest)
    ranked = [Ranked(n, d, s, at) for n, (d, s, at) in enumerate(standings, 1)]
    tiers = [PrizeTier(p.rank_from, p.rank_to, p.amount_fen) for p in campaign.prizes]
    return [
        Award(a.distributor_id, a.rank, a.amount_fen, a.kind)
        for a in award_top_n(ranked, tiers, campaign.min_score or 0)
    ]
