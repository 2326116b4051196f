"""Unique keys and indexes for the tables of migrations 0003 and 0004.

Piccolo runs a migration's raw steps before its table steps, so indexes on new tables
come in the migration after the one that creates them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migrate import run_ddl

ID = "2026-11-29T13:36:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "keys and indexes for settlement locks, campaigns and leaderboards"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    manager.add_raw(run_ddl(
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_settlement_locks_entry"
        " ON settlement_locks (tenant_id, entry_id)",
        "CREATE INDEX IF NOT EXISTS ix_settlement_locks_settlement"
        " ON settlement_locks (tenant_id, settlement_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_campaigns ON campaigns (tenant_id, campaign_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_leaderboard ON leaderboard_scores"
        " (tenant_id, campaign_id, period_key, distributor_id)",
        # Rank = the number of members ordered before you: an index range count.
        "CREATE INDEX IF NOT EXISTS ix_leaderboard_rank ON leaderboard_scores"
        " (tenant_id, campaign_id, period_key, score DESC, reached_at_us, distributor_id)",
    ))
    return manager
