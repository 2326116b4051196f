"""Console sign-in sessions, its audit trail (who changed what, when, why), daily figures."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-30T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "console sessions, audit trail, daily figures"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "CREATE TABLE IF NOT EXISTS console_sessions ("
        " session_hash VARCHAR(64) PRIMARY KEY, tenant_id VARCHAR(32) NOT NULL,"
        " key_prefix VARCHAR(32) NOT NULL, csrf_token VARCHAR(64) NOT NULL,"
        " created_at_us BIGINT NOT NULL, expires_at_us BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_console_sessions_expiry ON console_sessions (expires_at_us)",
        "CREATE TABLE IF NOT EXISTS console_audit ("
        " audit_id VARCHAR(40) PRIMARY KEY, tenant_id VARCHAR(32) NOT NULL,"
        " object_id VARCHAR(64) NOT NULL, action VARCHAR(32) NOT NULL,"
        " actor VARCHAR(32) NOT NULL, reason VARCHAR(500) NOT NULL DEFAULT '',"
        " at_us BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_console_audit_object"
        " ON console_audit (tenant_id, object_id, at_us)",
        # Daily figures per tenant, folded from append-only tables (server.stats.service).
        "CREATE TABLE IF NOT EXISTS daily_stats ("
        " tenant_id VARCHAR(32) NOT NULL, day VARCHAR(10) NOT NULL, metric VARCHAR(16) NOT NULL,"
        " value BIGINT NOT NULL, PRIMARY KEY (tenant_id, day, metric))",
        # An endpoint's recent deliveries, newest first (server.webhooks.deliveries).
        "CREATE INDEX IF NOT EXISTS ix_webhook_outbox_endpoint"
        " ON webhook_outbox (tenant_id, endpoint_id, id)",
        "CREATE TABLE IF NOT EXISTS stats_watermarks ("
        " source VARCHAR(32) PRIMARY KEY, last_id BIGINT NOT NULL)",
    ))
    return manager
