"""Team counts per level (1-3), maintained on every binding change instead of counted per read.

The *counted tree* is ``user_bindings.team_inviter_id``: a user's inviter while the binding is
active. ``team_counts`` holds, per user, how many users are exactly 1, 2 and 3 steps below them
in that tree, and every change of the tree is a *move* of one user with their subtree:

- binding a first-seen user: a move of a leaf (the inviter +1 at level 1, its inviter +1 at
  level 2, the next +1 at level 3);
- re-binding (bind mode ``last``, or after a lapse): the old ancestors lose, and the new ones
  gain, the moved user's subtree level by level (sizes 1, level1, level2 of the moved user);
- a binding's lapse (``expires_at_us`` passed): a move to no inviter. Lapses happen by the
  clock, not by a write, so they are applied when due: before a count is read, before a move,
  and by the reconciliation. A read that finds none due (one indexed probe) writes nothing.

Concurrency (PostgreSQL; SQLite serialises transactions): each tenant's counted tree has a
reader-writer lock, the transaction advisory lock ``(TREE_LOCK_CLASS, hashtext(tenant))``
(advisory locks live in shared memory: taking one writes no tuple, unlike a ``FOR SHARE`` row
lock, which on one hot row makes every binding write the row's header and create MultiXacts). A
move of a subtree or a lapse takes it exclusively (moves are serialised, and the chains they read
cannot change under them) and bumps the tenant's ``team_trees`` row; binding a new leaf takes it
shared. The one-statement first binding reads the inviter's chain in its snapshot, then takes the
shared lock, then checks that the ``team_trees`` row it sees has not been updated by a
transaction its snapshot does not see (the row's ``xmax``, read live): a move committed since
the snapshot fails the check, the statement binds nothing and the full path runs; a move that
starts later waits for it. A transaction holding the exclusive lock never waits for a binding
row (due lapses are taken ``SKIP LOCKED``; a binder holding such a row applies it itself), so a
binder that holds its user's row while it waits for the tree lock cannot deadlock with it.
Counter rows are written in user order, each connection in its own shard row (as the ledger
totals: a top distributor's new invitees do not queue on one row).
"""

from __future__ import annotations

from typing import Any

from server.db import Connection
from server.ledger.totals import PG_SHARD, with_shard

__all__ = [
    "LAPSES_DUE_SQL",
    "TREE_LOCK_CLASS",
    "add_counts",
    "PG_NEW_LEAF_COUNTS",
    "PG_NEW_LEAF_STEPS",
    "apply_lapses",
    "lock_tree",
    "move_user",
    "read_counts",
]

# Due lapses, oldest first (ix_bindings_lapse).
LAPSES_DUE_SQL = """
SELECT user_id FROM user_bindings
WHERE tenant_id = $1 AND team_inviter_id IS NOT NULL AND expires_at_us IS NOT NULL
  AND expires_at_us <= $2
ORDER BY expires_at_us LIMIT $3
"""

_COUNTS_SQL = """
SELECT COALESCE(SUM(c.level1), 0) AS l1, COALESCE(SUM(c.level2), 0) AS l2,
  COALESCE(SUM(c.level3), 0) AS l3,
  EXISTS (SELECT 1 FROM user_bindings b WHERE b.tenant_id = $1
          AND b.team_inviter_id IS NOT NULL AND b.expires_at_us IS NOT NULL
          AND b.expires_at_us <= $3) AS lapses_due
FROM team_counts c WHERE c.tenant_id = $1 AND c.user_id = $2
"""

_LAPSE_ROUNDS = 5
_ADD_SQL = """
INSERT INTO team_counts (tenant_id, user_id, shard, level1, level2, level3)
VALUES ($1, $2, {shard}, $3, $4, $5)
ON CONFLICT (tenant_id, user_id, shard) DO UPDATE SET
  level1 = team_counts.level1 + excluded.level1,
  level2 = team_counts.level2 + excluded.level2,
  level3 = team_counts.level3 + excluded.level3
"""

