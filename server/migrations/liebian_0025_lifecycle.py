"""Tier sales figures in shards: a distributor's daily ``tier_sales`` row becomes up to
``server.ledger.totals.SHARDS`` rows (one per pooled connection on PostgreSQL, as the running
totals), so concurrent orders crediting one top distributor never wait on one row lock."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-12-01T01:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tier sales figures in shards"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "ALTER TABLE tier_sales ADD COLUMN shard INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX IF EXISTS ux_tier_sales",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_tier_sales_shard"
        " ON tier_sales (tenant_id, distributor_id, day, shard)",
    ))  # fmt: skip
    return manager
