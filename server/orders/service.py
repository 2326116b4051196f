"""Paid orders and refunds: commissions to the upline and reversals, into the append-only ledger.

Rules (docs/domain.md): level k earns floor(amount × rate_k / 10000) fen; a refund reverses, per
entry, floor(c × Σr / A) − floor(c × Σr_before / A), so a full refund cancels to the fen.
Entries are ``pending`` until ``paid_at + freeze_days``. Replays return the first result.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from rewards.commission import cumulative_reversal, split_commission
from server.campaigns.scores import (
    active_campaigns,
    apply_increments,
    matching,
    merge,
    mirror_increments,
    order_increments,
    refund_increments,
)
from server.common import now_us
from server.db import Connection, Database
from server.errors import Conflict, FieldError, NotFound, Unprocessable
from server.ledger.service import entry_status
from server.ledger.totals import add_entries
from server.orders.fast import record_order_fast
from server.orders.schemas import (
    Commission,
    OrderIn,
    OrderOut,
    RefundIn,
    RefundOut,
    Reversal,
)
from server.orders.store import NewOrder, insert_order
from server.program.schemas import Program
from server.queries import DAY_US, ENTRY_LOCK_JOIN, upline_joins
from server.settlements.netting import lock_out_approvals
from server.tiers.service import promote_after_order, record_sales, upline_rates
from server.webhooks.outbox import endpoints_for, enqueue_event, event_envelope

__all__ = ["record_order", "record_refund"]

ORDER_METRICS = ("orders", "gmv", "commission")

_encoder = msgspec.json.Encoder()

# Everything the order needs to know, in one read: the buyer's active upline at paid_at,
# whether the buyer is an active distributor (self-purchase), and any earlier order or
# Idempotency-Key with the same id.
ORDER_CONTEXT_SQL = f"""
SELECT b1.inviter_id AS l1, b2.inviter_id AS l2, b3.inviter_id AS l3, b1.event_id,
  (SELECT d.status FROM distributors d WHERE d.tenant_id = $1 AND d.distributor_id = $2)
    AS buyer_status,
  (SELECT o.request_hash FROM orders o WHERE o.tenant_id = $1 AND o.order_id = $4)
    AS existing_hash,
  (SELECT k.request_hash FROM idempotency_keys k WHERE k.tenant_id = $1 AND k.key = $5)
    AS key_hash
FROM (SELECT 1 AS one) AS one
{upline_joins("$2", "$3")}
"""
# With tiers: each earner's tier index as well (the rates follow the earner's tier).
ORDER_CONTEXT_TIERS_SQL = ORDER_CONTEXT_SQL.replace(
    "SELECT b1.inviter_id AS l1, b2.inviter_id AS l2, b3.inviter_id AS l3, b1.event_id,",
    "SELECT b1.inviter_id AS l1, b2.inviter_id AS l2, b3.inviter_id AS l3, b1.event_id,"
    + "".join(
        f" (SELECT d.tier_level FROM distributors d WHERE d.tenant_id = $1"
        f" AND d.distributor_id = {who}) AS {name},"
        for who, name in (
            ("$2", "t0"), ("b1.inviter_id", "t1"), ("b2.inviter_id", "t2"), ("b3.inviter_id", "t3")
        )
    ),
)


def order_fingerprint(data: OrderIn, paid_at_us: int) -> str:
    raw = f"{data.user_id}\x1f{data.amount_fen}\x1f{paid_at_us}\x1f{data.campaign_id or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _inviter(upline: list[str], buyer: str) -> str | None:
    """The distributor the buyer is bound to (orders/gmv metrics), from the credited upline."""
    rest = upline[1:] if upline and upline[0] == buyer else upline
    return rest[0] if rest else None


def _credited_chain(row: Any, user_id: str, program: Program) -> list[str]:
    chain = [] if row is None else [row[k] for k in ("l1", "l2", "l3")]
    upline: list[str] = []
    for distributor in chain:
        if distributor is None:
            break
        upline.append(distributor)
    if program.self_purchase_commission and row is not None and row["buyer_status"] == "active":
        upline = [user_id, *upline]
    return upline[: len(program.commission_bps)]


def _rates(row: Any, upline: list[str], user_id: str, program: Program) -> list[int]:
    """The rate of each credited level: the program's, or each earner's tier's."""
    if not program.tiers or row is None:
        return list(program.commission_bps[: len(upline)])
    names = ["t0", "t1", "t2", "t3"] if upline and upline[0] == user_id else ["t1", "t2", "t3"]
    return upline_rates(program, [int(row[n] or 0) for n in names[: len(upline)]])


