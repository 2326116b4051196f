"""WeChat mini-program codes: per-tenant credentials (secret sealed), shared access tokens,
and the code images (generated once per link and options, or uploaded by the brand)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-30T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "wechat credentials, access tokens and mini-program codes"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    # BYTEA: binary on PostgreSQL; on SQLite the column keeps the blob as given.
    manager.add_raw(run_ddl(
        "CREATE TABLE IF NOT EXISTS wechat_credentials (tenant_id VARCHAR(32) PRIMARY KEY,"
        " appid VARCHAR(64) NOT NULL, sealed_secret TEXT NOT NULL, updated_at_us BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS wechat_tokens (tenant_id VARCHAR(32) NOT NULL,"
        " appid VARCHAR(64) NOT NULL, access_token TEXT NOT NULL,"
        " expires_at_us BIGINT NOT NULL, PRIMARY KEY (tenant_id, appid))",
        "CREATE TABLE IF NOT EXISTS wechat_codes (tenant_id VARCHAR(32) NOT NULL,"
        " code VARCHAR(32) NOT NULL, options VARCHAR(300) NOT NULL, media_type VARCHAR(32)"
        " NOT NULL, image BYTEA NOT NULL, created_at_us BIGINT NOT NULL,"
        " PRIMARY KEY (tenant_id, code, options))",
    ))
    return manager
