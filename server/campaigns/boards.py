"""Leaderboard reads behind one interface: the database (default) or Redis sorted sets.

Order everywhere (DOMAIN.md): score desc, then the earliest time the score was reached, then
distributor id. Held or frozen distributors are left out.

Database: the top K is an index scan in that order; a rank is the number of members ordered
before you — three index range counts, never a window function over the board.
Redis (``LIEBIAN_REDIS_URL``): a mirror of the database rows, updated after each commit; see
:mod:`server.campaigns.redis_board`.
"""

from __future__ import annotations

from typing import Protocol

from server.db import Connection

__all__ = ["Board", "DbBoard", "Standing"]

# (distributor_id, score, reached_at_us)
Standing = tuple[str, int, int]

_ACTIVE = (
    " AND NOT EXISTS (SELECT 1 FROM distributors d WHERE d.tenant_id = s.tenant_id"
    " AND d.distributor_id = s.distributor_id AND d.status <> 'active')"
)
_BOARD = "s.tenant_id = $1 AND s.campaign_id = $2 AND s.period_key = $3"

TOP_SQL = (
    f"SELECT s.distributor_id, s.score, s.reached_at_us FROM leaderboard_scores s WHERE {_BOARD}"
    f"{_ACTIVE} ORDER BY s.score DESC, s.reached_at_us, s.distributor_id LIMIT $4"
)
OWN_SQL = (
    "SELECT s.score, s.reached_at_us FROM leaderboard_scores s"
    f" WHERE {_BOARD} AND s.distributor_id = $4"
)
# Members ordered before (score, reached, id) = ($4, $5, $6), as three index ranges; the held
# ones among them are few and are subtracted by probing from the distributors side.
RANK_SQL = f"""
SELECT
  (SELECT COUNT(*) FROM leaderboard_scores s WHERE {_BOARD} AND s.score > $4)
+ (SELECT COUNT(*) FROM leaderboard_scores s WHERE {_BOARD} AND s.score = $4
     AND s.reached_at_us < $5)
+ (SELECT COUNT(*) FROM leaderboard_scores s WHERE {_BOARD} AND s.score = $4
     AND s.reached_at_us = $5 AND s.distributor_id < $6)
- (SELECT COUNT(*) FROM distributors d JOIN leaderboard_scores s
     ON s.tenant_id = d.tenant_id AND s.distributor_id = d.distributor_id
     AND s.campaign_id = $2 AND s.period_key = $3
   WHERE d.tenant_id = $1 AND d.status <> 'active'
     AND (s.score > $4 OR (s.score = $4 AND (s.reached_at_us < $5
          OR (s.reached_at_us = $5 AND s.distributor_id < $6)))))
"""
ABOVE_SQL = (
    f"SELECT s.distributor_id, s.score, s.reached_at_us FROM leaderboard_scores s WHERE {_BOARD}"
    " AND (s.score > $4 OR (s.score = $4 AND (s.reached_at_us < $5"
    " OR (s.reached_at_us = $5 AND s.distributor_id < $6))))"
    f"{_ACTIVE} ORDER BY s.score, s.reached_at_us DESC, s.distributor_id DESC LIMIT $7"
)
BELOW_SQL = (
    f"SELECT s.distributor_id, s.score, s.reached_at_us FROM leaderboard_scores s WHERE {_BOARD}"
    " AND (s.score < $4 OR (s.score = $4 AND (s.reached_at_us > $5"
    " OR (s.reached_at_us = $5 AND s.distributor_id > $6))))"
    f"{_ACTIVE} ORDER BY s.score DESC, s.reached_at_us, s.distributor_id LIMIT $7"
)


class Board(Protocol):
    async def top(
        self, tenant_id: str, campaign_id: str, key: str, limit: int
    ) -> list[Standing]: ...

    async def rank(
        self, tenant_id: str, campaign_id: str, key: str, distributor_id: str, around: int
    ) -> tuple[int | None, int, list[Standing], list[Standing]]:
        """(rank or None if absent/held, score, ``around`` above nearest-last, below)."""
        ...


class DbBoard:
    def __init__(self, db: Connection) -> None:
        self.db = db

    async def top(self, tenant_id: str, campaign_id: str, key: str, limit: int) -> list[Standing]:
        rows = await self.db.fetch(TOP_SQL, tenant_id, campaign_id, key, limit)
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    async def rank(
        self, tenant_id: str, campaign_id: str, key: str, distributor_id: str, around: int
    ) -> tuple[int | None, int, list[Standing], list[Standing]]:
        own = await self.db.fetchrow(OWN_SQL, tenant_id, campaign_id, key, distributor_id)
        status = await self.db.fetchval(
            "SELECT status FROM distributors WHERE tenant_id = $1 AND distributor_id = $2",
            tenant_id,
            distributor_id,
        )
        if own is None or status != "active":
            return None, 0 if own is None else int(own[0]), [], []
        score, reached = int(own[0]), int(own[1])
        args = (tenant_id, campaign_id, key, score, reached, distributor_id)
        before = int(await self.db.fetchval(RANK_SQL, *args))
        above = await self.db.fetch(ABOVE_SQL, *args, around) if around else []
        below = await self.db.fetch(BELOW_SQL, *args, around) if around else []
        return (
            before + 1,
            score,
            [(r[0], int(r[1]), int(r[2])) for r in reversed(above)],
            [(r[0], int(r[1]), int(r[2])) for r in below],
        )
