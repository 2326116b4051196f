"""PostgreSQL's one-statement order: read the upline, credit it and record the order at once.

The full path (:func:`server.orders.service.record_order`) reads the buyer's upline, computes
the commissions with :mod:`rewards` and writes in a second statement. When nothing else has
to move with the order (no open campaign counts it, no webhook endpoint wants
``commission.created``, no ``Idempotency-Key`` to record) this statement does both in one
round trip. It computes the same rule as ``rewards.split_commission`` -
floor(amount × rate / 10000) per level, nearest first - in integer SQL; the suite runs every
order test through both paths (PostgreSQL takes this one, SQLite the full one) and they must
agree to the fen. The distributors' running totals (:mod:`server.ledger.totals`) are one more
step of the same statement. ``None`` means "take the full path" (also for a replayed order id).
"""

from __future__ import annotations

from functools import lru_cache

from server.campaigns.scores import active_campaigns, matching
from server.common import now_us
from server.db import Database
from server.ledger.maturity import is_late, late_booking
from server.ledger.totals import PG_CREDIT_STEP
from server.orders.batch import BatchKey, BatchOrder, OrderBatcher
from server.orders.schemas import Commission, EntryStatus, OrderIn, OrderOut
from server.program.schemas import Program
from server.queries import DAY_US, upline_joins
from server.tiers.queries import Shape, order_steps
from server.tiers.service import promote_from_figures, sales_count, shape_of, window_starts
from server.webhooks.outbox import endpoints_for

__all__ = ["record_order_fast"]


_CHAIN = """chain AS (
  SELECT x.d, x.lvl::int AS lvl, ($9::int[])[x.lvl] AS rate,
         ($4::bigint * ($9::int[])[x.lvl]) / 10000 AS amt
  FROM ctx CROSS JOIN LATERAL unnest(
    CASE WHEN $8::bool AND ctx.buyer_active IS TRUE
         THEN ARRAY[$3::text, ctx.l1, ctx.l2, ctx.l3]
         ELSE ARRAY[ctx.l1, ctx.l2, ctx.l3] END
  ) WITH ORDINALITY AS x(d, lvl)
  WHERE x.d IS NOT NULL AND x.lvl <= cardinality($9::int[])
)"""
# With tiers: $9 holds every tier's rates, tier after tier ($12 levels each, $13 tiers), and
# each earner's rate is at their tier's row (rewards.tiers.rates_for, in SQL).
_TIERED_CHAIN = """credited AS (
  SELECT x.d, x.lvl::int AS lvl
  FROM ctx CROSS JOIN LATERAL unnest(
    CASE WHEN $8::bool AND ctx.buyer_active IS TRUE
         THEN ARRAY[$3::text, ctx.l1, ctx.l2, ctx.l3]
         ELSE ARRAY[ctx.l1, ctx.l2, ctx.l3] END
  ) WITH ORDINALITY AS x(d, lvl)
  WHERE x.d IS NOT NULL AND x.lvl <= $12::int
),
rated AS (
  SELECT c.d, c.lvl,
    ($9::int[])[LEAST(GREATEST(COALESCE(dt.tier_level, 0), 0), $13::int - 1) * $12::int + c.lvl]
      AS rate
  FROM credited c
  LEFT JOIN distributors dt ON dt.tenant_id = $1 AND dt.distributor_id = c.d
),
chain AS (
  SELECT d, lvl, rate, ($4::bigint * rate) / 10000 AS amt FROM rated
)"""

_ORDER_SQL = f"""
WITH ctx AS (
  SELECT b1.inviter_id AS l1, b2.inviter_id AS l2, b3.inviter_id AS l3, b1.event_id,
    (SELECT d.status = 'active' FROM distributors d
     WHERE d.tenant_id = $1 AND d.distributor_id = $3) AS buyer_active
  FROM (SELECT 1) AS one
  {upline_joins("$3", "$5")}
),
{{chain}},
o AS (
  INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, campaign_id, upline,
                      rates_bps, event_id, request_hash, created_at_us)
  SELECT $1, $2, $3, $4, $5, $6,
    (SELECT COALESCE(json_agg(d ORDER BY lvl), '[]')::text FROM chain),
    (SELECT COALESCE(json_agg(rate ORDER BY lvl), '[]')::text FROM chain),
    ctx.event_id, $7, $10
  FROM ctx
  ON CONFLICT (tenant_id, order_id) DO NOTHING
  RETURNING order_id
),
e AS (
  INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level, order_id,
                              available_at_us, created_at_us, memo, dedupe_key)
  SELECT $1, chain.d, 'commission', chain.amt, chain.lvl, o.order_id, $11, $10, '',
         'order:' || o.order_id || ':' || chain.lvl
  FROM o CROSS JOIN chain WHERE chain.amt > 0
  RETURNING distributor_id, level, amount_fen
),
u AS (
  INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us)
  SELECT $1, $3, $10 FROM o
  ON CONFLICT (tenant_id, user_id) DO NOTHING
  RETURNING 1
),{PG_CREDIT_STEP}
SELECT (SELECT COUNT(*) FROM o) AS inserted, e.distributor_id, e.level, e.amount_fen
FROM (SELECT 1) AS one LEFT JOIN e ON TRUE
"""
ORDER_SQL = _ORDER_SQL.replace("{chain}", _CHAIN)
ORDER_TIERS_SQL = _ORDER_SQL.replace("{chain}", _TIERED_CHAIN)


