"""The baseline every API figure is divided by: a bare Litestar app on the same engine.

- ``GET /get``: a small JSON document, no middleware, no database.
- ``POST /insert``: decodes a small JSON body (a msgspec struct, as the app does) and runs
  exactly one ``INSERT`` into the engine ``LIEBIAN_DATABASE_URL`` names: through an asyncpg pool
  opened in the lifespan on PostgreSQL, through one long-lived ``sqlite3`` connection in WAL mode
  with ``synchronous=NORMAL`` (autocommit: one implicit transaction per insert) on SQLite.

Served by the harness as ``uvicorn bench.bare_app:create_app --factory``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, Request, get, post

__all__ = ["SQLITE_INSERT", "create_app", "open_sqlite"]

TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_bare_inserts (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
    " amount_fen BIGINT NOT NULL, created_at_us BIGINT NOT NULL)"
)


SQLITE_INSERT = (
    "INSERT INTO bench_bare_inserts (id, user_id, amount_fen, created_at_us) VALUES (?, ?, ?, ?)"
)


def open_sqlite(path: str) -> sqlite3.Connection:
    """The bare app's one long-lived connection (autocommit: a transaction per statement)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute(TABLE_SQL)
    return conn


class Item(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    user_id: str
    amount_fen: int


@get("/get")
async def hello() -> dict[str, Any]:
    return {"status": "ok", "engine": "bare", "n": 1}


@post("/insert", status_code=201)
async def insert(request: Request[Any, Any, Any], data: Item) -> dict[str, Any]:
    now = time.time_ns() // 1000
    state = request.app.state
    if state.sqlite is not None:
        state.sqlite.execute(SQLITE_INSERT, (data.id, data.user_id, data.amount_fen, now))
    else:
        await state.pool.execute(
            "INSERT INTO bench_bare_inserts (id, user_id, amount_fen, created_at_us)"
            " VALUES ($1, $2, $3, $4)",
            data.id, data.user_id, data.amount_fen, now,
        )
    return {"id": data.id}


def create_app() -> Litestar:
    url = os.environ["LIEBIAN_DATABASE_URL"]
    pool_size = int(os.environ.get("LIEBIAN_DB_POOL_SIZE", "20"))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.sqlite = None
        app.state.pool = None
        if url.startswith("sqlite:"):
            app.state.sqlite = open_sqlite(url.removeprefix("sqlite:///"))
        else:
            pool = await asyncpg.create_pool(
                url, min_size=min(4, pool_size), max_size=pool_size,
                server_settings={"jit": "off"},
            )
            await pool.execute(TABLE_SQL)
            app.state.pool = pool
        try:
            yield
        finally:
            if app.state.sqlite is not None:
                app.state.sqlite.close()
            if app.state.pool is not None:
                await app.state.pool.close()

    return Litestar(route_handlers=[hello, insert], lifespan=[lifespan], debug=False)
