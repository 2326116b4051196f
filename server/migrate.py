"""Run Piccolo migrations forwards for the configured database."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from server.settings import Settings

__all__ = ["migrate", "run_ddl"]


def run_ddl(*statements: str) -> Callable[[], Awaitable[None]]:
    """A raw migration step running ``statements`` on the migration's engine."""

    async def run() -> None:
        from piccolo.engine import engine_finder

        engine = engine_finder()
        if engine is None:
            raise RuntimeError("no Piccolo engine configured (PICCOLO_CONF)")
        for sql in statements:
            await engine.run_ddl(sql)

    return run


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
