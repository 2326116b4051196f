"""Running totals of each distributor's ledger, kept in the transaction of every entry.

A balance read must not scan a distributor's history (a top distributor has hundreds of
thousands of entries). So every ledger write also adds its amounts to the distributor's
``distributor_totals`` row, in the same transaction (on PostgreSQL's one-statement order,
inside the same statement), and settlement approval / payment moves the amounts it locks:

- ``credited_fen``: commissions, red packets and prizes;
- ``reversed_fen``: ``reversal`` entries (negative);
- ``absorbed_fen``: ``absorbed_reversal`` entries (negative; the tenant's loss, in no balance);
- ``settled_fen`` / ``paid_fen``: entries an approved / paid settlement holds (absorbed ones
  never count, as in the balance);
- ``matured_fen``: entries whose freeze window ended by the tenant's maturity checkpoint
  (absorbed ones excepted), moved there by :mod:`server.ledger.maturity`, not by the writers
  (but for an entry already mature when written).

The ledger stays the source of truth: :mod:`server.ledger.reconcile` recomputes every row
(``liebian ledger verify``). Rows are written in distributor order, so concurrent writers lock
them in one order (no deadlock), one row per credited distributor.

A top distributor is credited by most orders at once, and a row update holds its lock until
the commit: so a distributor's totals are the sum of up to ``SHARDS`` rows, and on PostgreSQL
each pooled connection writes its own shard (numbered when the pool opens it); concurrent
orders of one process then never wait for each other. SQLite has one writer: shard 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.db import Connection
from server.ledger.maturity import is_late, late_checkpoint
from server.queries import LOCKED_ENTRY_JOIN

__all__ = [
    "PG_SHARD",
    "SHARDS",
    "TOTAL_COLUMNS",
    "add_entries",
    "column_of",
    "on_approved",
    "on_paid",
    "on_released",
    "with_shard",
]

SHARDS = 32
# The pooled connection's own number (server.db sets it per connection), else the backend's.
PG_SHARD = (
    "COALESCE(NULLIF(current_setting('liebian.shard', true), '')::int, pg_backend_pid())"
    f" % {SHARDS}"
)

TOTAL_COLUMNS = (
    "credited_fen",
    "reversed_fen",
    "absorbed_fen",
    "settled_fen",
    "paid_fen",
    "matured_fen",
)

_UPSERT = """
INSERT INTO distributor_totals (tenant_id, distributor_id, shard, credited_fen, reversed_fen,
                                absorbed_fen, settled_fen, paid_fen, matured_fen)
VALUES ($1, $2, {shard}, $3, $4, $5, 0, 0, $6)
ON CONFLICT (tenant_id, distributor_id, shard) DO UPDATE SET
  credited_fen = distributor_totals.credited_fen + excluded.credited_fen,
  reversed_fen = distributor_totals.reversed_fen + excluded.reversed_fen,
  absorbed_fen = distributor_totals.absorbed_fen + excluded.absorbed_fen,
  matured_fen = distributor_totals.matured_fen + excluded.matured_fen
"""

# PostgreSQL's one-statement writes add this as a CTE step over the rows their ``e`` step
# inserted (``RETURNING distributor_id, amount_fen``): commissions only.
PG_CREDIT_STEP = f"""
t AS (
  INSERT INTO distributor_totals (tenant_id, distributor_id, shard, credited_fen, reversed_fen,
                                  absorbed_fen, settled_fen, paid_fen)
  SELECT $1, e.distributor_id, {PG_SHARD}, SUM(e.amount_fen), 0, 0, 0, 0
  FROM e GROUP BY e.distributor_id ORDER BY e.distributor_id
  ON CONFLICT (tenant_id, distributor_id, shard) DO UPDATE SET
    credited_fen = distributor_totals.credited_fen + excluded.credited_fen
  RETURNING 1
)"""

# Amount per distributor that one settlement holds (its locks), absorbed entries excepted.
_LOCKED = (
    """
