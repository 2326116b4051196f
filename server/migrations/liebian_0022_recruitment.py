"""Distributor recruitment: the state of a user's way to becoming a distributor, the
application's form, the operator's reason; and the index the threshold mode sums a buyer's
own orders with; the distributor's tier (an index into the program's tiers)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-30T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "distributor recruitment state, application and tier"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "ALTER TABLE distributors ADD COLUMN recruitment VARCHAR(8) NOT NULL DEFAULT 'approved'",
        "ALTER TABLE distributors ADD COLUMN application TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE distributors ADD COLUMN recruitment_reason VARCHAR(200) NULL DEFAULT NULL",
        "ALTER TABLE distributors ADD COLUMN recruitment_at_us BIGINT NULL DEFAULT NULL",
        "ALTER TABLE distributors ADD COLUMN tier_level INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS ix_orders_user ON orders (tenant_id, user_id)",
    ))
    return manager
