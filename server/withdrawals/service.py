"""Withdrawals (提现): a request locks what it covers at once; finance approves, pays or rejects.

A request for ``amount`` out of the available balance ``B`` (the sum of the distributor's due
entries that nothing holds, reversals included) locks all those entries under the withdrawal
id in ``settlement_locks`` (the unique key that also keeps settlements from paying an entry
twice), and appends, all in one transaction:

- ``withdrawal_fee`` ``-fee`` (``fee = floor(amount × fee_bps / 10000)``), locked;
- when ``B > amount``, the change as a pair of ``withdrawal_split`` entries: ``-(B - amount)``
  locked and ``+(B - amount)`` free, so the rest stays available to later requests and
  settlements.

The locked entries then sum to ``amount - fee``, the payout. Approval changes nothing in the
ledger; ``paid`` marks the locks paid; a rejection releases the locks and appends a
``withdrawal_fee`` of ``+fee`` (the fee returned), so the balance is what it was. A settlement
draft skips locked entries; an approval that meets one fails (409), and so does a request that
meets a settlement's lock: every fen is paid once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.common import decode_cursor, encode_cursor, from_us, new_id, now_us
from server.db import Connection, UniqueViolation
from server.errors import Conflict, FieldError, InvalidInput, Unprocessable
from server.ledger import totals
from server.program.schemas import Program
from server.referrals.service import get_distributor_row
from server.webhooks.outbox import enqueue_event
from server.withdrawals.schemas import Withdrawal, WithdrawalPage

__all__ = [
    "approve",
    "list_withdrawals",
    "mark_paid",
    "reject",
    "request_withdrawal",
    "withdrawal_rows",
]

_COLUMNS = (
    "withdrawal_id, distributor_id, amount_fen, fee_fen, net_fen, status, reason, transfer_ref,"
    " created_at_us, decided_at_us, paid_at_us"
)
AVAILABLE_SQL = """
SELECT e.id, e.amount_fen FROM ledger_entries e
WHERE e.tenant_id = $1 AND e.distributor_id = $2 AND e.available_at_us <= $3
  AND e.kind <> 'absorbed_reversal'
  AND NOT EXISTS (SELECT 1 FROM settlement_locks l WHERE l.tenant_id = e.tenant_id
                  AND l.entry_id = e.id)
