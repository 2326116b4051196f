"""Piccolo configuration: the engine follows ``LIEBIAN_DATABASE_URL`` (PICCOLO_CONF points here)."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from server.settings import load_settings

_settings = load_settings()

DB: PostgresEngine | SQLiteEngine
if _settings.engine == "sqlite":
    _settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    DB = SQLiteEngine(path=str(_settings.sqlite_path))
else:
    DB = PostgresEngine(config={"dsn": _settings.database_url})

APP_REGISTRY = AppRegistry(apps=["server.piccolo_app"])
__all__ = ["APP_REGISTRY", "DB", "Path"]
