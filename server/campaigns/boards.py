"""Leaderboard reads behind one interface: the database (default) or Redis sorted sets.

Order everywhere (docs/domain.md): score desc, then the earliest time the score was reached, then
distributor id. Held or frozen distributors are left out.

Database: the top K is an index scan in that order; a rank is the number of members ordered
before you — index range counts, never a window function over the board. Counting is linear in
the rank (about 0.2 µs a member on PostgreSQL), so on boards of ``SNAPSHOT_MIN_MEMBERS`` or more
the members with a higher score are counted in a per-process sorted snapshot of the board's
scores (bisect), refreshed in the background when older than ``SNAPSHOT_SECONDS``; the ties at
your own (live) score are still counted in the index. A big board's rank may therefore trail
other members' changes by a few seconds; small boards are exact and live.
Redis (``LIEBIAN_REDIS_URL``): a mirror of the database rows, updated after each commit; see
:mod:`server.campaigns.redis_board`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from bisect import bisect_right
from typing import Protocol

from server.db import Connection

__all__ = ["Board", "DbBoard", "Standing"]

# (distributor_id, score, reached_at_us)
Standing = tuple[str, int, int]

_BOARD = "tenant_id = $1 AND campaign_id = $2 AND period_key = $3"
_ORDER = "score DESC, reached_at_us, distributor_id"

TOP_SQL = (
    f"SELECT distributor_id, score, reached_at_us FROM leaderboard_scores WHERE {_BOARD}"
    f" ORDER BY {_ORDER} LIMIT $4"
)
OWN_SQL = (
    f"SELECT score, reached_at_us FROM leaderboard_scores WHERE {_BOARD} AND distributor_id = $4"
)
# Held and frozen distributors are few: read them through the (tenant_id, status) index and
# leave them out in Python, so every board query below stays a plain range on the board index.
HELD_SQL = "SELECT distributor_id FROM distributors WHERE tenant_id = $1 AND status <> 'active'"
# The held members' own rows, driven from the partial index and probing the board's unique key.
HELD_ROWS_SQL = (
    "SELECT s.distributor_id, s.score, s.reached_at_us FROM distributors d"
    " CROSS JOIN leaderboard_scores s"
    " WHERE d.tenant_id = $1 AND d.status <> 'active' AND s.tenant_id = d.tenant_id"
    " AND s.campaign_id = $2 AND s.period_key = $3 AND s.distributor_id = d.distributor_id"
)
# Members ordered before (score, reached, id) = ($4, $5, $6): index ranges.
HIGHER_SQL = f"SELECT COUNT(*) FROM leaderboard_scores WHERE {_BOARD} AND score > $4"
TIED_BEFORE_SQL = f"""
SELECT
  (SELECT COUNT(*) FROM leaderboard_scores WHERE {_BOARD} AND score = $4 AND reached_at_us < $5)
+ (SELECT COUNT(*) FROM leaderboard_scores WHERE {_BOARD} AND score = $4 AND reached_at_us = $5
     AND distributor_id < $6)
"""
SCORES_SQL = f"SELECT score FROM leaderboard_scores WHERE {_BOARD} ORDER BY score"
SNAPSHOT_MIN_MEMBERS = 20_000
_log = logging.getLogger("liebian.leaderboards")
SNAPSHOT_SECONDS = 2.0
# The neighbours: the tied members next to you and the nearest strict scores, each an index
# range read in index order (an OR of the two would make the planner scan and filter).
_COLS = "distributor_id, score, reached_at_us"
ABOVE_SQL = (
    f"SELECT * FROM (SELECT {_COLS} FROM leaderboard_scores WHERE {_BOARD} AND score = $4"
    " AND (reached_at_us < $5 OR (reached_at_us = $5 AND distributor_id < $6))"
    " ORDER BY reached_at_us DESC, distributor_id DESC LIMIT $7) AS tied"
    f" UNION ALL SELECT * FROM (SELECT {_COLS} FROM leaderboard_scores WHERE {_BOARD}"
    " AND score > $4 ORDER BY score, reached_at_us DESC, distributor_id DESC LIMIT $7) AS higher"
)
BELOW_SQL = (
    f"SELECT * FROM (SELECT {_COLS} FROM leaderboard_scores WHERE {_BOARD} AND score = $4"
    " AND (reached_at_us > $5 OR (reached_at_us = $5 AND distributor_id > $6))"
    " ORDER BY reached_at_us, distributor_id LIMIT $7) AS tied"
    f" UNION ALL SELECT * FROM (SELECT {_COLS} FROM leaderboard_scores WHERE {_BOARD}"
    f" AND score < $4 ORDER BY {_ORDER} LIMIT $7) AS lower"
)


def _key(s: Standing) -> tuple[int, int, str]:
    return (-s[1], s[2], s[0])


class Board(Protocol):
    async def top(
        self, tenant_id: str, campaign_id: str, key: str, limit: int
    ) -> list[Standing]: ...

    async def rank(
        self, tenant_id: str, campaign_id: str, key: str, distributor_id: str, around: int
    ) -> tuple[int | None, int, list[Standing], list[Standing]]:
        """(rank or None if absent/held, score, ``around`` above nearest-last, below)."""
        ...


class _Snapshot:
    """A board's scores, ascending, as of ``taken``; ``None`` scores: the board is small."""

    __slots__ = ("refreshing", "scores", "taken")

    def __init__(self, scores: array[int] | None, taken: float) -> None:
        self.scores = scores
        self.taken = taken
        self.refreshing = False


