"""Indexes for the maintained totals and team counts, and their backfill (issue 21).

Safe on a live database: outside a transaction, PostgreSQL indexes on the big tables are built
``CONCURRENTLY`` (an interrupted build is dropped and redone); counted inviters are set in
batches by primary key; the totals and counts are recomputed tenant by tenant in batches of
distributors, each batch locking its rows before recomputing (``server.ledger.reconcile``).
Every step is idempotent, so an interrupted run resumes by running again.
"""

import os

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-30T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes and backfill of distributor totals and team counts"

UNIQUE = [
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_distributor_totals"
    " ON distributor_totals (tenant_id, distributor_id, shard)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_team_counts ON team_counts (tenant_id, user_id, shard)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_team_trees ON team_trees (tenant_id)",
]
# (name, table and columns): built CONCURRENTLY on PostgreSQL
LIVE = [
    # the freeze window of one distributor: pending balance without reading history (covering
    # the summed column; {include} is INCLUDE on PostgreSQL, one more key column on SQLite;
    # partial, as the balance's predicate, so no row is filtered)
    (
        "ix_entries_pending",
        "ledger_entries (tenant_id, distributor_id, available_at_us{include}amount_fen)"
        " WHERE kind <> 'absorbed_reversal'",
    ),
    # team pages by keyset
    ("ix_bindings_team", "user_bindings (tenant_id, team_inviter_id, bound_at_us, user_id)"),
    # lapses that are due
    (
        "ix_bindings_lapse",
        "user_bindings (tenant_id, expires_at_us)"
        " WHERE team_inviter_id IS NOT NULL AND expires_at_us IS NOT NULL",
    ),
]
BATCH = 5000


async def _indexes(db) -> None:
    for sql in UNIQUE:
        await db.execute(sql)
    for name, target in LIVE:
        if db.engine == "postgres":
            valid = await db.fetchval(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = $1",
                name,
            )
            if valid is False:
                await db.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            target = target.replace("{include}", ") INCLUDE (")
            await db.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}")
        else:
            target = target.replace("{include}", ", ")
            await db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


async def _counted_inviters(db, now: int) -> None:
    last = 0
    while True:
        upper = await db.fetchval(
            "SELECT MAX(id) FROM (SELECT id FROM user_bindings WHERE id > $1 ORDER BY id LIMIT $2)"
            " AS batch",
            last,
            BATCH,
        )
        if upper is None:
            return
        await db.execute(
            "UPDATE user_bindings SET team_inviter_id = inviter_id WHERE id > $1 AND id <= $2"
            " AND team_inviter_id IS NULL AND inviter_id IS NOT NULL"
            " AND (expires_at_us IS NULL OR expires_at_us > $3)",
            last,
            upper,
            now,
        )
        last = int(upper)


async def backfill() -> None:
    from server.common import now_us
    from server.db import connect
    from server.ledger.reconcile import backfill as recompute

    db = await connect(os.environ["LIEBIAN_DATABASE_URL"], pool_size=2)
    try:
        await _indexes(db)
        await _counted_inviters(db, now_us())
        await recompute(db)
    finally:
        await db.close()


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="liebian", description=DESCRIPTION, wrap_in_transaction=False
    )
    manager.add_raw(backfill)
    return manager
