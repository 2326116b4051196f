"""Withdrawals (提现): the requests (their entries are held in settlement_locks); and the
daily sales figures tier promotion reads (server.tiers).

Created with DDL (Piccolo runs raw steps before its own table steps, and the indexes need
the table); the columns are those of ``server.tables.Withdrawal``.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-30T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "withdrawals and tier sales figures"

_TABLE = """
CREATE TABLE IF NOT EXISTS withdrawals (
  id {id},
  tenant_id VARCHAR(32) NOT NULL DEFAULT '',
  withdrawal_id VARCHAR(32) NOT NULL DEFAULT '' UNIQUE,
  distributor_id VARCHAR(64) NOT NULL DEFAULT '',
  amount_fen BIGINT NOT NULL DEFAULT 0,
  fee_fen BIGINT NOT NULL DEFAULT 0,
  net_fen BIGINT NOT NULL DEFAULT 0,
  status VARCHAR(9) NOT NULL DEFAULT '',
  reason VARCHAR(200) NULL DEFAULT NULL,
  transfer_ref VARCHAR(128) NULL DEFAULT NULL,
  created_at_us BIGINT NOT NULL DEFAULT 0,
  decided_at_us BIGINT NULL DEFAULT NULL,
  paid_at_us BIGINT NULL DEFAULT NULL
)
"""
_TIER_SALES = """
CREATE TABLE IF NOT EXISTS tier_sales (
  id {id},
  tenant_id VARCHAR(32) NOT NULL DEFAULT '',
  distributor_id VARCHAR(64) NOT NULL DEFAULT '',
  day INTEGER NOT NULL DEFAULT 0,
  team_fen BIGINT NOT NULL DEFAULT 0,
  own_fen BIGINT NOT NULL DEFAULT 0
)
"""
_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_tier_sales ON tier_sales (tenant_id, distributor_id, day)",
    "CREATE INDEX IF NOT EXISTS ix_withdrawals_distributor"
    " ON withdrawals (tenant_id, distributor_id, created_at_us)",
    "CREATE INDEX IF NOT EXISTS ix_withdrawals_status"
    " ON withdrawals (tenant_id, status, created_at_us)",
)


async def _create() -> None:
    from piccolo.engine import engine_finder

    engine = engine_finder()
    if engine is None:
        raise RuntimeError("no Piccolo engine configured (PICCOLO_CONF)")
    serial = (
        "BIGSERIAL PRIMARY KEY"
        if engine.engine_type == "postgres"
        else "INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    await engine.run_ddl(_TABLE.format(id=serial))
    await engine.run_ddl(_TIER_SALES.format(id=serial))
    for sql in _INDEXES:
        await engine.run_ddl(sql)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(_create)
    return manager
