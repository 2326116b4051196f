"""Reconciliation: recompute every maintained total and team count from the source of truth.

The append-only ledger (with its settlement locks) and the bindings are the truth;
``distributor_totals`` and ``team_counts`` are caches written beside them. :func:`verify`
walks a tenant in batches of distributors (by id, so it is resumable and its memory bounded),
recomputes each batch from the entries and the active bindings, and yields one difference per
distributor and kind. With ``fix`` it also corrects them: per batch, in one transaction, it
first locks the batch's cached rows and only then recomputes, so a write that commits while it
runs is either seen by the recomputation or applied after it (never lost). The migration that
introduced the caches backfills them with the same code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from server.db import Connection, Database
from server.ledger.totals import TOTAL_COLUMNS
from server.referrals.teams import apply_lapses

__all__ = ["Difference", "backfill", "verify"]

Difference = dict[str, Any]
COUNT_COLUMNS = ("level1", "level2", "level3")

_RANGE = "{col} > $2 AND {col} <= $3"
_OPEN_RANGE = "{col} > $2 AND $3 = ''"  # the last batch: no upper bound ($3 is '')

_TOTALS_FROM_ENTRIES = """
SELECT e.distributor_id,
  SUM(CASE WHEN e.kind NOT IN ('reversal', 'absorbed_reversal') THEN e.amount_fen ELSE 0 END),
  SUM(CASE WHEN e.kind = 'reversal' THEN e.amount_fen ELSE 0 END),
  SUM(CASE WHEN e.kind = 'absorbed_reversal' THEN e.amount_fen ELSE 0 END),
  SUM(CASE WHEN l.status = 'settled' AND e.kind <> 'absorbed_reversal'
      THEN e.amount_fen ELSE 0 END),
  SUM(CASE WHEN l.status = 'paid' AND e.kind <> 'absorbed_reversal'
      THEN e.amount_fen ELSE 0 END)
FROM ledger_entries e
LEFT JOIN settlement_locks l ON l.tenant_id = e.tenant_id AND l.entry_id = e.id
WHERE e.tenant_id = $1 AND {range}
GROUP BY e.distributor_id
"""
_TOTALS_STORED = (
    "SELECT distributor_id, " + ", ".join(TOTAL_COLUMNS) + " FROM distributor_totals"
    " WHERE tenant_id = $1 AND {range}{lock}"
)
_ACTIVE = (
    "({b}.inviter_id IS NOT NULL AND ({b}.expires_at_us IS NULL OR {b}.expires_at_us > {now}))"
)
_LEVEL_JOIN = (
    " JOIN user_bindings {b} ON {b}.tenant_id = {a}.tenant_id AND {b}.inviter_id = {a}.user_id"
    " AND " + _ACTIVE.replace("{now}", "$4")
)
_COUNTS_FROM_BINDINGS = """
SELECT b1.inviter_id, {level}, COUNT(*) FROM user_bindings b1{joins}
WHERE b1.tenant_id = $1 AND {range} AND {active}
GROUP BY b1.inviter_id
"""
_COUNTS_STORED = (
    "SELECT user_id, level1, level2, level3 FROM team_counts"
    " WHERE tenant_id = $1 AND {range}{lock}"
)
# Bindings whose counted inviter is not the active inviter (after due lapses are applied).
_TREE_DRIFT = """
SELECT user_id, team_inviter_id, CASE WHEN {active} THEN b1.inviter_id END AS expected
FROM user_bindings b1
WHERE b1.tenant_id = $1 AND COALESCE(b1.team_inviter_id, '')
  <> COALESCE(CASE WHEN {active} THEN b1.inviter_id END, '')
