"""A partial index of held/frozen distributors: leaderboards and settlements look them up often,
and they are a tiny fraction of all distributors (a full status index would rarely be chosen)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-29T14:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "partial index of distributors that are not active"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "CREATE INDEX IF NOT EXISTS ix_distributors_not_active ON distributors (tenant_id)"
        " WHERE status <> 'active'",
    ))
    return manager
