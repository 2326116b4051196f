"""PostgreSQL: the orders that arrive together, written by one statement (server.batching).

Each order of the one-statement path (:mod:`server.orders.fast`) alone costs the database a
round trip, an executor start over six tables and some twenty indexes, and a commit: about
450 us of server CPU and 130 us of ours, against 135 us and 25 us per order in a batch of eight
(measured sequentially; ``python -m bench api`` for the throughput). Orders of one tenant and
one program shape (rates, self-purchase, tiers) share a batch.

The statement is the single order's (the same upline read, the same integer arithmetic, the same
steps) over arrays with one element per order; ``n``, the order's place in the batch, ties its
rows together. Rules:

- an order id is in a batch at most once: a second request for an id already waiting takes the
  full path, which replays it (or answers 409) once the first is written;
- the batch is one statement, so one transaction: if it fails, nothing of it is written and
  every order of it takes the full path on its own (which writes, replays or reports the error);
- an order the batch did not insert (its id existed) takes the full path: a replay;
- rows that other batches in flight may also insert (an order id sent again meanwhile, a new
  buyer) are inserted in key order, so two batches never wait for each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from server.batching import Batcher
from server.common import now_us
from server.db import Connection
from server.ledger.totals import PG_CREDIT_STEP
from server.queries import upline_joins

__all__ = ["BatchKey", "BatchOrder", "OrderBatcher"]

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
  {upline_joins("x.user_id", "x.paid_at")}
),
{{chain}},
o AS (
  INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, campaign_id, upline,
                      rates_bps, event_id, request_hash, created_at_us)
  SELECT $1, ctx.order_id, ctx.user_id, ctx.amount, ctx.paid_at, ctx.campaign_id,
    (SELECT COALESCE(json_agg(c.d ORDER BY c.lvl), '[]')::text FROM chain c WHERE c.n = ctx.n),
    (SELECT COALESCE(json_agg(c.rate ORDER BY c.lvl), '[]')::text FROM chain c WHERE c.n = ctx.n),
    ctx.event_id, ctx.fingerprint, $11
  FROM ctx ORDER BY ctx.order_id
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
  ORDER BY 2
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


class BatchOrder(NamedTuple):
    order_id: str
    user_id: str
    amount_fen: int
    paid_at_us: int
    campaign_id: str | None
    fingerprint: str
    available_at_us: int


# (distributor_id, level, amount_fen) of each entry an order wrote
Written = list[tuple[str, int, int]]


class OrderBatcher(Batcher[BatchKey, BatchOrder, Written]):
    def conflicts(self, item: BatchOrder, waiting: Sequence[BatchOrder]) -> bool:
        # the same id twice in one statement: the second replays the first (full path)
        return any(o.order_id == item.order_id for o in waiting)

    async def run(
        self, conn: Connection, key: BatchKey, items: Sequence[BatchOrder]
    ) -> Sequence[Written | None]:
        rows = await conn.fetch(
            BATCH_TIERS_SQL if key.tiered else BATCH_SQL,
            key.tenant_id,
            *([getattr(o, f) for o in items] for f in BatchOrder._fields),
            list(key.rates),
            key.self_purchase,
            now_us(),
            *key.tiered,
        )
        written: dict[str, Written] = {}
        for r in rows:
            entries = written.setdefault(r["order_id"], [])
            if r["distributor_id"] is not None:
                entries.append((r["distributor_id"], r["level"], int(r["amount_fen"])))
        return [written.get(o.order_id) for o in items]
