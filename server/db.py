"""One small store interface over two engines.

``Database`` is what services use: ``fetch``/``fetchrow``/``fetchval``/``execute`` and
``transaction()``. SQL is written once with PostgreSQL's ``$1`` placeholders; the SQLite
engine rewrites them to ``?1`` (SQLite's numbered parameters), so most statements are shared.

Why not Piccolo's engines on the hot path (measured on this machine kind, see README):
- PostgreSQL: a pool opened at start-up; one round trip per request where it matters, so hot
  paths send a single statement (a CTE) instead of a transaction of several.
- SQLite: one long-lived connection per process (WAL, synchronous=NORMAL). Piccolo opens a
  connection per transaction, which under concurrency either fails with "database is locked"
  or serialises on the file lock at a fraction of the speed. Every statement and transaction
  here runs under one ``asyncio.Lock``; SQLite calls are synchronous and fast, so a transaction
  that awaits nothing but its own statements never yields to the event loop while open.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import asyncpg

__all__ = ["Connection", "Database", "PostgresDatabase", "Row", "SqliteDatabase", "UniqueViolation"]


class Row(Protocol):
    def __getitem__(self, key: str | int) -> Any: ...
    def keys(self) -> Any: ...


class UniqueViolation(Exception):
    """A unique constraint rejected a write; the engine-specific error is chained."""


AfterCommit = Callable[[], Awaitable[None]]


class Connection(ABC):
    """Statements on one connection (inside a transaction, or the pool/lock for one call)."""

    engine: str
    _after_commit: list[AfterCommit] | None = None
    # Set by the app when leaderboards are mirrored to Redis (a RedisBoard): services hand it
    # score changes and holds after the transaction that wrote them commits.
    board_mirror: Any = None

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once the surrounding transaction commits (at once outside one)."""
        if self._after_commit is None:
            raise RuntimeError("after_commit outside a transaction: await the work directly")
        self._after_commit.append(callback)

    @property
    def in_transaction(self) -> bool:
        return self._after_commit is not None

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abstractmethod
    async def fetch_values(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Rows read by position only: on SQLite, plain tuples (twice as fast to build as
        ``sqlite3.Row`` for bulk reads such as exports)."""

    @abstractmethod
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> None: ...

    @abstractmethod
    async def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None: ...


class Database(Connection):
    @abstractmethod
    def transaction(self) -> Any:
        """``async with db.transaction() as tx:`` commits on exit, rolls back on error."""

    @abstractmethod
    async def close(self) -> None: ...


# --------------------------------------------------------------------------- PostgreSQL


class _PgConn(Connection):
    engine = "postgres"

    def __init__(self, conn: Any) -> None:
        self._c = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._c.fetch(sql, *args))
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc

    async def fetch_values(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self._c.fetch(sql, *args)  # Records index like tuples
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            row: Row | None = await self._c.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        return row

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            await self._c.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc

    async def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        try:
            await self._c.executemany(sql, args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc


async def _keep_session(_: Any) -> None:
    return None


_connections_opened = itertools.count()


async def _init_session(conn: Any) -> None:
    # Each pooled connection writes its own shard of a hot distributor's running totals
    # (server.ledger.totals), so concurrent orders of one process never share a row.
    await conn.execute(
        "SELECT set_config('liebian.shard', $1, false)", str(next(_connections_opened))
    )


class PostgresDatabase(_PgConn, Database):
    """An asyncpg pool; plain calls borrow a connection for one statement."""

    def __init__(self, pool: Any, dsn: str | None = None) -> None:
        super().__init__(pool)
        self.pool = pool
        self._dsn = dsn
        self._batch_pool: Any = None
        self._batch_pool_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, dsn: str, *, size: int = 20) -> PostgresDatabase:
        return cls(await _create_pool(dsn, min(4, size), size, {}), dsn)

    @property
    def batches(self) -> bool:
        """Whether :meth:`batch_pool` can open a pool (server.batching)."""
        return self._dsn is not None

    async def batch_pool(self) -> Any:
        """A second, small pool for statements that write a *batch* of requests (arrays of
        parameters, one element per request), opened on first use; None if this database was
        not opened from a DSN. Its connections plan every statement generically: the planner
        would otherwise plan such a statement anew on each call (its estimates follow the
        arrays' lengths), which costs more than the statement itself (~0.6 ms)."""
        if self._dsn is None:
            return None
        if self._batch_pool is None:
            async with self._batch_pool_lock:
                if self._batch_pool is None:
                    self._batch_pool = await _create_pool(
                        self._dsn, 1, BATCH_POOL_SIZE, {"plan_cache_mode": "force_generic_plan"}
                    )
        return self._batch_pool

    @asynccontextmanager
    async def batch_connection(self) -> AsyncIterator[Connection]:
        """A connection of :meth:`batch_pool` for one statement of a batch."""
        pool = await self.batch_pool()
        if pool is None:
            raise RuntimeError("this database was not opened from a DSN: it writes no batches")
        async with pool.acquire() as conn:
            yield _PgConn(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        tx = _PgConn(None)
        tx._after_commit = []
        tx.board_mirror = self.board_mirror
        async with self.pool.acquire() as conn:
            tx._c = conn
            async with conn.transaction():
                yield tx
        await _run_after_commit(tx)

    async def close(self) -> None:
        if self._batch_pool is not None:
            await self._batch_pool.close()
        await self.pool.close()


# Batches in flight at once per process (server.batching): a few, so that one is written while
# the next fills, without taking many of the server's connections.
BATCH_POOL_SIZE = 4


async def _create_pool(dsn: str, min_size: int, max_size: int, settings: dict[str, str]) -> Any:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        # Statements are few and reused; the default cache is fine, but JIT is not worth
        # it for short OLTP statements.
        server_settings={"jit": "off", **settings},
        # The default reset on release (UNLISTEN, RESET ALL, advisory unlock, CLOSE ALL) is a
        # round trip per request; this app uses none of those session features (its only
        # locks are transaction-scoped), so there is nothing to reset.
        reset=_keep_session,
        init=_init_session,
    )


async def _run_after_commit(tx: Connection) -> None:
    callbacks, tx._after_commit = tx._after_commit or [], None
    for callback in callbacks:
        await callback()


# --------------------------------------------------------------------------- SQLite

_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=1024)
def _sqlite_sql(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


class _SqliteConn(Connection):
    engine = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def _run(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._c.execute(_sqlite_sql(sql), args)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._run(sql, args).fetchall()

    async def fetch_values(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        cursor = self._c.cursor()
        cursor.row_factory = None
        rows: list[Sequence[Any]] = cursor.execute(_sqlite_sql(sql), args).fetchall()
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._run(sql, args).fetchone()
        return row

    async def execute(self, sql: str, *args: Any) -> None:
        self._run(sql, args)

    async def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        try:
            self._c.executemany(_sqlite_sql(sql), args)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise


def open_sqlite(
    path: str, factory: type[sqlite3.Connection] = sqlite3.Connection
) -> sqlite3.Connection:
    """A connection tuned for one long-lived writer per process (``factory``: a subclass of
    ``sqlite3.Connection`` to open, e.g. one that records statements for ``bench floor``)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=factory)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA cache_size=-65536")
    # Every transaction is a savepoint of the group commit (SqliteDatabase.transaction): a page a
    # savepoint changes first is copied to its statement journal, a temporary *file* by default.
    # In memory, a 3-level order's entries cost 42 us instead of 120 (python -m bench api).
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


class Checkpointer:
    """Copies the WAL into the database file on a thread of its own (``wal_checkpoint(PASSIVE)``
    every ``INTERVAL`` seconds, on a connection of its own), so the serving connection never
    does: with SQLite's automatic checkpoint (every 1,000 WAL pages) the commit that crossed the
    mark copied them and synced the file on the event loop, 53 of a sequential order's 169 us
    of commit on average. A passive checkpoint takes no lock a writer waits for; the thread
    spends its time in SQLite's C code, without the GIL.

    A writer starts the WAL again from its beginning only when a checkpoint has copied every
    frame and no transaction has written since; under writes that never pause (a load test, a
    busy hour) the passive checkpoints never find that moment and the WAL grew without end
    (777 MB after 60,000 orders back to back). So when a pass leaves more than
    ``RESTART_FRAMES`` frames in the WAL, the thread follows it with ``wal_checkpoint(RESTART)``:
    writers wait while it copies what was written since the pass (a few milliseconds; the
    serving connection's busy timeout covers it; a restart that fails is tried again a second
    later) and the next write starts the WAL again, cut
    back to ``JOURNAL_LIMIT`` bytes (``PRAGMA journal_size_limit`` of the serving connection).
    Should writes still outrun the thread (its copies are I/O), the store opens no new group
    once the WAL file is past twice that (:meth:`over_limit`) until the thread, woken at once,
    has restarted it (:meth:`restarted`): writers wait without blocking the event loop, and
    the WAL stays bounded whatever the load. Nothing can restart the WAL while another
    process reads an older snapshot (a long read transaction); then the wait ends after
    ``RESTART_WAIT`` seconds and writers do not wait again for ``BACKOFF`` seconds (at most a
    tenth of the time lost while such a reader lasts, and the WAL grows meanwhile, as it
    would under SQLite's own checkpoints).
    """

    INTERVAL = 0.2  # seconds between passes
    RESTART_FRAMES = 4096  # 16 MB of 4 KB pages
    JOURNAL_LIMIT = 64 * 2**20
    RESTART_WAIT = 1.0
    BACKOFF = 10.0

    def __init__(self, path: str) -> None:
        self._path = path
        self._wal = Path(path + "-wal")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._waits_from = 0.0  # the loop's clock: no wait before (after a wait that failed)
        # the last checkpoint's (busy, frames in the WAL, frames copied)
        self.last: tuple[int, int, int] | None = None
        self.restarts = 0
        self._thread = threading.Thread(
            target=self._run, name="liebian-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # RESTART holds the writers' lock while it waits for readers: a short wait, so that a
        # reader it cannot wait out (another process's long read) costs writers 10 ms, once a
        # second (the back-off below), not the whole time it lasts.
        conn.execute("PRAGMA busy_timeout=10")
        next_restart = 0.0
        try:
            while True:
                self._wake.wait(self.INTERVAL)
                asked = self._wake.is_set()  # the store waits for a restart: try at once
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    self.last = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    over = self.last is not None and (
                        self.last[1] > self.RESTART_FRAMES or self.over_limit()
                    )
                    if over and (asked or time.monotonic() >= next_restart):
                        restarted = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                        if restarted is not None and not restarted[0]:
                            self.restarts += 1
                        else:
                            next_restart = time.monotonic() + 1.0
                        self.last = restarted
                except sqlite3.Error:  # busy with another process's checkpoint: next time
                    _log.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            conn.close()

    def over_limit(self) -> bool:
        """The WAL file is past twice ``JOURNAL_LIMIT``: this thread is not keeping up."""
        try:
            return self._wal.stat().st_size > 2 * self.JOURNAL_LIMIT
        except OSError:
            return False

    async def restarted(self) -> None:
        """Wake this thread and return once it has restarted the WAL, or after
        ``RESTART_WAIT`` seconds (then no wait for ``BACKOFF`` seconds)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._waits_from:
            return
        seen = self.restarts
        deadline = loop.time() + self.RESTART_WAIT
        self._wake.set()
        while self.restarts == seen:
            if loop.time() >= deadline:
                self._waits_from = loop.time() + self.BACKOFF
                _log.warning("the WAL could not be restarted (a long reader?): writes go on")
                return
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)


_log = logging.getLogger("liebian.db")


class SqliteDatabase(Database):
    engine = "sqlite"

    def __init__(self, conn: sqlite3.Connection, checkpointer: Checkpointer | None = None) -> None:
        self._conn = conn
        self._inner = _SqliteConn(conn)
        self._lock = asyncio.Lock()
        self._group: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._checkpointer = checkpointer

    @classmethod
    def connect(cls, path: str) -> SqliteDatabase:
        conn = open_sqlite(path)
        if path in ("", ":memory:") or path.startswith("file:"):
            return cls(conn)  # no file of its own to checkpoint into: SQLite's own checkpoints
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={Checkpointer.JOURNAL_LIMIT}")
        return cls(conn, Checkpointer(path))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return await self._inner.fetch(sql, *args)

    async def fetch_values(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        async with self._lock:
            return await self._inner.fetch_values(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._lock:
            return await self._inner.fetchrow(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        async with self._lock:
            await self._inner.execute(sql, *args)

    async def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        async with self._lock:
            await self._inner.executemany(sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A savepoint inside the open *group* transaction; returns once the group commits.

        Group commit: the transactions that run while a commit is pending share one
        ``BEGIN IMMEDIATE ... COMMIT`` (a commit is most of a small write's cost on SQLite),
        each in its own savepoint, so one that fails rolls back alone. The caller continues
        only after the commit, so a response never reports a write that is not durable.
        """
        tx = _SqliteConn(self._conn)
        tx._after_commit = []
        tx.board_mirror = self.board_mirror
        async with self._lock:
            if self._group is None:
                if self._checkpointer is not None and self._checkpointer.over_limit():
                    # The checkpoint thread fell behind the writers: no new group (nor read:
                    # they wait for the lock) until it has restarted the WAL.
                    await self._checkpointer.restarted()
                # IMMEDIATE takes the write lock up front: a read-then-write transaction cannot
                # fail half-way with SQLITE_BUSY when another process writes.
                self._conn.execute("BEGIN IMMEDIATE")
                self._group = asyncio.get_running_loop().create_future()
                self._flusher = asyncio.create_task(self._commit_group())
            group = self._group
            self._conn.execute("SAVEPOINT tx")
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK TO tx")
                self._conn.execute("RELEASE tx")
                raise
            self._conn.execute("RELEASE tx")
        await asyncio.shield(group)
        await _run_after_commit(tx)

    async def _commit_group(self) -> None:
        # One turn of the loop lets the transactions already waiting for the lock join in
        # (the lock is FIFO: they run before this commit); later arrivals open the next group.
        await asyncio.sleep(0)
        async with self._lock:
            group, self._group = self._group, None
            if group is None:
                return
            try:
                self._conn.execute("COMMIT")
            except Exception as exc:  # every transaction of the group reports it
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                group.set_exception(exc)
                return
            group.set_result(None)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        async with self._lock:
            self._conn.close()  # the last connection to close checkpoints the rest


async def connect(database_url: str, *, pool_size: int = 20) -> Database:
    """Open the engine a ``LIEBIAN_DATABASE_URL`` names."""
    if database_url.startswith("sqlite:"):
        return SqliteDatabase.connect(database_url.removeprefix("sqlite:///"))
    return await PostgresDatabase.connect(database_url, size=pool_size)
