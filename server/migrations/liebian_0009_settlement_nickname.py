from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-29T14:22:05:810531"
VERSION = "1.38.0"
DESCRIPTION = "settlement lines keep the nickname of their date"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="liebian", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="SettlementLine",
        tablename="settlement_lines",
        column_name="nickname",
        db_column_name="nickname",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 200,
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
