"""Run Piccolo migrations forwards for the configured database."""

from __future__ import annotations

import os

from server.settings import Settings


async def migrate(settings: Settings) -> None:
    """Bring the schema of ``settings.database_url`` up to date (idempotent)."""
    os.environ["LIEBIAN_DATABASE_URL"] = settings.database_url
    os.environ["PICCOLO_CONF"] = "server.piccolo_conf"
    if settings.engine == "sqlite":
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards(app_name="liebian")
    if not result.success:
        raise RuntimeError(f"migration failed: {result.message}")
