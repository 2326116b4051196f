"""The order write, per engine: one statement on PostgreSQL, one short transaction on SQLite.

Both do the same thing (and the same tests run on both): claim the Idempotency-Key (if any),
then insert the order unless its id exists, its commission entries, the buyer's first-seen
row, the leaderboard scores it moves and the credited distributors' running totals,
atomically. The key is claimed first and the order
is written only under a claim this request won, so concurrent requests sharing one key write
one order (on PostgreSQL a second claim waits on the unique index until the first commits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from server.campaigns.scores import write_increments
from server.db import Connection, Database
from server.ledger.maturity import late_booking
from server.ledger.totals import PG_CREDIT_STEP, add_entries
from server.queries import CLAIM_KEY_SQL, RELEASE_KEY_SQL, claim_key
from server.recruitment.service import THRESHOLD_CTE, THRESHOLD_SQL
from server.webhooks.outbox import write_outbox

__all__ = ["NewOrder", "Written", "insert_order"]

# written: this request wrote the order; order_exists: its id was taken (nothing written);
# key_taken: another request holds the Idempotency-Key (nothing written)
Written = Literal["written", "order_exists", "key_taken"]


class NewOrder(msgspec.Struct, frozen=True):
    tenant_id: str
    order_id: str
    user_id: str
    amount_fen: int
    paid_at_us: int
    campaign_id: str | None
    upline_json: str
    rates_json: str
    event_id: int | None
    request_hash: str
    now_us: int
    available_at_us: int
    # (distributor_id, amount_fen, level) per commission entry
    entries: Sequence[tuple[str, int, int]]
    idempotency_key: str | None
    idempotency_hash: str
    response_body: str
    # leaderboard changes (campaign_id, period_key, distributor_id, delta, reached_at_us),
    # merged and sorted so concurrent writers lock rows in one order
    scores: Sequence[tuple[str, str, str, int, int]] = ()
    # commission.created for these webhook endpoints, written to the outbox with the order
    webhook_endpoints: Sequence[str] = ()
    webhook_event_id: str = ""
    webhook_event_type: str = ""
    webhook_payload: str = ""
    # The program's recruitment threshold (threshold mode only): a buyer whose own paid orders,
    # net of refunds, reach it becomes a distributor in the order's transaction.
    threshold_fen: int | None = None
    # distributor.approved for these endpoints when the threshold promotes the buyer (the
    # event is written only if the promotion happened, in the same transaction)
    recruit_endpoints: Sequence[str] = ()
    recruit_event_id: str = ""
    recruit_payload: str = ""

    def order_columns(self) -> tuple[Any, ...]:
        """The ``orders`` row, in the column order of both inserts ($1..$11): tenant_id,
        order_id, user_id, amount_fen, paid_at_us, campaign_id, upline, rates_bps, event_id,
        request_hash, created_at_us."""
        return (
            self.tenant_id, self.order_id, self.user_id, self.amount_fen, self.paid_at_us,
            self.campaign_id, self.upline_json, self.rates_json, self.event_id,
            self.request_hash, self.now_us,
        )  # fmt: skip


_PG_INSERT = f"""
WITH k AS (
  {claim_key("SELECT $1, $16::text, $17, 201, $18, $11 WHERE $16::text IS NOT NULL")}
  RETURNING 1
), o AS (
  INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, campaign_id, upline,
                      rates_bps, event_id, request_hash, created_at_us)
  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
  WHERE $16::text IS NULL OR EXISTS (SELECT 1 FROM k)
  ON CONFLICT (tenant_id, order_id) DO NOTHING
  RETURNING order_id
), e AS (
  INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level, order_id,
                              available_at_us, created_at_us, memo, dedupe_key)
  SELECT $1, x.d, 'commission', x.a, x.l, o.order_id, $12, $11, '',
         'order:' || o.order_id || ':' || x.l
  FROM o CROSS JOIN unnest($13::text[], $14::bigint[], $15::int[]) AS x(d, a, l)
  RETURNING distributor_id, amount_fen
),{PG_CREDIT_STEP},
u AS (
  INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us)
  SELECT $1, $3, $11 FROM o
  ON CONFLICT (tenant_id, user_id) DO NOTHING
  RETURNING 1
), s AS (
  INSERT INTO leaderboard_scores (tenant_id, campaign_id, period_key, distributor_id, score,
                                  reached_at_us)
  SELECT $1, x.c, x.p, x.d, x.v, x.r
  FROM o CROSS JOIN unnest($19::text[], $20::text[], $21::text[], $22::bigint[], $23::bigint[])
    AS x(c, p, d, v, r)
  ON CONFLICT (tenant_id, campaign_id, period_key, distributor_id) DO UPDATE
  SET score = leaderboard_scores.score + excluded.score,
      reached_at_us = GREATEST(leaderboard_scores.reached_at_us, excluded.reached_at_us)
  RETURNING 1
), w AS (
  INSERT INTO webhook_outbox (tenant_id, endpoint_id, event_id, event_type, payload, attempts,
                              next_attempt_at_us, last_error, created_at_us)
  SELECT $1, x.endpoint, $25, $26, $27, 0, $11, '', $11
  FROM o CROSS JOIN unnest($24::text[]) AS x(endpoint)
  ON CONFLICT (tenant_id, endpoint_id, event_id) DO NOTHING
  RETURNING 1
){{threshold}}
SELECT (SELECT COUNT(*) FROM k) AS claimed, (SELECT COUNT(*) FROM o) AS inserted
"""
# The statement of the threshold recruitment mode: one more step, so every other mode's
# statement stays as it was.
_RECRUIT_HOOK = """, recruit_hook AS (
  INSERT INTO webhook_outbox (tenant_id, endpoint_id, event_id, event_type, payload, attempts,
                              next_attempt_at_us, last_error, created_at_us)
  SELECT $1, x.endpoint, $30, 'distributor.approved', $31, 0, $11, '', $11
  FROM (SELECT 1 FROM recruit LIMIT 1) AS r CROSS JOIN unnest($29::text[]) AS x(endpoint)
  ON CONFLICT (tenant_id, endpoint_id, event_id) DO NOTHING
  RETURNING 1
)"""
_PG_INSERT_THRESHOLD = _PG_INSERT.replace(
    "{threshold}", f", recruit AS ({THRESHOLD_CTE}){_RECRUIT_HOOK}"
)
_PG_INSERT = _PG_INSERT.replace("{threshold}", "")


async def _insert_pg(db: Connection, o: NewOrder) -> Written:
    threshold = (
        ()
        if o.threshold_fen is None
        else (o.threshold_fen, list(o.recruit_endpoints), o.recruit_event_id, o.recruit_payload)
    )
    row = await db.fetchrow(
        _PG_INSERT if o.threshold_fen is None else _PG_INSERT_THRESHOLD,
        *o.order_columns(),
        o.available_at_us,
        [e[0] for e in o.entries],
        [e[1] for e in o.entries],
        [e[2] for e in o.entries],
        o.idempotency_key,
        o.idempotency_hash,
        o.response_body,
        *([s[i] for s in o.scores] for i in range(5)),
        list(o.webhook_endpoints),
        o.webhook_event_id,
        o.webhook_event_type,
        o.webhook_payload,
        *threshold,
    )
    if row is None:  # cannot happen: the statement always returns one row
        raise RuntimeError("invariant broken: the order statement returned no row")
    if row["inserted"]:
        return "written"
    if o.idempotency_key is None:
        return "order_exists"
    if not row["claimed"]:
        return "key_taken"
    # The key was claimed but the order id was taken: release the key (nothing was written
    # under it), as a failed write does on every other route.
    await db.execute(RELEASE_KEY_SQL, o.tenant_id, o.idempotency_key)
    return "order_exists"


async def _insert_generic(db: Database, o: NewOrder) -> Written:
    async with db.transaction() as tx:
        if o.idempotency_key is not None:
            claimed = await tx.fetchval(
                CLAIM_KEY_SQL,
                o.tenant_id,
                o.idempotency_key,
                o.idempotency_hash,
                201,
                o.response_body,
                o.now_us,
            )
            if claimed is None:
                return "key_taken"
        inserted = await tx.fetchval(
            "INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, campaign_id,"
            " upline, rates_bps, event_id, request_hash, created_at_us)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING id",
            *o.order_columns(),
        )
        if inserted is None:
            if o.idempotency_key is not None:
                await tx.execute(RELEASE_KEY_SQL, o.tenant_id, o.idempotency_key)
            return "order_exists"
        if o.entries:
            await tx.executemany(
                "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level,"
                " order_id, available_at_us, created_at_us, memo, dedupe_key)"
                " VALUES ($1, $2, 'commission', $3, $4, $5, $6, $7, '', $8)",
                [
                    (
                        o.tenant_id,
                        d,
                        a,
                        level,
                        o.order_id,
                        o.available_at_us,
                        o.now_us,
                        f"order:{o.order_id}:{level}",
                    )
                    for d, a, level in o.entries
                ],
            )
            await add_entries(
                tx,
                o.tenant_id,
                [(d, "commission", a) for d, a, _ in o.entries],
                o.available_at_us,
                o.now_us,
            )
        await tx.execute(
            "INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id, user_id) DO NOTHING",
            o.tenant_id,
            o.user_id,
            o.now_us,
        )
        await write_increments(tx, o.tenant_id, o.scores)
        if o.webhook_endpoints:
            await write_outbox(
                tx,
                o.tenant_id,
                o.webhook_endpoints,
                o.webhook_event_id,
                o.webhook_event_type,
                o.webhook_payload,
                o.now_us,
            )
        if o.threshold_fen is not None:
            recruited = await tx.fetchval(
                THRESHOLD_SQL + " RETURNING 1", o.tenant_id, o.user_id, o.now_us, o.threshold_fen
            )
            if recruited is not None and o.recruit_endpoints:
                await write_outbox(tx, o.tenant_id, o.recruit_endpoints, o.recruit_event_id,
                                   "distributor.approved", o.recruit_payload, o.now_us)  # fmt: skip
    return "written"


async def insert_order(db: Database, order: NewOrder) -> Written:
    """Write the order under its Idempotency-Key; see :data:`Written` for the outcomes."""
    if db.engine == "postgres":
        # An order already mature when written is booked against the maturity checkpoint
        # (server.ledger.maturity); any other runs the statement alone, as it is.
        async with late_booking(db, order.tenant_id, order.available_at_us, order.now_us) as (
            conn,
            book,
        ):
            written = await _insert_pg(conn, order)
            if written == "written":
                await book((d, a) for d, a, _ in order.entries)
            return written
    return await _insert_generic(db, order)