ORDER BY e.id
"""
_ENTRY_SQL = (
    "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, available_at_us,"
    " created_at_us, memo, dedupe_key) VALUES ($1, $2, $3, $4, $5, $5, $6, $7) RETURNING id"
)


def out(r: Any) -> Withdrawal:
    def ts(us: Any) -> str | None:
        return None if us is None else from_us(int(us)).isoformat()

    return Withdrawal(
        id=r["withdrawal_id"],
        distributor_id=r["distributor_id"],
        amount_fen=int(r["amount_fen"]),
        fee_fen=int(r["fee_fen"]),
        net_fen=int(r["net_fen"]),
        status=r["status"],
        reason=r["reason"],
        transfer_ref=r["transfer_ref"],
        created_at=from_us(int(r["created_at_us"])).isoformat(),
        decided_at=ts(r["decided_at_us"]),
        paid_at=ts(r["paid_at_us"]),
    )


def _day_start_us(now: int, timezone: str) -> int:
    local = from_us(now).astimezone(ZoneInfo(timezone))
    start = datetime(local.year, local.month, local.day, tzinfo=local.tzinfo)
    return int(start.timestamp()) * 1_000_000


async def _entry(tx: Connection, tenant_id: str, d: str, kind: str, amount: int, now: int,
                 memo: str, dedupe: str) -> int:  # fmt: skip
    entry_id = await tx.fetchval(_ENTRY_SQL, tenant_id, d, kind, amount, now, memo, dedupe)
    return int(entry_id)


async def request_withdrawal(
    tx: Connection, tenant_id: str, program: Program, distributor_id: str, amount: int
) -> Withdrawal:
    """Ask for ``amount`` fen of the available balance; call inside a transaction."""
    rules = program.withdrawal
    row = await get_distributor_row(tx, tenant_id, distributor_id)
    if rules is None:
        raise Conflict(
            "the program takes no withdrawal requests (program.withdrawal is not set); "
            "money is paid by settlements",
            [FieldError("distributor_id", "withdrawals are not enabled by the program")],
        )
    if row["status"] != "active":
        raise Conflict(
            f"distributor_id: {distributor_id!r} is {row['status']}; a held or frozen "
            "distributor cannot withdraw",
            [FieldError("distributor_id", f"{distributor_id!r} is {row['status']}")],
        )
    if tx.engine == "postgres":
        # One request at a time per distributor: the cool-down, the daily cap and the balance
        # are read and written under it (SQLite transactions are serialised already).
        await tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1 || chr(31) || $2))",
            tenant_id,
            distributor_id,
        )
    now = now_us()
    if amount < rules.min_fen:
        raise InvalidInput("amount_fen", f"is below the program's minimum ({rules.min_fen} fen)")
    recent = await tx.fetchrow(
        "SELECT MAX(created_at_us) AS last_us, COALESCE(SUM(CASE WHEN created_at_us >= $3"
        " THEN amount_fen END), 0) AS today_fen FROM withdrawals"
        " WHERE tenant_id = $1 AND distributor_id = $2 AND status <> 'rejected'",
        tenant_id,
        distributor_id,
        _day_start_us(now, program.timezone),
    )
    last = None if recent is None else recent["last_us"]
    if last is not None and int(last) + rules.cooldown_seconds * 1_000_000 > now:
        after = from_us(int(last) + rules.cooldown_seconds * 1_000_000).isoformat()
        raise Conflict(
            f"distributor_id: a withdrawal was asked for recently; the next may be asked for "
            f"after {after} (cooldown_seconds {rules.cooldown_seconds})",
            [FieldError("distributor_id", f"in the cool-down until {after}")],
        )
    today = 0 if recent is None else int(recent["today_fen"])
    if rules.max_per_day_fen is not None and today + amount > rules.max_per_day_fen:
        raise InvalidInput(
            "amount_fen",
            f"would bring today's withdrawals to {today + amount} fen, over the program's "
            f"{rules.max_per_day_fen} fen a day; at most {max(rules.max_per_day_fen - today, 0)} "
            "fen more today",
        )
    fee = amount * rules.fee_bps // 10_000
    if fee >= amount:
        raise InvalidInput("amount_fen", f"leaves nothing after the fee ({fee} fen)")
    entries = await tx.fetch(AVAILABLE_SQL, tenant_id, distributor_id, now)
    available = sum(int(e["amount_fen"]) for e in entries)
    if amount > available:
        raise InvalidInput(
            "amount_fen", f"is more than the available balance ({max(available, 0)} fen)"
        )
    withdrawal_id = new_id("wd")
    locked = [int(e["id"]) for e in entries]
    if fee:
        locked.append(await _entry(tx, tenant_id, distributor_id, "withdrawal_fee", -fee, now,
                                   withdrawal_id, f"wd:{withdrawal_id}:fee"))  # fmt: skip
    change = available - amount
    if change:
        locked.append(await _entry(tx, tenant_id, distributor_id, "withdrawal_split", -change,
                                   now, withdrawal_id, f"wd:{withdrawal_id}:split-"))  # fmt: skip
        await _entry(tx, tenant_id, distributor_id, "withdrawal_split", change, now,
                     withdrawal_id, f"wd:{withdrawal_id}:split+")  # fmt: skip
    try:
        await tx.executemany(
            "INSERT INTO settlement_locks (tenant_id, entry_id, settlement_id, status)"
            " VALUES ($1, $2, $3, 'settled')",
            [(tenant_id, entry_id, withdrawal_id) for entry_id in locked],
        )
    except UniqueViolation:
        raise Conflict(
            "amount_fen: entries of this balance were just settled or withdrawn; ask again"
        ) from None
    # The maintained totals (server.ledger.totals): the new entries, then what the locks hold.
    await totals.add_entries(
        tx,
        tenant_id,
        [(distributor_id, "withdrawal_fee", -fee)] * bool(fee)
        + [
            (distributor_id, "withdrawal_split", -change),
            (distributor_id, "withdrawal_split", change),
        ]
        * bool(change),
    )
    await totals.on_approved(tx, tenant_id, withdrawal_id)
    await tx.execute(
        "INSERT INTO withdrawals (tenant_id, withdrawal_id, distributor_id, amount_fen, fee_fen,"
        " net_fen, status, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7)",
        tenant_id,
        withdrawal_id,
        distributor_id,
        amount,
        fee,
        amount - fee,
        now,
    )
    result = (await withdrawal_rows(tx, tenant_id, [withdrawal_id]))[0]
    await _event(tx, tenant_id, "withdrawal.requested", result)
    return result


async def _event(tx: Connection, tenant_id: str, event_type: str, w: Withdrawal) -> None:
    await enqueue_event(tx, tenant_id, event_type, f"{w.id}:{event_type}", w)


async def withdrawal_rows(
    tx: Connection, tenant_id: str, ids: list[str], lock: bool = False, field: str = "ids"
) -> list[Withdrawal]:
    """The withdrawals ``ids`` in that order; a 422 naming the first unknown one."""
    found: dict[str, Withdrawal] = {}
    for wid in dict.fromkeys(ids):
        r = await tx.fetchrow(
            f"SELECT {_COLUMNS} FROM withdrawals WHERE tenant_id = $1 AND withdrawal_id = $2"
            + (" FOR UPDATE" if lock and tx.engine == "postgres" else ""),
            tenant_id,
            wid,
        )
        if r is None:
            # Named in a body, not a path: a 422 naming it (the same for another tenant's).
            where = f"references.{wid}" if field == "references" else "ids"
            raise Unprocessable(
                f"withdrawal {wid!r} does not exist",
                [FieldError(where, f"{wid!r} is not a withdrawal of this tenant")],
            )
        found[wid] = out(r)
    return [found[w] for w in dict.fromkeys(ids)]


async def _set(tx: Connection, tenant_id: str, wid: str, status: str, now: int,
               reason: str | None = None, ref: str | None = None) -> None:  # fmt: skip
    column = "paid_at_us" if status == "paid" else "decided_at_us"
    await tx.execute(
        f"UPDATE withdrawals SET status = $3, {column} = $4,"
        " reason = COALESCE($5, reason), transfer_ref = COALESCE($6, transfer_ref)"
        " WHERE tenant_id = $1 AND withdrawal_id = $2",
        tenant_id,
        wid,
        status,
        now,
        reason,
        ref,
    )


async def approve(tx: Connection, tenant_id: str, ids: list[str]) -> list[Withdrawal]:
    """Approve a batch (all or nothing); approving again is a no-op; a rejected one is a 409."""
    now = now_us()
    for w in await withdrawal_rows(tx, tenant_id, ids, lock=True):
        if w.status == "rejected":
            raise Conflict(f"ids: withdrawal {w.id!r} was rejected; it cannot be approved")
        if w.status == "requested":
            await _set(tx, tenant_id, w.id, "approved", now)
            await _event(
                tx,
                tenant_id,
                "withdrawal.approved",
                (await withdrawal_rows(tx, tenant_id, [w.id]))[0],
            )
    return await withdrawal_rows(tx, tenant_id, ids)


async def reject(tx: Connection, tenant_id: str, ids: list[str], reason: str) -> list[Withdrawal]:
    """Reject a batch (requested or approved, not paid): its entries are free again and the
    fee is returned. Rejecting again is a no-op; a paid one is a 409."""
    now = now_us()
    for w in await withdrawal_rows(tx, tenant_id, ids, lock=True):
        if w.status == "paid":
            raise Conflict(f"ids: withdrawal {w.id!r} is paid; it cannot be rejected")
        if w.status == "rejected":
            continue
        await totals.on_released(tx, tenant_id, w.id)
        await tx.execute(
            "DELETE FROM settlement_locks WHERE tenant_id = $1 AND settlement_id = $2",
            tenant_id,
            w.id,
        )
        if w.fee_fen:
            await totals.add_entries(
                tx, tenant_id, [(w.distributor_id, "withdrawal_fee", w.fee_fen)]
            )
            await _entry(tx, tenant_id, w.distributor_id, "withdrawal_fee", w.fee_fen, now,
                         w.id, f"wd:{w.id}:fee-returned")  # fmt: skip
        await _set(tx, tenant_id, w.id, "rejected", now, reason=reason)
        await _event(
            tx, tenant_id, "withdrawal.rejected", (await withdrawal_rows(tx, tenant_id, [w.id]))[0]
        )
    return await withdrawal_rows(tx, tenant_id, ids)


async def mark_paid(tx: Connection, tenant_id: str, references: dict[str, str]) -> list[Withdrawal]:
    """Mark approved withdrawals paid with the payout rail's references (all or nothing)."""
    now = now_us()
    ids = sorted(references)
    for w in await withdrawal_rows(tx, tenant_id, ids, lock=True, field="references"):
        ref = references[w.id]
        if w.status == "paid":
            if w.transfer_ref != ref:
                raise Conflict(f"references: withdrawal {w.id!r} was paid with another reference")
            continue
        if w.status != "approved":
            raise Unprocessable(
                f"withdrawal {w.id!r} is {w.status}; only approved withdrawals are paid",
                [FieldError(f"references.{w.id}", f"is {w.status}, not approved")],
            )
        await tx.execute(
            "UPDATE settlement_locks SET status = 'paid'"
            " WHERE tenant_id = $1 AND settlement_id = $2",
            tenant_id,
            w.id,
        )
        await totals.on_paid(tx, tenant_id, w.id)
        await _set(tx, tenant_id, w.id, "paid", now, ref=ref)
        await _event(
            tx, tenant_id, "withdrawal.paid", (await withdrawal_rows(tx, tenant_id, [w.id]))[0]
        )
    return await withdrawal_rows(tx, tenant_id, ids)


async def list_withdrawals(
    db: Connection,
    tenant_id: str,
    status: str | None,
    distributor_id: str | None,
    limit: int,
    cursor: str | None,
) -> WithdrawalPage:
    """Oldest first, by (created_at_us, withdrawal_id)."""
    after = decode_cursor(cursor, int, str) or [-1, ""]
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM withdrawals WHERE tenant_id = $1"
        " AND ($2 = '' OR status = $2) AND ($3 = '' OR distributor_id = $3)"
        " AND (created_at_us > $4 OR (created_at_us = $4 AND withdrawal_id > $5))"
        " ORDER BY created_at_us, withdrawal_id LIMIT $6",
        tenant_id,
        status or "",
        distributor_id or "",
        int(after[0]),
        str(after[1]),
        limit + 1,
    )
    items = [out(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(int(last["created_at_us"]), last["withdrawal_id"])
    return WithdrawalPage(withdrawals=items, next_cursor=next_cursor)
