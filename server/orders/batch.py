"""PostgreSQL: the orders that arrive together, written by one statement (group commit).

Each order of the one-statement path (:mod:`server.orders.fast`) alone costs the database a
round trip, an executor start over six tables and some twenty indexes, and a commit: about
450 us of server CPU and 130 us of ours, against 135 us and 25 us per order in a batch of eight
(measured sequentially, ``python -m bench api`` for the throughput). So orders of one tenant and
one program shape (rates, self-purchase, tiers) that arrive while a batch is being written wait
for the next one; an order that finds nothing in flight is written at once (a batch of one), so
a quiet server adds no latency.

The statement is the single order's (the same upline read, the same integer arithmetic, the same
steps) over arrays with one element per order; ``n``, the order's place in the batch, ties its
rows together. Rules:

- an order id is in a batch at most once: a second request for an id already waiting takes the
  full path, which replays it (or answers 409) once the first is written;
- the batch is one statement, so one transaction: if it fails, nothing of it is written and
  every order of it takes the full path on its own (which writes, replays or reports the error);
- an order the batch did not insert (its id existed) takes the full path: a replay.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from typing import NamedTuple

from server.common import now_us
from server.db import Database, PostgresDatabase
from server.ledger.totals import PG_CREDIT_STEP
from server.queries import binding_active

__all__ = ["BatchKey", "OrderBatcher", "batcher_for"]

log = logging.getLogger("liebian.orders")

# The most orders in one statement (its arrays), and batches in flight per key at once.
MAX_BATCH = 8
IN_FLIGHT = 4

_UPLINE = """(
    CASE WHEN $10::bool AND ctx.buyer_active IS TRUE
         THEN ARRAY[ctx.user_id, ctx.l1, ctx.l2, ctx.l3]
         ELSE ARRAY[ctx.l1, ctx.l2, ctx.l3] END
  ) WITH ORDINALITY AS y(d, lvl)"""
_CHAIN = f"""chain AS (
  SELECT ctx.n, y.d, y.lvl::int AS lvl, ($9::int[])[y.lvl] AS rate,
         (ctx.amount * ($9::int[])[y.lvl]) / 10000 AS amt
  FROM ctx CROSS JOIN LATERAL unnest{_UPLINE}
  WHERE y.d IS NOT NULL AND y.lvl <= cardinality($9::int[])
)"""
# With tiers, as server.orders.fast's: $9 holds every tier's rates ($12 levels each, $13 tiers).
_TIERED_CHAIN = f"""credited AS (
  SELECT ctx.n, ctx.amount, y.d, y.lvl::int AS lvl
  FROM ctx CROSS JOIN LATERAL unnest{_UPLINE}
  WHERE y.d IS NOT NULL AND y.lvl <= $12::int
),
rated AS (
  SELECT c.n, c.amount, c.d, c.lvl,
    ($9::int[])[LEAST(GREATEST(COALESCE(dt.tier_level, 0), 0), $13::int - 1) * $12::int + c.lvl]
      AS rate
  FROM credited c
  LEFT JOIN distributors dt ON dt.tenant_id = $1 AND dt.distributor_id = c.d
),
chain AS (
  SELECT n, d, lvl, rate, (amount * rate) / 10000 AS amt FROM rated
)"""

_BATCH_SQL = f"""
WITH x AS (
  SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[],
                       $7::text[], $8::bigint[]) WITH ORDINALITY
    AS x(order_id, user_id, amount, paid_at, campaign_id, fingerprint, available_at, n)
),
ctx AS (
  SELECT x.*, b1.inviter_id AS l1, b2.inviter_id AS l2, b3.inviter_id AS l3, b1.event_id,
    (SELECT d.status = 'active' FROM distributors d
     WHERE d.tenant_id = $1 AND d.distributor_id = x.user_id) AS buyer_active
  FROM x
  LEFT JOIN user_bindings b1 ON b1.tenant_id = $1 AND b1.user_id = x.user_id
    AND {binding_active("b1", "x.paid_at")}
  LEFT JOIN user_bindings b2 ON b2.tenant_id = $1 AND b2.user_id = b1.inviter_id
    AND {binding_active("b2", "x.paid_at")}
  LEFT JOIN user_bindings b3 ON b3.tenant_id = $1 AND b3.user_id = b2.inviter_id
    AND {binding_active("b3", "x.paid_at")}
),
{{chain}},
o AS (
  INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, campaign_id, upline,
                      rates_bps, event_id, request_hash, created_at_us)
  SELECT $1, ctx.order_id, ctx.user_id, ctx.amount, ctx.paid_at, ctx.campaign_id,
    (SELECT COALESCE(json_agg(c.d ORDER BY c.lvl), '[]')::text FROM chain c WHERE c.n = ctx.n),
    (SELECT COALESCE(json_agg(c.rate ORDER BY c.lvl), '[]')::text FROM chain c WHERE c.n = ctx.n),
    ctx.event_id, ctx.fingerprint, $11
  FROM ctx ORDER BY ctx.n
  ON CONFLICT (tenant_id, order_id) DO NOTHING
  RETURNING order_id
),
e AS (
  INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level, order_id,
                              available_at_us, created_at_us, memo, dedupe_key)
  SELECT $1, chain.d, 'commission', chain.amt, chain.lvl, o.order_id, ctx.available_at, $11, '',
         'order:' || o.order_id || ':' || chain.lvl
  FROM o JOIN ctx ON ctx.order_id = o.order_id JOIN chain ON chain.n = ctx.n
  WHERE chain.amt > 0
  ORDER BY ctx.n, chain.lvl
  RETURNING order_id, distributor_id, level, amount_fen
),
u AS (
  INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us)
  SELECT DISTINCT $1, ctx.user_id, $11::bigint FROM o JOIN ctx ON ctx.order_id = o.order_id
  ON CONFLICT (tenant_id, user_id) DO NOTHING
  RETURNING 1
),{PG_CREDIT_STEP}
SELECT o.order_id, e.distributor_id, e.level, e.amount_fen
FROM o LEFT JOIN e ON e.order_id = o.order_id
"""
BATCH_SQL = _BATCH_SQL.replace("{chain}", _CHAIN)
BATCH_TIERS_SQL = _BATCH_SQL.replace("{chain}", _TIERED_CHAIN)


class BatchKey(NamedTuple):
    """What the orders of one batch share: the tenant and the program's shape."""

    tenant_id: str
    rates: tuple[int, ...]  # the program's rates, or every tier's, tier after tier
    self_purchase: bool
    tiered: tuple[int, ...]  # () or (levels, tiers)


