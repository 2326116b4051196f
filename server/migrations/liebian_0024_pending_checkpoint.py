"""Maturity checkpoints and team ancestors (issue 21): ``distributor_totals.matured_fen`` and
the per-tenant ``maturity_checkpoints`` (:mod:`server.ledger.maturity`); ``team_ancestors``,
each user's 2nd and 3rd counted ancestors with their keyset indexes (team pages at levels 2
and 3, :mod:`server.referrals.teams`); then their backfills.

Safe on a live database: adding a column with a constant default rewrites nothing (PostgreSQL
11+, SQLite), the new table is small, and the backfill is the maintenance step itself, run
outside a transaction: each batch (5,000 entries by ``available_at_us``, on
``ix_entries_available``) is one transaction that locks the tenant's checkpoint row, adds the
batch to ``matured_fen`` and moves the checkpoint, so an interrupted run resumes where it
stopped and the running app's balances stay exact throughout (before a tenant's first batch a
balance reads its whole history, as before this migration). The ancestor indexes are partial
(rows that have such an ancestor), built before the table fills; the ancestors are set
5,000 bindings (by id) a transaction holding the tree locks of their tenants, so no move
interleaves; rerun, it sets them again. Bindings an older app writes meanwhile are set by
``liebian ledger verify --fix`` (reported as ``counted_ancestors``).
"""

import os

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-01T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "maturity checkpoints and team ancestors, backfilled in batches"

# (table, column, definition): added unless present
_COLUMNS = (("distributor_totals", "matured_fen", "BIGINT NOT NULL DEFAULT 0"),)
# tenant_id first and starting the primary key
_TABLES = (
    "CREATE TABLE IF NOT EXISTS maturity_checkpoints ("
    " tenant_id VARCHAR(32) NOT NULL PRIMARY KEY, checkpoint_us BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS team_ancestors ("
    " tenant_id VARCHAR(32) NOT NULL, user_id VARCHAR(64) NOT NULL,"
    " ancestor2 VARCHAR(64) NULL DEFAULT NULL, ancestor3 VARCHAR(64) NULL DEFAULT NULL,"
    " bound_at_us BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, user_id))",
    *(
        f"CREATE INDEX IF NOT EXISTS ix_team_ancestor{n} ON team_ancestors"
        f" (tenant_id, ancestor{n}, bound_at_us, user_id) WHERE ancestor{n} IS NOT NULL"
        for n in (2, 3)
    ),
)
BATCH = 5000


async def _has_column(db, table: str, column: str) -> bool:
    if db.engine == "postgres":
        sql = (
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = $1 AND column_name = $2"
        )
    else:
        sql = "SELECT 1 FROM pragma_table_info($1) WHERE name = $2"
    return bool(await db.fetch(sql, table, column))


async def _schema(db) -> None:
    for table, column, definition in _COLUMNS:
        if not await _has_column(db, table, column):
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    for sql in _TABLES:
        await db.execute(sql)


_SET_ANCESTORS = """
INSERT INTO team_ancestors (tenant_id, user_id, ancestor2, ancestor3, bound_at_us)
SELECT b.tenant_id, b.user_id, p.team_inviter_id, g.team_inviter_id, b.bound_at_us
FROM user_bindings b
JOIN user_bindings p ON p.tenant_id = b.tenant_id AND p.user_id = b.team_inviter_id
LEFT JOIN user_bindings g ON g.tenant_id = b.tenant_id AND g.user_id = p.team_inviter_id
WHERE b.tenant_id = $1 AND b.id > $2 AND b.id <= $3 AND p.team_inviter_id IS NOT NULL
ON CONFLICT (tenant_id, user_id) DO UPDATE SET ancestor2 = excluded.ancestor2,
  ancestor3 = excluded.ancestor3, bound_at_us = excluded.bound_at_us
"""


async def _ancestors(db) -> None:
    from server.referrals.teams import lock_tree

    last = 0
    while True:
        upper = await db.fetchval(
            "SELECT MAX(id) FROM (SELECT id FROM user_bindings WHERE id > $1 ORDER BY id"
            " LIMIT $2) AS batch",
            last,
            BATCH,
        )
        if upper is None:
            return
        async with db.transaction() as tx:
            tenants = await tx.fetch_values(
                "SELECT DISTINCT tenant_id FROM user_bindings WHERE id > $1 AND id <= $2"
                " ORDER BY 1",
                last,
                upper,
            )
            for (tenant_id,) in tenants:  # in tenant order: no deadlock between two runs
                await lock_tree(tx, tenant_id, exclusive=True)
                await tx.execute(_SET_ANCESTORS, tenant_id, last, upper)
        last = int(upper)


async def backfill() -> None:
    from server.db import connect
    from server.ledger.maturity import advance_maturity

    db = await connect(os.environ["LIEBIAN_DATABASE_URL"], pool_size=2)
    try:
        await _schema(db)
        await _ancestors(db)
        await advance_maturity(db)
    finally:
        await db.close()


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="liebian", description=DESCRIPTION, wrap_in_transaction=False
    )
    manager.add_raw(backfill)
    return manager
