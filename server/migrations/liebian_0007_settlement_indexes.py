"""Unique keys and indexes for the tables of migration 0006."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-29T13:44:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "keys and indexes for settlements, webhooks and poster templates"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "CREATE INDEX IF NOT EXISTS ix_settlements_tenant ON settlements (tenant_id, created_at_us)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_settlement_lines ON settlement_lines"
        " (tenant_id, settlement_id, distributor_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_settlement_items ON settlement_items"
        " (tenant_id, settlement_id, entry_id)",
        "CREATE INDEX IF NOT EXISTS ix_webhook_endpoints_tenant ON webhook_endpoints (tenant_id)",
        "CREATE INDEX IF NOT EXISTS ix_webhook_outbox_due ON webhook_outbox"
        " (delivered_at_us, next_attempt_at_us)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_webhook_outbox_event ON webhook_outbox"
        " (tenant_id, endpoint_id, event_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_poster_templates ON poster_templates (tenant_id, name)",
        "CREATE INDEX IF NOT EXISTS ix_distributors_status ON distributors (tenant_id, status)",
    ))
    return manager