class _Order(NamedTuple):
    order_id: str
    user_id: str
    amount_fen: int
    paid_at_us: int
    campaign_id: str | None
    fingerprint: str
    available_at_us: int
    # (distributor_id, level, amount_fen) of each entry written, or None: not written by the
    # batch (take the full path)
    done: asyncio.Future[list[tuple[str, int, int]] | None]


# One batcher per database (process): the orders of every request of this process.
_batchers: weakref.WeakKeyDictionary[Database, OrderBatcher] = weakref.WeakKeyDictionary()


def batcher_for(db: Database) -> OrderBatcher | None:
    if not isinstance(db, PostgresDatabase):
        return None
    batcher = _batchers.get(db)
    if batcher is None:
        batcher = _batchers[db] = OrderBatcher(db)
    return batcher


class OrderBatcher:
    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._waiting: dict[BatchKey, list[_Order]] = {}
        self._running: dict[BatchKey, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(
        self,
        key: BatchKey,
        order_id: str,
        user_id: str,
        amount_fen: int,
        paid_at_us: int,
        campaign_id: str | None,
        fingerprint: str,
        available_at_us: int,
    ) -> list[tuple[str, int, int]] | None:
        """Write the order in the next batch of ``key``: its entries as (distributor_id, level,
        amount_fen), or None when the batch did not write it (take the full path)."""
        waiting = self._waiting.setdefault(key, [])
        if any(o.order_id == order_id for o in waiting):
            return None  # the same id twice in one statement: the second replays the first
        done: asyncio.Future[list[tuple[str, int, int]] | None] = (
            asyncio.get_running_loop().create_future()
        )
        waiting.append(
            _Order(order_id, user_id, amount_fen, paid_at_us, campaign_id, fingerprint,
                   available_at_us, done)  # fmt: skip
        )
        if self._running.get(key, 0) < IN_FLIGHT:
            self._running[key] = self._running.get(key, 0) + 1
            task = asyncio.create_task(self._flush(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(done)

    async def _flush(self, key: BatchKey) -> None:
        try:
            await asyncio.sleep(0)  # the orders that arrive in this turn of the loop join in
            while True:
                waiting = self._waiting.get(key)
                if not waiting:
                    break
                batch, self._waiting[key] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                await self._write(key, batch)
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
                if not self._waiting.get(key):
                    self._waiting.pop(key, None)

    async def _write(self, key: BatchKey, batch: Sequence[_Order]) -> None:
        try:
            pool = await self._db.batch_pool()
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    BATCH_TIERS_SQL if key.tiered else BATCH_SQL,
                    key.tenant_id,
                    [o.order_id for o in batch],
                    [o.user_id for o in batch],
                    [o.amount_fen for o in batch],
                    [o.paid_at_us for o in batch],
                    [o.campaign_id for o in batch],
                    [o.fingerprint for o in batch],
                    [o.available_at_us for o in batch],
                    list(key.rates),
                    key.self_purchase,
                    now_us(),
                    *key.tiered,
                )
        except Exception:  # nothing of the batch was written: each order takes the full path
            log.warning("order batch of %d failed; writing each alone", len(batch), exc_info=True)
            for o in batch:
                if not o.done.done():
                    o.done.set_result(None)
            return
        written: dict[str, list[tuple[str, int, int]]] = {}
        for r in rows:
            entries = written.setdefault(r["order_id"], [])
            if r["distributor_id"] is not None:
                entries.append((r["distributor_id"], r["level"], int(r["amount_fen"])))
        for o in batch:
            if not o.done.done():
                o.done.set_result(written.get(o.order_id))
