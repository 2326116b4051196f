from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-29T14:45:26:855547"
VERSION = "1.38.0"
DESCRIPTION = "settlement lines keep their rendered CSV cells"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="liebian", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="SettlementLine",
        tablename="settlement_lines",
        column_name="csv_cells",
        db_column_name="csv_cells",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
