"""The SQLite store's group commit: shared commits, isolated failures, durable before return."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from server.db import SqliteDatabase


def run(coro):
    return asyncio.run(coro)


async def _table(path) -> SqliteDatabase:
    db = SqliteDatabase.connect(str(path))
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    return db


def test_concurrent_transactions_share_commits_and_fail_alone(tmp_path):
    path = tmp_path / "g.db"

    async def main() -> list[object]:
        db = await _table(path)
        commits = 0
        original = db._commit_group

        async def counting() -> None:
            nonlocal commits
            commits += 1
            await original()

        db._commit_group = counting  # type: ignore[method-assign]

        async def write(n: int) -> int:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES ($1, $2)", f"k{n}", n)
                if n == 7:
                    await tx.execute("INSERT INTO t VALUES ($1, $2)", "k0", 0)  # duplicate key
            # Durable on return: another connection already sees it.
            seen = sqlite3.connect(path).execute("SELECT v FROM t WHERE k = ?", (f"k{n}",))
            return seen.fetchone()[0]

        results = await asyncio.gather(*(write(n) for n in range(20)), return_exceptions=True)
        rows = await db.fetch("SELECT k FROM t ORDER BY v")
        await db.close()
        return [results, [r[0] for r in rows], commits]

    results, keys, commits = run(main())
    assert [r for n, r in enumerate(results) if n != 7] == [n for n in range(20) if n != 7]
    assert type(results[7]).__name__ == "UniqueViolation"
    assert keys == [f"k{n}" for n in range(20) if n != 7]  # the failed one left nothing
    assert 1 <= commits < 20  # commits were shared


def test_after_commit_callbacks_run_after_the_group_commits(tmp_path):
    path = tmp_path / "a.db"

    async def main() -> list[int]:
        db = await _table(path)
        seen: list[int] = []

        async def check() -> None:
            row = sqlite3.connect(path).execute("SELECT COUNT(*) FROM t").fetchone()
            seen.append(row[0])

        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES ('a', 1)")
            tx.after_commit(check)
        await db.close()
        return seen

    assert run(main()) == [1]


def test_after_commit_outside_a_transaction_is_refused(tmp_path):
    async def main() -> None:
        db = await _table(tmp_path / "b.db")
        try:
            with pytest.raises(RuntimeError):
                db.after_commit(lambda: asyncio.sleep(0))
        finally:
            await db.close()

    run(main())


def test_savepoint_journals_stay_in_memory(tmp_path):
    # Each transaction runs in a savepoint of the group commit; its statement journal must not
    # be a temporary file (that tripled the cost of an order's ledger insert).
    db = SqliteDatabase.connect(str(tmp_path / "t.db"))
    assert db._conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
    assert db._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    asyncio.run(db.close())


def test_the_wal_is_checkpointed_off_the_serving_connection(tmp_path):
    # The serving connection never checkpoints (a commit would copy pages and sync the file on
    # the event loop); a thread of the store does, and stops with it.
    path = str(tmp_path / "c.db")

    async def run() -> tuple[Any, Any]:
        db = SqliteDatabase.connect(path)
        assert db._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        checkpointer = db._checkpointer
        assert checkpointer is not None
        await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        for n in range(200):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (v) VALUES ($1)", "x" * 2000 + str(n))
        state = None
        for _ in range(100):  # until one of its checkpoints copied every frame of the WAL
            state = checkpointer.last
            if state is not None and state[1] > 0 and state[1] == state[2]:
                break
            await asyncio.sleep(0.05)
        await db.close()
        return state, checkpointer

    (busy, frames, copied), checkpointer = asyncio.run(run())
    assert frames > 0 and frames == copied, (busy, frames, copied)
    assert not checkpointer._thread.is_alive()


def test_the_wal_stays_bounded_when_writes_never_pause(tmp_path, monkeypatch):
    # Measured: 60,000 orders back to back grew the WAL to 777 MB (bench api's load): a
    # passive checkpoint copies the frames but never finds the WAL idle, so writers append to
    # it forever. Past RESTART_FRAMES the checkpointer restarts it (writers wait a moment);
    # past twice the journal limit (the thread behind) the commit checkpoints itself.
    from server.db import Checkpointer

    monkeypatch.setattr(Checkpointer, "INTERVAL", 0.01, raising=False)
    monkeypatch.setattr(Checkpointer, "RESTART_FRAMES", 256, raising=False)
    monkeypatch.setattr(Checkpointer, "JOURNAL_LIMIT", 2**20, raising=False)
    path = tmp_path / "w.db"
    wal = tmp_path / "w.db-wal"

    async def run() -> tuple[int, int, int]:
        db = await _table(path)
        written = largest = 0
        deadline = asyncio.get_running_loop().time() + 2.0

        async def writer(w: int) -> None:
            nonlocal written, largest
            n = 0
            while asyncio.get_running_loop().time() < deadline:
                async with db.transaction() as tx:
                    key = f"{w}-{n}-" + "x" * 4000
                    await tx.execute("INSERT INTO t (k, v) VALUES ($1, $2)", key, n)
                written += 4000
                n += 1
                largest = max(largest, wal.stat().st_size if wal.exists() else 0)

        await asyncio.gather(*(writer(w) for w in range(16)))
        rows = (await db.fetchrow("SELECT COUNT(*) AS n FROM t"))["n"]
        await db.close()
        return written, largest, rows

    written, largest, rows = asyncio.run(run())
    assert rows * 4000 == written
    assert written > 24 * 2**20, written  # enough writes to grow the WAL far past the bound
    assert largest < 8 * 2**20, (largest, written)


def test_a_long_reader_elsewhere_slows_writes_once_then_the_wal_restarts_after_it(
    tmp_path, monkeypatch
):
    # Another process's read transaction pins the WAL: nothing can restart it while it lasts.
    # Writers wait for a restart once (RESTART_WAIT), then not again for BACKOFF seconds; once
    # the reader is gone, the next wait lets the thread restart the WAL.
    from server.db import Checkpointer

    for name, value in (("INTERVAL", 0.01), ("RESTART_FRAMES", 64), ("JOURNAL_LIMIT", 2**18),
                        ("RESTART_WAIT", 0.3), ("BACKOFF", 1.0)):  # fmt: skip
        monkeypatch.setattr(Checkpointer, name, value)
    path = tmp_path / "r.db"
    wal = tmp_path / "r.db-wal"

    async def write(db: SqliteDatabase, first: int, count: int) -> None:
        for n in range(first, first + count):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t (k, v) VALUES ($1, $2)", str(n), "x" * 4000)

    async def run() -> tuple[float, int, int, int]:
        db = await _table(path)
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM t").fetchone()  # a snapshot, held
        started = asyncio.get_running_loop().time()
        await write(db, 0, 400)  # 1.6 MB: far past twice the limit
        pinned = asyncio.get_running_loop().time() - started
        grown = wal.stat().st_size
        reader.execute("ROLLBACK")
        reader.close()
        deadline = asyncio.get_running_loop().time() + 10
        n = 1000
        while wal.stat().st_size > 2**18 and asyncio.get_running_loop().time() < deadline:
            await write(db, n, 10)  # after BACKOFF a wait again: the thread restarts the WAL
            n += 10
        rows = (await db.fetchrow("SELECT COUNT(*) AS n FROM t"))["n"]
        shrunk = wal.stat().st_size
        await db.close()
        return pinned, grown, shrunk, rows

    pinned, grown, shrunk, rows = asyncio.run(run())
    assert grown > 2 * 2**18  # the reader kept the WAL from restarting
    assert pinned < 2.0, pinned  # one wait of 0.3 s a second at most, not one per group (400)
    assert shrunk <= 2**18 and rows > 400