@lru_cache(maxsize=64)
def _promotion_sql(shape: Shape) -> str:
    """The tiered statement that also counts the order's tier sales and returns the
    candidates' figures (server.tiers.queries.order_steps; parameters from $14)."""
    steps, column = order_steps(shape, 14)
    head, tail = ORDER_TIERS_SQL.rsplit("\nSELECT (SELECT COUNT(*) FROM o) AS inserted,", 1)
    return f"{head}{steps}\nSELECT (SELECT COUNT(*) FROM o) AS inserted, {column},{tail}"


async def record_order_fast(
    db: Database,
    tenant_id: str,
    program: Program,
    data: OrderIn,
    paid_at_us: int,
    fingerprint: str,
) -> OrderOut | None:
    if db.engine != "postgres" or program.recruitment.mode == "threshold":
        return None  # the threshold mode's promotion is a step of the full statement
    if matching(
        await active_campaigns(db, tenant_id),
        paid_at_us,
        data.campaign_id,
        ("orders", "gmv", "commission"),
    ) or await endpoints_for(db, tenant_id, "commission.created"):
        return None
    now = now_us()
    available_at = paid_at_us + program.freeze_days * DAY_US
    tiers = program.tiers
    depth = len(program.commission_bps)
    rates = [r for t in tiers for r in t.commission_bps] if tiers else list(program.commission_bps)
    tiered: tuple[int, ...] = (depth, len(tiers)) if tiers else ()
    sql = ORDER_TIERS_SQL if tiers else ORDER_SQL
    if sales_count(program):  # the tier sales and the candidates' figures, in the statement
        sql = _promotion_sql(shape_of(program))
        tiered = (*tiered, len(tiers) - 1, *window_starts(program, now))
    elif not is_late(available_at, now) and (batcher := OrderBatcher.of(db)) is not None:
        # The common case: written with the orders that arrive meanwhile (server.orders.batch).
        written = await batcher.write(
            BatchKey(tenant_id, tuple(rates), program.self_purchase_commission, tiered),
            BatchOrder(data.order_id, data.user_id, data.amount_fen, paid_at_us,
                       data.campaign_id, fingerprint, available_at),
        )  # fmt: skip
        if written is None:
            return None  # the order id exists, or the batch failed: the full path
        return _result(data.order_id, available_at, now, written)
    # An order already mature when written is booked against the maturity checkpoint in the
    # same transaction (server.ledger.maturity); any other runs the statement alone, as it is.
    async with late_booking(db, tenant_id, available_at, now) as (conn, book):
        rows = await conn.fetch(
            sql,
            tenant_id,
            data.order_id,
            data.user_id,
            data.amount_fen,
            paid_at_us,
            data.campaign_id,
            fingerprint,
            program.self_purchase_commission,
            rates,
            now,
            available_at,
            *tiered,
        )
        if rows and rows[0]["inserted"]:
            await book(
                (r["distributor_id"], int(r["amount_fen"]))
                for r in rows
                if r["distributor_id"] is not None
            )
    if not rows or not rows[0]["inserted"]:
        return None  # the order id exists: the full path replays it (or answers 409)
    if len(tiered) > 2:
        await promote_from_figures(db, tenant_id, program, rows[0]["tier_figures"], data.order_id)
    return _result(
        data.order_id,
        available_at,
        now,
        [(r["distributor_id"], r["level"], int(r["amount_fen"]))
         for r in rows if r["distributor_id"] is not None],
    )  # fmt: skip


def _result(
    order_id: str, available_at: int, now: int, written: list[tuple[str, int, int]]
) -> OrderOut:
    """The answer for the entries written, as (distributor_id, level, amount_fen)."""
    status: EntryStatus = "pending" if available_at > now else "available"
    return OrderOut(
        order_id=order_id,
        commissions=[
            Commission(d, level, a, status) for d, level, a in sorted(written, key=_level)
        ],
    )


def _level(entry: tuple[str, int, int]) -> int:
    return entry[1]
