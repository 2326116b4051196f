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

Team pages at levels 2 and 3 read ``team_ancestors``: per user, its 2nd and 3rd counted
ancestors (the inviter's inviter, and the next) and its binding time, on partial indexes
``(tenant, ancestor2 | ancestor3, bound_at_us, user_id)``. A move sets the moved user's row,
its direct invitees' (their 2nd and 3rd) and their invitees' (their 3rd): the moved subtree's
first two levels, as its counts. A new leaf inserts its row from the chain it is counted under
(in the one-statement binding, the step ``ta``). The rows are a table of their own, not columns
of the bindings, so a move under the exclusive tree lock never waits for a binding row (a binder
may hold its own while it waits for the tree lock); only tree-lock holders write them.
"""

from __future__ import annotations

from typing import Any

from server.db import Connection
from server.ledger.totals import PG_SHARD, with_shard

__all__ = [
    "LAPSES_DUE_SQL",
    "apply_due_lapses",
    "TREE_LOCK_CLASS",
    "add_counts",
    "add_leaf_ancestors",
    "PG_NEW_LEAF_COUNTS",
    "PG_NEW_LEAF_STEPS",
    "PG_TREE_GUARD",
    "COUNTS_ADD",
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
# How every write of team counts adds to a (user, shard) row that exists.
COUNTS_ADD = """ON CONFLICT (tenant_id, user_id, shard) DO UPDATE SET
  level1 = team_counts.level1 + excluded.level1,
  level2 = team_counts.level2 + excluded.level2,
  level3 = team_counts.level3 + excluded.level3"""
_ADD_SQL = f"""
INSERT INTO team_counts (tenant_id, user_id, shard, level1, level2, level3)
VALUES ($1, $2, {{shard}}, $3, $4, $5)
{COUNTS_ADD}
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
PG_TREE_GUARD = f"""
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
PG_NEW_LEAF_STEPS = f"""
tch AS (
  SELECT cb.team_inviter_id AS t1, pb.team_inviter_id AS t2
  FROM (SELECT 1) AS one
  LEFT JOIN user_bindings cb ON cb.tenant_id = $1 AND cb.user_id = $4
  LEFT JOIN user_bindings pb ON pb.tenant_id = $1 AND pb.user_id = cb.team_inviter_id
),{PG_TREE_GUARD}"""
PG_NEW_LEAF_COUNTS = f"""
tc AS (
  INSERT INTO team_counts (tenant_id, user_id, shard, level1, level2, level3)
  SELECT $1, x.d, {PG_SHARD}, x.a, x.b, x.c
  FROM u CROSS JOIN tch
  CROSS JOIN LATERAL (VALUES ($4::text, 1, 0, 0), (tch.t1, 0, 1, 0), (tch.t2, 0, 0, 1))
    AS x(d, a, b, c)
  WHERE x.d IS NOT NULL ORDER BY x.d
  {COUNTS_ADD}
  RETURNING 1
),
ta AS (
  INSERT INTO team_ancestors (tenant_id, user_id, ancestor2, ancestor3, bound_at_us)
  SELECT $1, $2::text, tch.t1, tch.t2, $3::bigint FROM u CROSS JOIN tch WHERE tch.t1 IS NOT NULL
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


_UPSERT_ANCESTORS = """
INSERT INTO team_ancestors (tenant_id, user_id, ancestor2, ancestor3, bound_at_us)
SELECT b.tenant_id, b.user_id, $3, $4, b.bound_at_us FROM user_bindings b
WHERE b.tenant_id = $1 AND {where}
ON CONFLICT (tenant_id, user_id) DO UPDATE SET ancestor2 = excluded.ancestor2,
  ancestor3 = excluded.ancestor3, bound_at_us = excluded.bound_at_us
"""
_OWN = _UPSERT_ANCESTORS.format(where="b.user_id = $2")
_CHILDREN = _UPSERT_ANCESTORS.format(where="b.team_inviter_id = $2")


async def add_leaf_ancestors(
    tx: Connection, tenant_id: str, user_id: str, chain: list[str], bound_at_us: int
) -> None:
    """A new leaf counted under ``chain`` (its inviter, then that one's counted ancestors):
    its ``team_ancestors`` row, when it has a 2nd ancestor."""
    if len(chain) > 1:
        await tx.execute(
            "INSERT INTO team_ancestors (tenant_id, user_id, ancestor2, ancestor3, bound_at_us)"
            " VALUES ($1, $2, $3, $4, $5)",
            tenant_id,
            user_id,
            chain[1],
            chain[2] if len(chain) > 2 else None,
            bound_at_us,
        )


async def _set_ancestors(
    tx: Connection, tenant_id: str, user_id: str, chain: list[str | None], *, leaf: bool
) -> None:
    """The user is counted under ``chain`` (its inviter and their two ancestors): the user's
    row takes the last two as its 2nd and 3rd ancestors, its direct invitees' rows the first
    two, their invitees' rows the first as 3rd (a move touches the moved subtree's first two
    levels; a leaf has none). A row exists only with a 2nd ancestor."""
    first, second, third = chain
    if second is None:
        await tx.execute(
            "DELETE FROM team_ancestors WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id
        )
    else:
        await tx.execute(_OWN, tenant_id, user_id, second, third)
    if leaf:
        return
    if first is None:
        await tx.execute(
            "DELETE FROM team_ancestors WHERE tenant_id = $1 AND user_id IN (SELECT b.user_id"
            " FROM user_bindings b WHERE b.tenant_id = $1 AND b.team_inviter_id = $2)",
            tenant_id,
            user_id,
        )
    else:
        await tx.execute(_CHILDREN, tenant_id, user_id, first, second)
    await tx.execute(
        "UPDATE team_ancestors SET ancestor3 = $3 WHERE tenant_id = $1 AND ancestor2 = $2",
        tenant_id,
        user_id,
        first,
    )


async def move_user(
    tx: Connection, tenant_id: str, user_id: str, new_inviter: str | None, *, leaf: bool = False
) -> None:
    """Count ``user_id`` (with their subtree) under ``new_inviter`` (``None``: under nobody).
    Call inside the transaction that changes the binding, holding the user's row; ``leaf``
    when the user was first seen in this transaction (nobody can be under them yet)."""
    await lock_tree(tx, tenant_id, exclusive=not leaf)
    old_inviter = await _parent(tx, tenant_id, user_id)
    if old_inviter == new_inviter:  # bound again under the same inviter: a new binding time
        await tx.execute(
            "UPDATE team_ancestors SET bound_at_us = (SELECT b.bound_at_us FROM user_bindings b"
            " WHERE b.tenant_id = $1 AND b.user_id = $2) WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
        )
        return
    sizes_row = await tx.fetchrow(
        "SELECT COALESCE(SUM(level1), 0), COALESCE(SUM(level2), 0) FROM team_counts"
        " WHERE tenant_id = $1 AND user_id = $2",
        tenant_id,
        user_id,
    )
    sizes = [1, int(sizes_row[0]), int(sizes_row[1])] if sizes_row is not None else [1, 0, 0]
    new_chain = await _chain(tx, tenant_id, new_inviter)
    deltas: dict[str, list[int]] = {}
    for sign, chain in ((-1, await _chain(tx, tenant_id, old_inviter)), (1, new_chain)):
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
    await _set_ancestors(tx, tenant_id, user_id, [*new_chain, None, None, None][:3], leaf=leaf)
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
        await _apply_now(db, tenant_id, now_us)
        row = await db.fetchrow(_COUNTS_SQL, tenant_id, user_id, now_us)
    if row is None:  # an aggregate without GROUP BY always returns one row
        raise RuntimeError("invariant broken: counts row is None")
    return int(row["l1"]), int(row["l2"]), int(row["l3"])


async def _apply_now(db: Any, tenant_id: str, now_us: int) -> None:
    if db.in_transaction:
        await apply_lapses(db, tenant_id, now_us)
    else:
        async with db.transaction() as tx:
            await apply_lapses(tx, tenant_id, now_us)


_LAPSE_DUE_PROBE = (
    "SELECT EXISTS (SELECT 1 FROM user_bindings b WHERE b.tenant_id = $1"
    " AND b.team_inviter_id IS NOT NULL AND b.expires_at_us IS NOT NULL"
    " AND b.expires_at_us <= $2)"
)


async def apply_due_lapses(db: Any, tenant_id: str, now_us: int) -> None:
    """Apply the lapses due by ``now_us`` (usually none: one indexed probe), so the counted
    tree is the tree of active bindings."""
    for _ in range(_LAPSE_ROUNDS):
        if not await db.fetchval(_LAPSE_DUE_PROBE, tenant_id, now_us):
            return
        await _apply_now(db, tenant_id, now_us)