class DbBoard:
    def __init__(self, db: Connection, snapshot_min_members: int | None = None) -> None:
        self.db = db
        if snapshot_min_members is None:
            # SQLite counts fast enough live, and its snapshot scan would block the event loop.
            snapshot_min_members = SNAPSHOT_MIN_MEMBERS if db.engine == "postgres" else 2**62
        self.snapshot_min_members = snapshot_min_members
        self._snapshots: dict[tuple[str, str, str], _Snapshot] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def _refresh(self, board: tuple[str, str, str]) -> None:
        try:
            rows = await self.db.fetch_values(SCORES_SQL, *board)
        except Exception:  # a background refresh must never take the app down: count live
            _log.warning("leaderboard snapshot refresh failed", exc_info=True)
            self._snapshots.pop(board, None)
            return
        big = len(rows) >= self.snapshot_min_members
        self._snapshots[board] = _Snapshot(
            array("q", (int(r[0]) for r in rows)) if big else None, time.monotonic()
        )
        while len(self._snapshots) > 64:
            self._snapshots.pop(next(iter(self._snapshots)))

    def _schedule_refresh(self, board: tuple[str, str, str], snap: _Snapshot | None) -> None:
        if self.snapshot_min_members >= 2**62:
            return  # snapshots are off (SQLite)
        if snap is None:
            # A placeholder: one refresh at a time per board, live counts until it lands.
            snap = self._snapshots[board] = _Snapshot(None, 0.0)
        elif snap.refreshing or time.monotonic() - snap.taken < SNAPSHOT_SECONDS:
            return
        snap.refreshing = True
        task = asyncio.create_task(self._refresh(board))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel background refreshes (before the store closes)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _higher(self, board: tuple[str, str, str], score: int) -> int:
        """How many members have a score above ``score``."""
        snap = self._snapshots.get(board)
        self._schedule_refresh(board, snap)
        if snap is not None and snap.scores is not None:
            return len(snap.scores) - bisect_right(snap.scores, score)
        return int(await self.db.fetchval(HIGHER_SQL, *board, score))

    async def _held(self, tenant_id: str) -> set[str]:
        return {r[0] for r in await self.db.fetch(HELD_SQL, tenant_id)}

    async def _rows(self, sql: str, *args: object) -> list[Standing]:
        return [(r[0], int(r[1]), int(r[2])) for r in await self.db.fetch(sql, *args)]

    async def top(self, tenant_id: str, campaign_id: str, key: str, limit: int) -> list[Standing]:
        held = await self._held(tenant_id)
        rows = await self._rows(TOP_SQL, tenant_id, campaign_id, key, limit + len(held))
        return [r for r in rows if r[0] not in held][:limit]

    async def rank(
        self, tenant_id: str, campaign_id: str, key: str, distributor_id: str, around: int
    ) -> tuple[int | None, int, list[Standing], list[Standing]]:
        held = await self._held(tenant_id)
        own = await self.db.fetchrow(OWN_SQL, tenant_id, campaign_id, key, distributor_id)
        if own is None or distributor_id in held:
            return None, 0 if own is None else int(own[0]), [], []
        mine: Standing = (distributor_id, int(own[0]), int(own[1]))
        args = (tenant_id, campaign_id, key, mine[1], mine[2], distributor_id)
        before = await self._higher((tenant_id, campaign_id, key), mine[1])
        before += int(await self.db.fetchval(TIED_BEFORE_SQL, *args))
        if held:
            held_rows = await self._rows(HELD_ROWS_SQL, tenant_id, campaign_id, key)
            before -= sum(1 for r in held_rows if _key(r) < _key(mine))
        above: list[Standing] = []
        below: list[Standing] = []
        if around:
            extra = around + len(held)
            above = [r for r in await self._rows(ABOVE_SQL, *args, extra) if r[0] not in held]
            below = [r for r in await self._rows(BELOW_SQL, *args, extra) if r[0] not in held]
            above = sorted(above, key=_key)[-around:]
            below = sorted(below, key=_key)[:around]
        return before + 1, mine[1], above, below
