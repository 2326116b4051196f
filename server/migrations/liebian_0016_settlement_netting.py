"""Settlements net known refunds (issue 20): the netted part of each line, and an index to find
the reversals of an entry (drafts take them, approval re-checks them)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-30T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "netted reversals on settlement lines; index reversals by the entry they reverse"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "ALTER TABLE settlement_lines ADD COLUMN netted_reversal_fen BIGINT NOT NULL DEFAULT 0",
        # Partial: only reversals reverse something, so the index stays a fraction of the ledger.
        "CREATE INDEX IF NOT EXISTS ix_entries_reverses ON ledger_entries"
        " (tenant_id, reverses_entry_id) WHERE reverses_entry_id IS NOT NULL",
    ))
    return manager
