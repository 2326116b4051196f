"""Finding distributors by nickname: by prefix through an index, or containing a text within a
bounded window, both paged with the API's opaque cursors.

- ``prefix``: a range scan of ``ix_distributors_nickname (tenant_id, nickname, distributor_id)``
  in bytewise order (``COLLATE "C"`` on PostgreSQL, SQLite's default BINARY), so ``小`` finds
  ``小美`` and ``小明`` and nothing else, in nickname order; the cursor holds (nickname, id).
- ``contains``: no index serves a substring on both engines, so each request examines at most
  ``SCAN_WINDOW`` distributors (by id, from the cursor) and returns the matches among them;
  a page may hold fewer than ``limit`` matches and still carry a ``next_cursor`` (search on).
  The work per request is bounded whatever the tenant's size.

Matching is exact on characters (case-sensitive), the same on both engines.
"""

from __future__ import annotations

from typing import Any, Literal

from server.common import decode_cursor, encode_cursor, from_us
from server.db import Connection
from server.errors import InvalidInput
from server.referrals.schemas import DistributorPage, DistributorSummary

__all__ = ["MAX_QUERY_CHARS", "SCAN_WINDOW", "NicknameMatch", "search_distributors"]

NicknameMatch = Literal["prefix", "contains"]
MAX_QUERY_CHARS = 64
SCAN_WINDOW = 5000
_ABOVE_ALL = "\U0010ffff"  # sorts after every other character in bytewise (UTF-8) order
_COLUMNS = "distributor_id, nickname, tier, status, updated_at_us, recruitment"


def _summary(r: Any) -> DistributorSummary:
    return DistributorSummary(
        distributor_id=r[0], nickname=r[1], tier=r[2], status=r[3],
        updated_at=from_us(int(r[4])).isoformat(), recruitment=r[5],
    )  # fmt: skip


async def search_distributors(
    db: Connection,
    tenant_id: str,
    nickname: str,
    match: NicknameMatch,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> DistributorPage:
    """The tenant's distributors whose nickname starts with (or contains) ``nickname``."""
    if not 1 <= len(nickname) <= MAX_QUERY_CHARS or "\x00" in nickname:
        raise InvalidInput("nickname", f"must be 1-{MAX_QUERY_CHARS} characters")
    if match == "prefix":
        return await _by_prefix(db, tenant_id, nickname, limit, cursor, status or "")
    return await _containing(db, tenant_id, nickname, limit, cursor, status or "")


async def _by_prefix(
    db: Connection, tenant_id: str, prefix: str, limit: int, cursor: str | None, status: str
) -> DistributorPage:
    after = decode_cursor(cursor, str, str) or [prefix, ""]
    c = ' COLLATE "C"' if db.engine == "postgres" else ""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM distributors WHERE tenant_id = $1"
        f" AND nickname{c} >= $2 AND nickname{c} < $3"
        f" AND (nickname{c} > $4 OR (nickname = $4 AND distributor_id > $5))"
        " AND ($6 = '' OR status = $6)"
        f" ORDER BY nickname{c}, distributor_id LIMIT $7",
        tenant_id, prefix, prefix + _ABOVE_ALL, str(after[0]), str(after[1]), status, limit + 1,
    )  # fmt: skip
    items = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = items[-1] if items else None
    return DistributorPage(
        items, encode_cursor(last.nickname, last.distributor_id) if more and last else None
    )


async def _containing(
    db: Connection, tenant_id: str, text: str, limit: int, cursor: str | None, status: str
) -> DistributorPage:
    after = str((decode_cursor(cursor, str) or [""])[0])
    found = "strpos(nickname, $3) > 0" if db.engine == "postgres" else "instr(nickname, $3) > 0"
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS} FROM distributors"
        " WHERE tenant_id = $1 AND distributor_id > $2 ORDER BY distributor_id LIMIT $4) w"
        f" WHERE {found} AND ($5 = '' OR status = $5) ORDER BY distributor_id LIMIT $6",
        tenant_id, after, text, SCAN_WINDOW, status, limit + 1,
    )  # fmt: skip
    items = [_summary(r) for r in rows[:limit]]
    if len(rows) > limit:
        return DistributorPage(items, encode_cursor(items[-1].distributor_id))
    # Fewer matches than a page: the window's end is where the next search starts (if any).
    window_end = await db.fetchval(
        "SELECT distributor_id FROM distributors WHERE tenant_id = $1 AND distributor_id > $2"
        " ORDER BY distributor_id LIMIT 1 OFFSET $3",
        tenant_id, after, SCAN_WINDOW - 1,
    )  # fmt: skip
    return DistributorPage(items, encode_cursor(window_end) if window_end is not None else None)
