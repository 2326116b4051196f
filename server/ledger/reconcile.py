"""Reconciliation: recompute every maintained total and team count from the source of truth.

The append-only ledger (with its settlement locks) and the bindings are the truth;
``distributor_totals`` (``matured_fen`` against the tenant's maturity checkpoint,
:mod:`server.ledger.maturity`) and ``team_counts`` are caches written beside them. :func:`verify`
walks a tenant in batches of distributors (by id, so it is resumable and its memory bounded),
recomputes each batch from the entries and the active bindings, and yields one difference per
distributor and kind. Each batch is one statement, so the cached values and the recomputed
ones come from one snapshot; every write changes the truth and its cache in one transaction,
so their difference at that snapshot is exactly the error. ``fix`` adds that difference to the
cache (an increment, not an overwrite): a write that commits meanwhile keeps its own increment,
and nothing is locked. Team counts are checked in two steps: the counted tree
(``team_inviter_id``) against the active bindings (under the tenant's tree lock, after the due
lapses), then the counters against the counted tree, and each binding's maintained 2nd and 3rd
ancestors (``team_ancestors``) against the counted tree. The migration that
introduced the caches backfills them with the same code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Connection, Database
from server.ledger.maturity import CHECKPOINT_SQL
from server.ledger.totals import TOTAL_COLUMNS
from server.queries import ENTRY_LOCK_JOIN, LOCKED_ENTRY_JOIN, binding_active
from server.referrals.teams import apply_lapses

__all__ = ["Difference", "backfill", "verify"]

Difference = dict[str, Any]
COUNT_COLUMNS = ("level1", "level2", "level3")

_RANGE = "{col} > $2 AND {col} <= $3"
_OPEN_RANGE = "{col} > $2 AND $3 = ''"  # the last batch: no upper bound ($3 is '')

# {range} selects a batch of distributors; the recomputation and the cache side by side.
_TOTALS_SQL = f"""
SELECT d, SUM(r1), SUM(r2), SUM(r3), SUM(r4), SUM(r5), SUM(r6),
  SUM(s1), SUM(s2), SUM(s3), SUM(s4), SUM(s5), SUM(s6)
FROM (
  SELECT e.distributor_id AS d,
    CASE WHEN e.kind NOT IN ('reversal', 'absorbed_reversal') THEN e.amount_fen ELSE 0 END AS r1,
    CASE WHEN e.kind = 'reversal' THEN e.amount_fen ELSE 0 END AS r2,
    CASE WHEN e.kind = 'absorbed_reversal' THEN e.amount_fen ELSE 0 END AS r3,
    CASE WHEN l.status = 'settled' AND e.kind <> 'absorbed_reversal'
      THEN e.amount_fen ELSE 0 END AS r4,
    CASE WHEN l.status = 'paid' AND e.kind <> 'absorbed_reversal'
      THEN e.amount_fen ELSE 0 END AS r5,
    CASE WHEN e.available_at_us <= cp.c AND e.kind <> 'absorbed_reversal'
      THEN e.amount_fen ELSE 0 END AS r6,
    0 AS s1, 0 AS s2, 0 AS s3, 0 AS s4, 0 AS s5, 0 AS s6
  FROM (SELECT {CHECKPOINT_SQL} AS c) AS cp, ledger_entries e
  {ENTRY_LOCK_JOIN}
  WHERE e.tenant_id = $1 AND {{range_e}}
  UNION ALL
  SELECT t.distributor_id, 0, 0, 0, 0, 0, 0, t.credited_fen, t.reversed_fen, t.absorbed_fen,
    t.settled_fen, t.paid_fen, t.matured_fen
  FROM distributor_totals t WHERE t.tenant_id = $1 AND {{range_t}}
) AS x
GROUP BY d
"""
# Level k below an ancestor in the counted tree, and the counters, side by side.
_COUNTS_SQL = """
SELECT a, SUM(r1), SUM(r2), SUM(r3), SUM(s1), SUM(s2), SUM(s3)
FROM (
  SELECT b1.team_inviter_id AS a, 1 AS r1, 0 AS r2, 0 AS r3, 0 AS s1, 0 AS s2, 0 AS s3
  FROM user_bindings b1 WHERE b1.tenant_id = $1 AND {range_1}
  UNION ALL
  SELECT b1.team_inviter_id, 0, 1, 0, 0, 0, 0
  FROM user_bindings b1 JOIN user_bindings b2
    ON b2.tenant_id = b1.tenant_id AND b2.team_inviter_id = b1.user_id
  WHERE b1.tenant_id = $1 AND {range_1}
  UNION ALL
  SELECT b1.team_inviter_id, 0, 0, 1, 0, 0, 0
  FROM user_bindings b1 JOIN user_bindings b2
    ON b2.tenant_id = b1.tenant_id AND b2.team_inviter_id = b1.user_id
  JOIN user_bindings b3 ON b3.tenant_id = b2.tenant_id AND b3.team_inviter_id = b2.user_id
  WHERE b1.tenant_id = $1 AND {range_1}
  UNION ALL
  SELECT c.user_id, 0, 0, 0, c.level1, c.level2, c.level3
  FROM team_counts c WHERE c.tenant_id = $1 AND {range_c}
) AS x
GROUP BY a
"""
# Bindings whose counted inviter is not the active inviter (after due lapses are applied).
_TREE_DRIFT = """
SELECT user_id, team_inviter_id, CASE WHEN {active} THEN b1.inviter_id END AS expected
FROM user_bindings b1
WHERE b1.tenant_id = $1 AND COALESCE(b1.team_inviter_id, '')
  <> COALESCE(CASE WHEN {active} THEN b1.inviter_id END, '')
