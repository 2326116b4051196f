"""The referral graph in SQL: one parent pointer per user, read in bounded, indexed steps.

``user_bindings`` holds each user's current inviter and when that binding lapses. The upline
of a user (nearest first, at most 3 levels by law) is one statement of three primary-key
probes, always current after any re-binding; a cycle check walks the *ancestors* of the
would-be inviter (bounded by the depth of the tree above it), never the subtree below.
A binding counts at a moment ``t`` when :func:`server.queries.binding_active` holds.
"""

from __future__ import annotations

from server.db import Connection
from server.queries import binding_active, upline_joins

__all__ = ["is_ancestor", "upline_of"]

UPLINE_SQL = f"""
SELECT b1.inviter_id AS l1, b2.inviter_id AS l2, b3.inviter_id AS l3, b1.event_id AS event_id
FROM (SELECT 1) AS one
{upline_joins("$2", "$3")}
WHERE b1.user_id IS NOT NULL
"""

# Ancestors of $2 (following active bindings) that equal $4; depth-capped as a backstop.
ANCESTOR_SQL = f"""
WITH RECURSIVE chain(uid, depth) AS (
  SELECT b.inviter_id, 1 FROM user_bindings b
  WHERE b.tenant_id = $1 AND b.user_id = $2 AND {binding_active("b", "$3")}
  UNION ALL
  SELECT b.inviter_id, c.depth + 1 FROM chain c
  JOIN user_bindings b ON b.tenant_id = $1 AND b.user_id = c.uid
  WHERE {binding_active("b", "$3")} AND c.depth < 100000
)
SELECT 1 FROM chain WHERE uid = $4 LIMIT 1
"""


async def upline_of(
    db: Connection, tenant_id: str, user_id: str, at_us: int, depth: int = 3
) -> tuple[list[str], int | None]:
    """The user's active upline at ``at_us`` (nearest first, ``depth`` levels at most) and
    the attribution event of the user's own binding."""
    row = await db.fetchrow(UPLINE_SQL, tenant_id, user_id, at_us)
    if row is None:
        return [], None
    chain: list[str] = []
    for level in ("l1", "l2", "l3")[:depth]:
        if row[level] is None:
            break
        chain.append(row[level])
    return chain, row["event_id"]


async def is_ancestor(
    db: Connection, tenant_id: str, candidate: str, of_user: str, at_us: int
) -> bool:
    """Whether ``candidate`` is above ``of_user`` in the active referral tree at ``at_us``."""
    return await db.fetchval(ANCESTOR_SQL, tenant_id, of_user, at_us, candidate) is not None
