"""Piccolo app registration: the tables and where their migrations live."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from server.tables import TABLES

APP_CONFIG = AppConfig(
    app_name="liebian",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=TABLES,
    migration_dependencies=[],
    commands=[],
)
