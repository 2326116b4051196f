"""An index on when idempotency records were made, for the periodic purge."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-29T15:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "index idempotency records by age"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "CREATE INDEX IF NOT EXISTS ix_idempotency_created ON idempotency_keys (created_at_us)",
    ))
    return manager