"""


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


async def _recompute_totals(
    db: Connection, tenant_id: str, lower: str, upper: str | None
) -> dict[str, tuple[int, ...]]:
    rows = await db.fetch_values(
        _TOTALS_FROM_ENTRIES.format(range=_range("e.distributor_id", upper)),
        tenant_id,
        lower,
        upper if upper is not None else "",
    )
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


async def _recompute_counts(
    db: Connection, tenant_id: str, lower: str, upper: str | None, now_us: int
) -> dict[str, tuple[int, ...]]:
    counts: dict[str, list[int]] = {}
    for level in (1, 2, 3):
        names = ["b1", "b2", "b3"][:level]
        joins = "".join(
            _LEVEL_JOIN.format(a=names[i - 1], b=names[i]) for i in range(1, level)
        )
        rows = await db.fetch(
            _COUNTS_FROM_BINDINGS.format(
                level=level,
                joins=joins,
                range=_range("b1.inviter_id", upper),
                active=_ACTIVE.format(b="b1", now="$4"),
            ),
            tenant_id,
            lower,
            upper if upper is not None else "",
            now_us,
        )
        for r in rows:
            counts.setdefault(r[0], [0, 0, 0])[level - 1] = int(r[2])
    return {k: tuple(v) for k, v in counts.items()}


async def _stored(
    db: Connection, sql: str, tenant_id: str, col: str, lower: str, upper: str | None, lock: bool
) -> dict[str, tuple[int, ...]]:
    suffix = " ORDER BY 1 FOR UPDATE" if lock and db.engine == "postgres" else ""
    rows = await db.fetch_values(
        sql.format(range=_range(col, upper), lock=suffix),
        tenant_id,
        lower,
        upper if upper is not None else "",
    )
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


def _diff(
    kind: str,
    tenant_id: str,
    columns: tuple[str, ...],
    stored: dict[str, tuple[int, ...]],
    expected: dict[str, tuple[int, ...]],
) -> list[Difference]:
    zero = (0,) * len(columns)
    out = []
    for key in sorted(set(stored) | set(expected)):
        have, want = stored.get(key, zero), expected.get(key, zero)
        if have != want:
            out.append(
                {
                    "kind": kind,
                    "tenant_id": tenant_id,
                    "id": key,
                    "stored": dict(zip(columns, have, strict=True)),
                    "recomputed": dict(zip(columns, want, strict=True)),
                }
            )
    return out


_SET_TOTALS = (
    "INSERT INTO distributor_totals (tenant_id, distributor_id, "
    + ", ".join(TOTAL_COLUMNS)
    + ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, distributor_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in TOTAL_COLUMNS)
)
_SET_COUNTS = (
    "INSERT INTO team_counts (tenant_id, user_id, level1, level2, level3)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
    " level1 = excluded.level1, level2 = excluded.level2, level3 = excluded.level3"
)
_ENSURE_ROWS = (
    "INSERT INTO {table} (tenant_id, {key}, {zeros_cols})"
    " SELECT d.tenant_id, d.distributor_id, {zeros}"
    " FROM distributors d WHERE d.tenant_id = $1 AND {range}"
    " ORDER BY d.distributor_id ON CONFLICT (tenant_id, {key}) DO NOTHING"
)


async def _check_batch(
    db: Connection,
    tenant_id: str,
    lower: str,
    upper: str | None,
    now_us: int,
    fix: bool,
) -> list[Difference]:
    args = (tenant_id, lower, upper if upper is not None else "")
    if fix:  # rows exist, then are locked, then recomputed: a concurrent write is never lost
        for table, key, cols in (
            ("distributor_totals", "distributor_id", TOTAL_COLUMNS),
            ("team_counts", "user_id", COUNT_COLUMNS),
        ):
            await db.execute(
                _ENSURE_ROWS.format(
                    table=table,
                    key=key,
                    zeros_cols=", ".join(cols),
                    zeros=", ".join("0" for _ in cols),
                    range=_range("d.distributor_id", upper),
                ),
                *args,
            )
    stored_totals = await _stored(
        db, _TOTALS_STORED, tenant_id, "distributor_id", lower, upper, fix
    )
    stored_counts = await _stored(db, _COUNTS_STORED, tenant_id, "user_id", lower, upper, fix)
    diffs = _diff(
        "totals",
        tenant_id,
        TOTAL_COLUMNS,
        stored_totals,
        await _recompute_totals(db, tenant_id, lower, upper),
    ) + _diff(
        "team_counts",
        tenant_id,
        COUNT_COLUMNS,
        stored_counts,
        await _recompute_counts(db, tenant_id, lower, upper, now_us),
    )
    if fix:
        totals = [d for d in diffs if d["kind"] == "totals"]
        counts = [d for d in diffs if d["kind"] == "team_counts"]
        if totals:
            await db.executemany(
                _SET_TOTALS,
                [(tenant_id, d["id"], *d["recomputed"].values()) for d in totals],
            )
        if counts:
            await db.executemany(
                _SET_COUNTS,
                [(tenant_id, d["id"], *d["recomputed"].values()) for d in counts],
            )
    return diffs


async def _check_tree(db: Database, tenant_id: str, now_us: int, fix: bool) -> list[Difference]:
    """Apply due lapses, then compare each counted inviter with the active one."""
    async with db.transaction() as tx:
        await apply_lapses(tx, tenant_id, now_us)
        rows = await tx.fetch(
            _TREE_DRIFT.format(active=_ACTIVE.format(b="b1", now="$2")), tenant_id, now_us
        )
        if fix and rows:
            await tx.executemany(
                "UPDATE user_bindings SET team_inviter_id = $3 WHERE tenant_id = $1"
                " AND user_id = $2",
                [(tenant_id, r[0], r[2]) for r in rows],
            )
    return [
        {
            "kind": "counted_inviter",
            "tenant_id": tenant_id,
            "id": r[0],
            "stored": {"team_inviter_id": r[1]},
            "recomputed": {"team_inviter_id": r[2]},
        }
        for r in rows
    ]


# A balance reads the freeze window without the locks (server.ledger.balances): a locked entry
# inside its window would break it. Nothing can fix such a lock; it is reported.
_LOCKED_IN_WINDOW = """
SELECT e.distributor_id, e.id, e.available_at_us, l.settlement_id
FROM ledger_entries e JOIN settlement_locks l ON l.tenant_id = e.tenant_id AND l.entry_id = e.id
WHERE e.tenant_id = $1 AND e.available_at_us > $2 AND e.kind <> 'absorbed_reversal'
ORDER BY e.id LIMIT 1000
"""


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
            async with db.transaction() as tx:
                diffs = await _check_batch(tx, tenant, lower, upper, at, fix)
            for diff in diffs:
                yield diff


async def backfill(db: Database, batch: int = 1000) -> int:
    """Fill the caches of every tenant from the truth (idempotent, batched); the number of
    rows corrected."""
    fixed = 0
    async for _ in verify(db, fix=True, batch=batch):
        fixed += 1
    return fixed
