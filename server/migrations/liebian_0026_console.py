"""Console, part 2: webhook deliveries in flight, nickname search, settlement export jobs.

- ``webhook_outbox.lease_until_us``: set while an attempt is in flight (claimed by the worker
  or by "retry now"), cleared when its outcome is recorded, so an operator's retry can tell a
  delivery being sent from one waiting for its next attempt (never a double delivery).
- ``ix_distributors_nickname``: nickname prefix search by an index range (bytewise order: on
  PostgreSQL the column is indexed ``COLLATE "C"``, which the query names too).
- ``settlement_exports``: a CSV/XLSX export made in the background, its progress polled.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-01T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook leases, nickname search index, settlement export jobs"

_EXPORTS = (
    "CREATE TABLE IF NOT EXISTS settlement_exports ("
    " tenant_id VARCHAR(32) NOT NULL, export_id VARCHAR(32) NOT NULL,"
    " settlement_id VARCHAR(32) NOT NULL, kind VARCHAR(8) NOT NULL, lang VARCHAR(4) NOT NULL,"
    " status VARCHAR(8) NOT NULL, done_lines BIGINT NOT NULL DEFAULT 0,"
    " total_lines BIGINT NOT NULL DEFAULT 0, size_bytes BIGINT NOT NULL DEFAULT 0,"
    " error VARCHAR(500) NOT NULL DEFAULT '', created_at_us BIGINT NOT NULL,"
    " updated_at_us BIGINT NOT NULL, PRIMARY KEY (tenant_id, export_id))"
)


async def _apply() -> None:
    from piccolo.engine import engine_finder

    engine = engine_finder()
    if engine is None:
        raise RuntimeError("no Piccolo engine configured (PICCOLO_CONF)")
    postgres = engine.engine_type == "postgres"
    if postgres:
        await engine.run_ddl(
            "ALTER TABLE webhook_outbox ADD COLUMN IF NOT EXISTS lease_until_us BIGINT NULL"
        )
    else:  # SQLite has no IF NOT EXISTS for a column; the migration runs once
        await engine.run_ddl("ALTER TABLE webhook_outbox ADD COLUMN lease_until_us BIGINT NULL")
    collate = ' COLLATE "C"' if postgres else ""
    await engine.run_ddl(
        "CREATE INDEX IF NOT EXISTS ix_distributors_nickname"
        f" ON distributors (tenant_id, nickname{collate}, distributor_id)"
    )
    await engine.run_ddl(_EXPORTS)
    await engine.run_ddl(
        "CREATE INDEX IF NOT EXISTS ix_settlement_exports_settlement"
        " ON settlement_exports (tenant_id, settlement_id, created_at_us)"
    )


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(_apply)
    return manager