# The two-key form keeps these locks apart from single-key advisory locks and from the other
# classes (20: settlement approvals).
TREE_LOCK_CLASS = 21

# Steps of PostgreSQL's one-statement first binding (server.referrals.fast) with $1 tenant and
# $4 inviter: ``tch`` reads the inviter's counted chain in the statement's snapshot; ``tok``
# takes the tree lock shared and only then (a correlated subquery, so after the lock) reads the
# tenant's ``team_trees`` row: its ``xmax`` is set by a move that updated it, and a mover the
# snapshot does not see (running when it was taken, or since) means the chain may be stale:
# then ``tok`` is empty, nothing is bound and the full path runs. (A mover the snapshot does see
# as finished yet still left this version visible aborted: the version is current.) The
# 32-bit ``xmax`` is widened to the snapshot's epoch to ask ``pg_visible_in_snapshot``.
PG_NEW_LEAF_STEPS = f"""
tch AS (
  SELECT cb.team_inviter_id AS t1, pb.team_inviter_id AS t2
  FROM (SELECT 1) AS one
  LEFT JOIN user_bindings cb ON cb.tenant_id = $1 AND cb.user_id = $4
  LEFT JOIN user_bindings pb ON pb.tenant_id = $1 AND pb.user_id = cb.team_inviter_id
),
tlk AS MATERIALIZED (
  SELECT pg_advisory_xact_lock_shared({TREE_LOCK_CLASS}, hashtext($1))::text AS locked
),
tok AS (
  SELECT true AS ok FROM tlk
  WHERE (SELECT v.xmax = '0'::xid OR pg_visible_in_snapshot(GREATEST(1, s.top + ((
            (v.xmax::text::bigint - s.top) % 4294967296 + 6442450944) % 4294967296
            - 2147483648))::text::xid8, s.snap)
         FROM team_trees v,
           (SELECT pg_current_snapshot() AS snap,
                   pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS top) AS s
         WHERE v.tenant_id = $1 AND tlk.locked IS NOT NULL)
)"""
PG_NEW_LEAF_COUNTS = f"""
tc AS (
  INSERT INTO team_counts (tenant_id, user_id, shard, level1, level2, level3)
  SELECT $1, x.d, {PG_SHARD}, x.a, x.b, x.c
  FROM u CROSS JOIN tch
  CROSS JOIN LATERAL (VALUES ($4::text, 1, 0, 0), (tch.t1, 0, 1, 0), (tch.t2, 0, 0, 1))
    AS x(d, a, b, c)
  WHERE x.d IS NOT NULL ORDER BY x.d
  ON CONFLICT (tenant_id, user_id, shard) DO UPDATE SET
    level1 = team_counts.level1 + excluded.level1,
    level2 = team_counts.level2 + excluded.level2,
    level3 = team_counts.level3 + excluded.level3
  RETURNING 1
)"""


async def lock_tree(tx: Connection, tenant_id: str, *, exclusive: bool) -> None:
    """Take the tenant's tree lock for this transaction (PostgreSQL; SQLite serialises)."""
    if tx.engine != "postgres":
        return
    mode = "" if exclusive else "_shared"
    await tx.execute(
        f"SELECT pg_advisory_xact_lock{mode}($1, hashtext($2))", TREE_LOCK_CLASS, tenant_id
    )
    if exclusive:
        # Bumped under the exclusive lock only (no contention): a one-statement first binding
        # whose snapshot predates this commit sees this update in the row's xmax.
        await tx.execute(
            "INSERT INTO team_trees (tenant_id, version) VALUES ($1, 1)"
            " ON CONFLICT (tenant_id) DO UPDATE SET version = team_trees.version + 1",
            tenant_id,
        )
    else:  # the row the one-statement path checks; once per tenant, then a no-op probe
        await tx.execute(
            "INSERT INTO team_trees (tenant_id, version) VALUES ($1, 0)"
            " ON CONFLICT (tenant_id) DO NOTHING",
            tenant_id,
        )


async def _parent(tx: Connection, tenant_id: str, user_id: str) -> str | None:
    row = await tx.fetchrow(
        "SELECT team_inviter_id FROM user_bindings WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
    )
    return None if row is None else row[0]


