"""Composite unique keys and indexes that Piccolo cannot add on SQLite; tenant first."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-29T13:32:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique keys and indexes (tenant first)"

INDEXES = [
    # unique keys (what makes a replay harmless)
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_idempotency ON idempotency_keys (tenant_id, key)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_distributors ON distributors (tenant_id, distributor_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_bindings_user ON user_bindings (tenant_id, user_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_links ON links (tenant_id, distributor_id, campaign_id, channel)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_link_clicks ON link_clicks (tenant_id, code, client_hash, minute)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_orders ON orders (tenant_id, order_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_refunds ON refunds (tenant_id, order_id, refund_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_entries_dedupe ON ledger_entries (tenant_id, dedupe_key)",
    # lookups
    "CREATE INDEX IF NOT EXISTS ix_bindings_inviter ON user_bindings (tenant_id, inviter_id, bound_at_us)",
    "CREATE INDEX IF NOT EXISTS ix_events_user ON attribution_events (tenant_id, user_id, id)",
    "CREATE INDEX IF NOT EXISTS ix_entries_distributor ON ledger_entries (tenant_id, distributor_id, id)",
    "CREATE INDEX IF NOT EXISTS ix_entries_order ON ledger_entries (tenant_id, order_id)",
    "CREATE INDEX IF NOT EXISTS ix_entries_available ON ledger_entries (tenant_id, available_at_us)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)

    manager.add_raw(run_ddl(*INDEXES))
    return manager