async def record_order(
    db: Database,
    tenant_id: str,
    program: Program,
    data: OrderIn,
    paid_at_us: int,
    idempotency_key: str | None,
    idempotency_hash: str,
) -> tuple[OrderOut, bool]:
    """Credit the upline for a paid order. Returns the result and whether it was a replay."""
    fingerprint = order_fingerprint(data, paid_at_us)
    if idempotency_key is None:
        fast = await record_order_fast(db, tenant_id, program, data, paid_at_us, fingerprint)
        if fast is not None:  # promotion included (server.orders.fast)
            return fast, False
    row = await db.fetchrow(
        ORDER_CONTEXT_TIERS_SQL if program.tiers else ORDER_CONTEXT_SQL,
        tenant_id,
        data.user_id,
        paid_at_us,
        data.order_id,
        idempotency_key,
    )
    if row is not None and row["key_hash"] is not None and row["key_hash"] != idempotency_hash:
        raise Conflict(_KEY_REUSED)
    if row is not None and row["existing_hash"] is not None:
        return await _replay(db, tenant_id, data.order_id, fingerprint), True
    upline = _credited_chain(row, data.user_id, program)
    rates = _rates(row, upline, data.user_id, program)
    amounts = split_commission(data.amount_fen, rates) if rates else []
    available_at = paid_at_us + program.freeze_days * DAY_US
    now = now_us()
    status = entry_status(available_at, None, now)
    entries = [
        (d, a, level) for level, (d, a) in enumerate(zip(upline, amounts, strict=True), 1) if a > 0
    ]
    result = OrderOut(
        order_id=data.order_id,
        commissions=[Commission(d, level, a, status) for d, a, level in entries],
    )
    campaigns = matching(
        await active_campaigns(db, tenant_id), paid_at_us, data.campaign_id, ORDER_METRICS
    )
    scores = (
        merge(
            order_increments(
                campaigns,
                program.timezone,
                paid_at_us,
                _inviter(upline, data.user_id),
                data.amount_fen,
                [(d, a) for d, a, _ in entries],
            )
        )
        if campaigns
        else []
    )
    endpoints = await endpoints_for(db, tenant_id, "commission.created") if entries else []
    webhook_event_id, payload = (
        event_envelope(tenant_id, "commission.created", data.order_id, result)
        if endpoints
        else ("", "")
    )
    threshold = program.recruitment.mode == "threshold"
    recruit_endpoints = (
        await endpoints_for(db, tenant_id, "distributor.approved") if threshold else []
    )
    recruit_event_id, recruit_payload = (
        event_envelope(
            tenant_id,
            "distributor.approved",
            f"{data.user_id}:threshold",
            {"distributor_id": data.user_id, "state": "approved", "reason": None,
             "via": "threshold", "order_id": data.order_id},
        )  # fmt: skip
        if recruit_endpoints
        else ("", "")
    )
    written = await insert_order(
        db,
        NewOrder(
            tenant_id=tenant_id,
            order_id=data.order_id,
            user_id=data.user_id,
            amount_fen=data.amount_fen,
            paid_at_us=paid_at_us,
            campaign_id=data.campaign_id,
            upline_json=_encoder.encode(upline).decode(),
            rates_json=_encoder.encode(rates).decode(),
            event_id=None if row is None else row["event_id"],
            request_hash=fingerprint,
            now_us=now,
            available_at_us=available_at,
            entries=entries,
            idempotency_key=idempotency_key,
            idempotency_hash=idempotency_hash,
            # stored with the Idempotency-Key (replayed for a retry); no key, nothing stored
            response_body=_encoder.encode(result).decode() if idempotency_key else "",
            scores=scores,
            webhook_endpoints=endpoints,
            webhook_event_id=webhook_event_id,
            webhook_event_type="commission.created",
            webhook_payload=payload,
            threshold_fen=program.recruitment.threshold_fen if threshold else None,
            recruit_endpoints=recruit_endpoints,
            recruit_event_id=recruit_event_id,
            recruit_payload=recruit_payload,
        ),
    )
    if written == "key_taken":  # a concurrent request with the same key won the claim
        await _check_key(db, tenant_id, idempotency_key, idempotency_hash)
        return await _replay(db, tenant_id, data.order_id, fingerprint), True
    if written == "order_exists":  # a concurrent request with the same order id won the insert
        return await _replay(db, tenant_id, data.order_id, fingerprint), True
    await mirror_increments(db, tenant_id, scores)
    await _promote_after(db, tenant_id, program, data, paid_at_us, result)
    return result, False