async def _chain(tx: Connection, tenant_id: str, first: str | None) -> list[str]:
    """``first`` and its counted ancestors, 3 at most."""
    chain: list[str] = []
    node = first
    while node is not None and len(chain) < 3 and node not in chain:
        chain.append(node)
        if len(chain) < 3:
            node = await _parent(tx, tenant_id, node)
    return chain


async def move_user(
    tx: Connection, tenant_id: str, user_id: str, new_inviter: str | None, *, leaf: bool = False
) -> None:
    """Count ``user_id`` (with their subtree) under ``new_inviter`` (``None``: under nobody).
    Call inside the transaction that changes the binding, holding the user's row; ``leaf``
    when the user was first seen in this transaction (nobody can be under them yet)."""
    await lock_tree(tx, tenant_id, exclusive=not leaf)
    old_inviter = await _parent(tx, tenant_id, user_id)
    if old_inviter == new_inviter:
        return
    sizes_row = await tx.fetchrow(
        "SELECT COALESCE(SUM(level1), 0), COALESCE(SUM(level2), 0) FROM team_counts"
        " WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
    )
    sizes = [1, int(sizes_row[0]), int(sizes_row[1])] if sizes_row is not None else [1, 0, 0]
    deltas: dict[str, list[int]] = {}
    for sign, chain in (
        (-1, await _chain(tx, tenant_id, old_inviter)),
        (1, await _chain(tx, tenant_id, new_inviter)),
    ):
        for depth, ancestor in enumerate(chain):  # the user is depth + 1 below the ancestor
            row = deltas.setdefault(ancestor, [0, 0, 0])
            for level in range(depth, 3):
                row[level] += sign * sizes[level - depth]
    await tx.execute(
        "UPDATE user_bindings SET team_inviter_id = $3 WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
        new_inviter,
    )
    await add_counts(tx, tenant_id, deltas)


async def add_counts(tx: Connection, tenant_id: str, deltas: dict[str, list[int]]) -> None:
    """Add ``[level1, level2, level3]`` to each user's counts (rows in user order)."""
    changed = [(tenant_id, d, *v) for d, v in sorted(deltas.items()) if any(v)]
    if changed:
        await tx.executemany(with_shard(tx, _ADD_SQL), changed)


async def apply_lapses(tx: Connection, tenant_id: str, now_us: int, batch: int = 1000) -> int:
    """Uncount every binding whose validity ended by ``now_us`` (but those another transaction
    holds: its binder applies them); return how many. Call inside a transaction."""
    await lock_tree(tx, tenant_id, exclusive=True)
    sql = LAPSES_DUE_SQL + (" FOR UPDATE SKIP LOCKED" if tx.engine == "postgres" else "")
    applied = 0
    while True:
        rows = await tx.fetch(sql, tenant_id, now_us, batch)
        for r in rows:
            await move_user(tx, tenant_id, r[0], None)
        applied += len(rows)
        if len(rows) < batch:
            return applied


async def read_counts(db: Any, tenant_id: str, user_id: str, now_us: int) -> tuple[int, int, int]:
    """The user's team sizes at levels 1-3 at ``now_us``: their counters, after applying any
    lapse that is due (usually none: one indexed probe)."""
    row = await db.fetchrow(_COUNTS_SQL, tenant_id, user_id, now_us)
    for _ in range(_LAPSE_ROUNDS):  # more than one only when a binder held a lapsed row
        if row is None or not row["lapses_due"]:
            break
        if db.in_transaction:
            await apply_lapses(db, tenant_id, now_us)
        else:
            async with db.transaction() as tx:
                await apply_lapses(tx, tenant_id, now_us)
        row = await db.fetchrow(_COUNTS_SQL, tenant_id, user_id, now_us)
    if row is None:  # an aggregate without GROUP BY always returns one row
        raise RuntimeError("invariant broken: counts row is None")
    return int(row["l1"]), int(row["l2"]), int(row["l3"])
