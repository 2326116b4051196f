"""Group commit on PostgreSQL: the writes that arrive together, sent as one statement.

A hot write (an order, a first binding) alone costs the database a round trip, an executor start
over every table and index it touches, and a commit, several times the cost of its rows. A
:class:`Batcher` collects the writes of one *key* (a tenant and what its statement needs) that
arrive while a batch of that key is being written, and writes them with one statement over
arrays (one element per write). A write that finds no batch in flight is sent at once (a batch
of one), so a quiet server adds no latency; under load a batch holds what arrived during one
round trip.

Rules every batcher keeps:

- a batch is one statement, so one transaction: if it fails, nothing of it is written, and
  every write of it is answered ``None``: the caller's full path then writes it alone (and
  reports its own error if it has one);
- a write that would conflict with one already waiting (:meth:`Batcher.conflicts`, e.g. the same
  order id twice) is answered ``None`` at once: the full path decides it;
- the statement runs on the store's batch pool, whose connections plan generically
  (:meth:`server.db.PostgresDatabase.batch_pool`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

from server.db import Connection, Database, PostgresDatabase

__all__ = ["Batcher"]

log = logging.getLogger("liebian.batching")

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - an item
R = TypeVar("R")

# The most writes in one statement, and batches of one key in flight at once (each on its own
# connection of the batch pool: a batch of 8 costs the database ~135 us a write against ~450 us
# alone, and four in flight keep both a small server's cores busy).
MAX_BATCH = 8
IN_FLIGHT = 4


class Batcher(ABC, Generic[K, I, R]):
    """One per store and kind of write; see the module's rules."""

    _instances: weakref.WeakKeyDictionary[Database, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instances = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, db: Database) -> Any:
        """The batcher of this kind for ``db``, or None where writes are not batched
        (SQLite: its transactions already share one commit, server.db)."""
        if not isinstance(db, PostgresDatabase) or not db.batches:
            return None
        batcher = cls._instances.get(db)
        if batcher is None:
            batcher = cls._instances[db] = cls(db)
        return batcher

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._waiting: dict[K, list[tuple[I, asyncio.Future[R | None]]]] = {}
        self._running: dict[K, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @abstractmethod
    def conflicts(self, item: I, waiting: Sequence[I]) -> bool:
        """Whether ``item`` may not share a statement with the writes already waiting."""

    @abstractmethod
    async def run(self, conn: Connection, key: K, items: Sequence[I]) -> Sequence[R | None]:
        """Write ``items`` with one statement on ``conn``: each one's result, None for a
        write the statement did not make (the caller's full path decides it)."""

    async def write(self, key: K, item: I) -> R | None:
        """Write ``item`` in the next batch of ``key``; None: take the full path."""
        waiting = self._waiting.setdefault(key, [])
        if self.conflicts(item, [w for w, _ in waiting]):
            return None
        done: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        waiting.append((item, done))
        if self._running.get(key, 0) < IN_FLIGHT:
            self._running[key] = self._running.get(key, 0) + 1
            task = asyncio.create_task(self._flush(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(done)

    async def _flush(self, key: K) -> None:
        try:
            await asyncio.sleep(0)  # the writes that arrive in this turn of the loop join in
            while waiting := self._waiting.get(key):
                batch, self._waiting[key] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                await self._write(key, batch)
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
                if not self._waiting.get(key):
                    self._waiting.pop(key, None)

    async def _write(self, key: K, batch: Sequence[tuple[I, asyncio.Future[R | None]]]) -> None:
        items = [item for item, _ in batch]
        try:
            async with self._db.batch_connection() as conn:
                results: Sequence[R | None] = await self.run(conn, key, items)
        except Exception:  # nothing of the batch was written: each write takes the full path
            log.warning("a batch of %d failed; writing each alone", len(batch), exc_info=True)
            results = [None] * len(batch)
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)
