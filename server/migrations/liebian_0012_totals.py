"""Maintained ledger totals and team counts (issue 21): the tables and the counted-tree column.

The indexes and the backfill follow in 0012b, which runs outside a transaction (batched).
"""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt, Integer, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-30T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "distributor totals, team counts, counted inviter of a binding"


def _params(**extra: Any) -> dict[str, Any]:
    return {
        "null": False,
        "primary_key": False,
        "unique": False,
        "index": False,
        "index_method": IndexMethod.btree,
        "choices": None,
        "db_column_name": None,
        "secret": False,
        **extra,
    }


TABLES = {
    ("DistributorTotals", "distributor_totals"): [
        ("tenant_id", Varchar, {"length": 32, "default": ""}),
        ("distributor_id", Varchar, {"length": 64, "default": ""}),
        ("shard", Integer, {"default": 0}),
        *(
            (name, BigInt, {"default": 0})
            for name in ("credited_fen", "reversed_fen", "absorbed_fen", "settled_fen", "paid_fen")
        ),
    ],
    ("TeamCounts", "team_counts"): [
        ("tenant_id", Varchar, {"length": 32, "default": ""}),
        ("user_id", Varchar, {"length": 64, "default": ""}),
        ("shard", Integer, {"default": 0}),
        *((name, BigInt, {"default": 0}) for name in ("level1", "level2", "level3")),
    ],
    ("TeamTree", "team_trees"): [
        ("tenant_id", Varchar, {"length": 32, "default": ""}),
        ("version", BigInt, {"default": 0}),
    ],
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="liebian", description=DESCRIPTION)
    for (class_name, tablename), columns in TABLES.items():
        manager.add_table(class_name=class_name, tablename=tablename, schema=None, columns=None)
        for name, column_class, params in columns:
            manager.add_column(
                table_class_name=class_name,
                tablename=tablename,
                column_name=name,
                db_column_name=name,
                column_class_name=column_class.__name__,
                column_class=column_class,
                params=_params(**params),
                schema=None,
            )
    manager.add_column(
        table_class_name="UserBinding",
        tablename="user_bindings",
        column_name="team_inviter_id",
        db_column_name="team_inviter_id",
        column_class_name="Varchar",
        column_class=Varchar,
        params=_params(length=64, default=None, null=True),
        schema=None,
    )
    return manager