async def _promote_after(
    db: Database, tenant_id: str, program: Program, data: OrderIn, paid_at_us: int,
    result: OrderOut,
) -> None:  # fmt: skip
    """An order can lift the credited upline (team sales) and the buyer (own sales)."""
    credited = [c.distributor_id for c in result.commissions]
    await promote_after_order(
        db, tenant_id, program, data.order_id, data.user_id, credited, data.amount_fen, paid_at_us
    )


_KEY_REUSED = (
    "This Idempotency-Key was already used with a different request; "
    "use a new key for a new request."
)


async def _check_key(db: Connection, tenant_id: str, key: str | None, digest: str) -> None:
    """409 unless the request that holds ``key`` is this one (same method, path and body)."""
    held = await db.fetchval(
        "SELECT request_hash FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )
    if held != digest:
        raise Conflict(_KEY_REUSED)


async def _replay(db: Connection, tenant_id: str, order_id: str, fingerprint: str) -> OrderOut:
    existing = await db.fetchval(
        "SELECT request_hash FROM orders WHERE tenant_id = $1 AND order_id = $2",
        tenant_id,
        order_id,
    )
    if existing != fingerprint:
        raise Conflict(
            f"order {order_id!r} was already reported with a different user, amount, paid_at "
            "or campaign; an order id is reported once (refunds go to /refunds)"
        )
    rows = await db.fetch(
        "SELECT e.distributor_id, e.level, e.amount_fen, e.available_at_us, l.status"
        f" FROM ledger_entries e {ENTRY_LOCK_JOIN}"
        " WHERE e.tenant_id = $1 AND e.order_id = $2 AND e.kind = 'commission' ORDER BY e.level",
        tenant_id,
        order_id,
    )
    now = now_us()
    return OrderOut(
        order_id=order_id,
        commissions=[
            Commission(
                r["distributor_id"],
                r["level"],
                r["amount_fen"],
                entry_status(r["available_at_us"], r["status"], now),
            )
            for r in rows
        ],
    )


async def record_refund(
    tx: Connection,
    tenant_id: str,
    program: Program,
    order_id: str,
    data: RefundIn,
) -> RefundOut:
    """Reverse commissions pro rata; call inside a transaction (the order row is locked)."""
    lock = " FOR UPDATE" if tx.engine == "postgres" else ""
    order = await tx.fetchrow(
        "SELECT amount_fen, user_id, paid_at_us, campaign_id, upline FROM orders"
        " WHERE tenant_id = $1 AND order_id = $2" + lock,
        tenant_id,
        order_id,
    )
    if order is None:
        raise NotFound(f"order {order_id!r} does not exist")
    # Whether a commission is settled decides absorb vs net_off: no approval may run meanwhile.
    await lock_out_approvals(tx, tenant_id)
    amount = int(order["amount_fen"])
    previous = await tx.fetchrow(
        "SELECT amount_fen FROM refunds WHERE tenant_id = $1 AND order_id = $2 AND refund_id = $3",
        tenant_id,
        order_id,
        data.refund_id,
    )
    if previous is not None:
        if int(previous["amount_fen"]) != data.amount_fen:
            raise Conflict(
                f"refund {data.refund_id!r} was already recorded with "
                f"{previous['amount_fen']} fen; a refund id is reported once"
            )
        return await refund_result(tx, tenant_id, order_id, data.refund_id)
    before = int(
        await tx.fetchval(
            "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds"
            " WHERE tenant_id = $1 AND order_id = $2",
            tenant_id,
            order_id,
        )
    )
    if before + data.amount_fen > amount:
        raise Unprocessable(
            f"refunds would total {before + data.amount_fen} fen but order {order_id!r} is "
            f"{amount} fen ({before} fen already refunded); refund at most {amount - before} fen",
            [FieldError("amount_fen", f"at most {amount - before} fen remains refundable")],
        )
    now = now_us()
    await tx.execute(
        "INSERT INTO refunds (tenant_id, order_id, refund_id, amount_fen, refunded_before_fen,"
        " created_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
        tenant_id,
        order_id,
        data.refund_id,
        data.amount_fen,
        before,
        now,
    )
    commissions = await tx.fetch(
        "SELECT e.id, e.distributor_id, e.level, e.amount_fen, e.available_at_us, l.status"
        f" FROM ledger_entries e {ENTRY_LOCK_JOIN}"
        " WHERE e.tenant_id = $1 AND e.order_id = $2 AND e.kind = 'commission' ORDER BY e.level",
        tenant_id,
        order_id,
    )
    rows = []
    for c in commissions:
        reversed_fen = cumulative_reversal(int(c["amount_fen"]), amount, before, data.amount_fen)
        if reversed_fen == 0:
            continue
        # Paid-out money under 'absorb' is the tenant's loss: recorded, but in no balance.
        absorbed = program.clawback == "absorb" and c["status"] is not None
        rows.append(
            (
                tenant_id,
                c["distributor_id"],
                "absorbed_reversal" if absorbed else "reversal",
                -reversed_fen,
                c["level"],
                order_id,
                data.refund_id,
                c["id"],
                # A reversal of a pending entry nets inside the same freeze window.
                max(int(c["available_at_us"]), now),
                now,
                f"refund:{order_id}:{data.refund_id}:{c['level']}",
            )
        )
    if rows:
        await tx.executemany(
            "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level,"
            " order_id, refund_id, reverses_entry_id, available_at_us, created_at_us, memo,"
            " dedupe_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', $11)",
            rows,
        )
        await add_entries(tx, tenant_id, [(r[1], r[2], r[3]) for r in rows])
    await _unscore(
        tx,
        tenant_id,
        program,
        order,
        before + data.amount_fen == amount,
        data.amount_fen,
        [(r[1], -r[3]) for r in rows if r[2] == "reversal"],
        now,
    )
    # A refund lowers the sales figures of tiers (it never promotes: nothing to evaluate).
    await record_sales(
        tx,
        tenant_id,
        program,
        order["user_id"],
        [c["distributor_id"] for c in commissions],
        -data.amount_fen,
        int(order["paid_at_us"]),
    )
    result = await refund_result(tx, tenant_id, order_id, data.refund_id)
    await enqueue_event(tx, tenant_id, "refund.reversed", f"{order_id}:{data.refund_id}", result)
    return result


async def _unscore(
    tx: Connection,
    tenant_id: str,
    program: Program,
    order: Any,
    full: bool,
    refund_fen: int,
    reversed_fen: list[tuple[str, int]],
    now: int,
) -> None:
    """Take the refunded part back out of the campaign scores the order moved."""
    paid_at = int(order["paid_at_us"])
    campaigns = matching(
        await active_campaigns(tx, tenant_id), paid_at, order["campaign_id"], ORDER_METRICS
    )
    if not campaigns:
        return
    upline: list[str] = msgspec.json.decode(order["upline"])
    await apply_increments(
        tx,
        tenant_id,
        refund_increments(
            campaigns,
            program.timezone,
            paid_at,
            now,
            _inviter(upline, order["user_id"]),
            refund_fen,
            full,
            reversed_fen,
        ),
    )


async def refund_result(tx: Connection, tenant_id: str, order_id: str, refund_id: str) -> RefundOut:
    refund = await tx.fetchrow(
        "SELECT amount_fen, refunded_before_fen FROM refunds"
        " WHERE tenant_id = $1 AND order_id = $2 AND refund_id = $3",
        tenant_id,
        order_id,
        refund_id,
    )
    if refund is None:  # callers pass a refund recorded in this transaction or earlier
        raise RuntimeError("invariant broken: refund is None")
    rows = await tx.fetch(
        "SELECT e.distributor_id, e.level, e.amount_fen, e.kind, e.available_at_us, l.status"
        f" FROM ledger_entries e {ENTRY_LOCK_JOIN}"
        " WHERE e.tenant_id = $1 AND e.order_id = $2 AND e.refund_id = $3 ORDER BY e.level",
        tenant_id,
        order_id,
        refund_id,
    )
    now = now_us()
    return RefundOut(
        order_id=order_id,
        refund_id=refund_id,
        amount_fen=int(refund["amount_fen"]),
        refunded_total_fen=int(refund["refunded_before_fen"]) + int(refund["amount_fen"]),
        reversals=[
            Reversal(
                r["distributor_id"],
                r["level"],
                int(r["amount_fen"]),
                r["kind"],
                entry_status(r["available_at_us"], r["status"], now),
            )
            for r in rows
        ],
    )