"""

# Users whose maintained 2nd / 3rd ancestors (team_ancestors; no row: none) or binding time
# are not those of the counted tree.
_ANCESTOR_DRIFT = """
SELECT b.user_id, t.ancestor2, t.ancestor3, t.bound_at_us, p.team_inviter_id AS a2,
  CASE WHEN p.team_inviter_id IS NOT NULL THEN g.team_inviter_id END AS a3, b.bound_at_us
FROM user_bindings b
LEFT JOIN team_ancestors t ON t.tenant_id = b.tenant_id AND t.user_id = b.user_id
LEFT JOIN user_bindings p ON p.tenant_id = b.tenant_id AND p.user_id = b.team_inviter_id
LEFT JOIN user_bindings g ON g.tenant_id = b.tenant_id AND g.user_id = p.team_inviter_id
WHERE b.tenant_id = $1 AND (COALESCE(t.ancestor2, '') <> COALESCE(p.team_inviter_id, '')
  OR COALESCE(t.ancestor3, '') <> COALESCE(g.team_inviter_id, '')
  OR (t.user_id IS NOT NULL AND p.team_inviter_id IS NULL)
  OR (p.team_inviter_id IS NOT NULL AND t.bound_at_us <> b.bound_at_us))
"""
_SET_ANCESTORS = (
    "INSERT INTO team_ancestors (tenant_id, user_id, ancestor2, ancestor3, bound_at_us)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
    " ancestor2 = excluded.ancestor2, ancestor3 = excluded.ancestor3,"
    " bound_at_us = excluded.bound_at_us"
)


async def _fix_ancestors(tx: Connection, tenant_id: str, rows: list[Any]) -> None:
    gone = [(tenant_id, r[0]) for r in rows if r[4] is None]
    kept = [(tenant_id, r[0], r[4], r[5], r[6]) for r in rows if r[4] is not None]
    if gone:
        await tx.executemany(
            "DELETE FROM team_ancestors WHERE tenant_id = $1 AND user_id = $2", gone
        )
    if kept:
        await tx.executemany(_SET_ANCESTORS, kept)


def _range(col: str, upper: str | None) -> str:
    return (_RANGE if upper is not None else _OPEN_RANGE).format(col=col)


async def _batches(db: Connection, tenant_id: str, size: int) -> AsyncIterator[tuple[str, Any]]:
    """Ranges (lower, upper] of ids that partition the key space, cut at distributor ids."""
    lower = ""
    while True:
        rows = await db.fetch(
            "SELECT distributor_id FROM distributors WHERE tenant_id = $1 AND distributor_id > $2"
            " ORDER BY distributor_id LIMIT $3",
            tenant_id,
            lower,
            size,
        )
        if len(rows) < size:
            yield lower, None
            return
        upper = rows[-1][0]
        yield lower, upper
        lower = upper


def _compare(
    kind: str, tenant_id: str, columns: tuple[str, ...], rows: list[Any]
) -> list[Difference]:
    n = len(columns)
    out = []
    for r in sorted(rows, key=lambda r: str(r[0])):
        want = tuple(int(v or 0) for v in r[1 : 1 + n])
        have = tuple(int(v or 0) for v in r[1 + n : 1 + 2 * n])
        if have != want:
            out.append(
                {
                    "kind": kind,
                    "tenant_id": tenant_id,
                    "id": r[0],
                    "stored": dict(zip(columns, have, strict=True)),
                    "recomputed": dict(zip(columns, want, strict=True)),
                }
            )
    return out


_ADD_TOTALS = (
    "INSERT INTO distributor_totals (tenant_id, distributor_id, shard, "
    + ", ".join(TOTAL_COLUMNS)
    + ") VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (tenant_id, distributor_id, shard) DO UPDATE SET "
    + ", ".join(f"{c} = distributor_totals.{c} + excluded.{c}" for c in TOTAL_COLUMNS)
)
_ADD_COUNTS = (
    "INSERT INTO team_counts (tenant_id, user_id, shard, level1, level2, level3)"
    " VALUES ($1, $2, 0, $3, $4, $5) ON CONFLICT (tenant_id, user_id, shard) DO UPDATE SET"
    " level1 = team_counts.level1 + excluded.level1,"
    " level2 = team_counts.level2 + excluded.level2,"
    " level3 = team_counts.level3 + excluded.level3"
)


def _increments(tenant_id: str, diffs: list[Difference]) -> list[tuple[Any, ...]]:
    return [
        (
            tenant_id,
            d["id"],
            *(d["recomputed"][c] - d["stored"][c] for c in d["recomputed"]),
        )
        for d in diffs
    ]


async def _check_batch(
    db: Database, tenant_id: str, lower: str, upper: str | None, fix: bool
) -> list[Difference]:
    args = (tenant_id, lower, upper if upper is not None else "")
    totals = _compare(
        "totals",
        tenant_id,
        TOTAL_COLUMNS,
        await db.fetch_values(
            _TOTALS_SQL.format(
                range_e=_range("e.distributor_id", upper),
                range_t=_range("t.distributor_id", upper),
            ),
            *args,
        ),
    )
    counts = _compare(
        "team_counts",
        tenant_id,
        COUNT_COLUMNS,
        await db.fetch_values(
            _COUNTS_SQL.format(
                range_1=_range("b1.team_inviter_id", upper),
                range_c=_range("c.user_id", upper),
            ),
            *args,
        ),
    )
    if fix and (totals or counts):
        async with db.transaction() as tx:
            if totals:
                await tx.executemany(_ADD_TOTALS, _increments(tenant_id, totals))
            if counts:
                await tx.executemany(_ADD_COUNTS, _increments(tenant_id, counts))
    return totals + counts


async def _check_tree(db: Database, tenant_id: str, now_us: int, fix: bool) -> list[Difference]:
    """Apply due lapses, then compare each counted inviter with the active one (both under the
    tenant's tree lock, so no move runs in between)."""
    async with db.transaction() as tx:
        await apply_lapses(tx, tenant_id, now_us)
        rows = await tx.fetch(
            _TREE_DRIFT.format(active=binding_active("b1", "$2")), tenant_id, now_us
        )
        if fix and rows:
            # the counters follow in the batches (they are checked against the counted tree)
            await tx.executemany(
                "UPDATE user_bindings SET team_inviter_id = $3 WHERE tenant_id = $1"
                " AND user_id = $2",
                [(tenant_id, r[0], r[2]) for r in rows],
            )
        # then the ancestors against the (fixed) counted tree
        drift = await tx.fetch(_ANCESTOR_DRIFT, tenant_id)
        if fix and drift:
            await _fix_ancestors(tx, tenant_id, drift)
    return [
        {
            "kind": "counted_inviter",
            "tenant_id": tenant_id,
            "id": r[0],
            "stored": {"team_inviter_id": r[1]},
            "recomputed": {"team_inviter_id": r[2]},
        }
        for r in rows
    ] + [
        {
            "kind": "counted_ancestors",
            "tenant_id": tenant_id,
            "id": r[0],
            "stored": {"ancestor2": r[1], "ancestor3": r[2], "bound_at_us": r[3]},
            "recomputed": {
                "ancestor2": r[4],
                "ancestor3": r[5],
                "bound_at_us": r[6] if r[4] is not None else None,
            },
        }
        for r in drift
    ]


# A balance reads the freeze window without the locks (server.ledger.balances): a locked entry
# inside its window would break it. Nothing can fix such a lock; it is reported.
_LOCKED_IN_WINDOW = (
    """
SELECT e.distributor_id, e.id, e.available_at_us, l.settlement_id
FROM settlement_locks l """
    + LOCKED_ENTRY_JOIN
    + """
WHERE e.tenant_id = $1 AND e.available_at_us > $2 AND e.kind <> 'absorbed_reversal'
ORDER BY e.id LIMIT 1000
"""
)


async def _check_locks(db: Connection, tenant_id: str, now_us: int) -> list[Difference]:
    rows = await db.fetch(_LOCKED_IN_WINDOW, tenant_id, now_us)
    return [
        {
            "kind": "locked_in_freeze_window",
            "tenant_id": tenant_id,
            "id": r[0],
            "stored": {"entry_id": int(r[1]), "settlement_id": r[3]},
            "recomputed": {"available_at_us": int(r[2])},
        }
        for r in rows
    ]


async def _tenant_ids(db: Connection, tenant_id: str | None) -> list[str]:
    if tenant_id is not None:
        return [tenant_id]
    return [r[0] for r in await db.fetch("SELECT tenant_id FROM tenants ORDER BY tenant_id")]


async def verify(
    db: Database,
    tenant_id: str | None = None,
    *,
    fix: bool = False,
    now_us: int | None = None,
    batch: int = 1000,
) -> AsyncIterator[Difference]:
    """Every difference between the caches and the truth, per tenant (all when ``None``);
    with ``fix``, each is corrected as it is found."""
    from server.common import now_us as clock

    for tenant in await _tenant_ids(db, tenant_id):
        at = clock() if now_us is None else now_us
        for diff in await _check_tree(db, tenant, at, fix):
            yield diff
        for diff in await _check_locks(db, tenant, at):
            yield diff
        async for lower, upper in _batches(db, tenant, batch):
            for diff in await _check_batch(db, tenant, lower, upper, fix):
                yield diff


async def backfill(db: Database, batch: int = 1000) -> int:
    """Fill the caches of every tenant from the truth (idempotent, batched); the number of
    rows corrected."""
    fixed = 0
    async for _ in verify(db, fix=True, batch=batch):
        fixed += 1
    return fixed