SELECT e.distributor_id AS d, SUM(e.amount_fen) AS amount
FROM settlement_locks l """
    + LOCKED_ENTRY_JOIN
    + """
WHERE l.tenant_id = $1 AND l.settlement_id = $2 AND e.kind <> 'absorbed_reversal'
GROUP BY e.distributor_id
"""
)
_MOVE = """
INSERT INTO distributor_totals (tenant_id, distributor_id, shard, credited_fen, reversed_fen,
                                absorbed_fen, settled_fen, paid_fen)
SELECT $1, x.d, {{shard}}, 0, 0, 0, {settled}, {paid} FROM ({locked}) AS x WHERE true
ORDER BY x.d
ON CONFLICT (tenant_id, distributor_id, shard) DO UPDATE SET
  settled_fen = distributor_totals.settled_fen + excluded.settled_fen,
  paid_fen = distributor_totals.paid_fen + excluded.paid_fen
"""
_APPROVED_SQL = _MOVE.format(settled="x.amount", paid="0", locked=_LOCKED)
_PAID_SQL = _MOVE.format(settled="-x.amount", paid="x.amount", locked=_LOCKED)
_RELEASED_SQL = _MOVE.format(settled="-x.amount", paid="0", locked=_LOCKED)


def with_shard(tx: Connection, template: str) -> str:
    """``template`` with ``{shard}`` replaced by this connection's shard expression."""
    return template.replace("{shard}", PG_SHARD if tx.engine == "postgres" else "0")


def column_of(kind: str) -> str:
    """The running total an entry of ``kind`` adds to."""
    if kind == "reversal":
        return "reversed_fen"
    if kind == "absorbed_reversal":
        return "absorbed_fen"
    return "credited_fen"


async def add_entries(
    tx: Connection,
    tenant_id: str,
    entries: Iterable[tuple[str, str, int]],
    available_at_us: int | None = None,
    now_us: int | None = None,
) -> None:
    """Add new ledger entries ``(distributor_id, kind, amount_fen)`` to the totals; call in
    the transaction that inserted them. A writer whose entries may already be mature when
    written (an order paid before its freeze window, a binding dated in the past) passes
    their ``available_at_us`` and its clock: those at or before the tenant's maturity
    checkpoint are booked as matured too (:mod:`server.ledger.maturity`)."""
    matured = False
    if available_at_us is not None and now_us is not None and is_late(available_at_us, now_us):
        matured = available_at_us <= await late_checkpoint(tx, tenant_id)
    sums: dict[str, list[int]] = {}
    for distributor_id, kind, amount in entries:
        row = sums.setdefault(distributor_id, [0, 0, 0, 0])
        row[("credited_fen", "reversed_fen", "absorbed_fen").index(column_of(kind))] += amount
        if matured and kind != "absorbed_reversal":
            row[3] += amount
    if sums:
        await tx.executemany(
            with_shard(tx, _UPSERT), [(tenant_id, d, *sums[d]) for d in sorted(sums)]
        )


async def on_approved(tx: Connection, tenant_id: str, settlement_id: str) -> None:
    """The settlement's locks were just inserted (status ``settled``): move their amounts."""
    await tx.execute(with_shard(tx, _APPROVED_SQL), tenant_id, settlement_id)


async def on_paid(tx: Connection, tenant_id: str, settlement_id: str) -> None:
    """The settlement's locks just turned ``paid``: move their amounts from settled to paid."""
    await tx.execute(with_shard(tx, _PAID_SQL), tenant_id, settlement_id)


async def on_released(tx: Connection, tenant_id: str, settlement_id: str) -> None:
    """The holder's ``settled`` locks are about to be deleted (a rejected withdrawal): take
    their amounts out of ``settled_fen``. Call before deleting them."""
    await tx.execute(with_shard(tx, _RELEASED_SQL), tenant_id, settlement_id)
