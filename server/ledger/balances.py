"""Balances are always derived from the ledger, never stored.

An entry is ``pending`` until its freeze window ends (``available_at_us``), then
``available``; an approved settlement moves it to ``settled`` and a paid one to ``paid``
(``settlement_locks``). ``absorbed_reversal`` entries (clawback policy ``absorb``) are kept for
the audit trail but belong to no balance.
"""

from __future__ import annotations

from server.db import Connection

__all__ = ["all_balances", "balance_columns", "balance_of"]

_COLUMNS = """
  COALESCE(SUM(CASE WHEN l.status IS NULL AND e.available_at_us > {now} THEN e.amount_fen END), 0)
    AS pending_fen,
  COALESCE(SUM(CASE WHEN l.status IS NULL AND e.available_at_us <= {now} THEN e.amount_fen END), 0)
    AS available_fen,
  COALESCE(SUM(CASE WHEN l.status = 'settled' THEN e.amount_fen END), 0) AS settled_fen,
  COALESCE(SUM(CASE WHEN l.status = 'paid' THEN e.amount_fen END), 0) AS paid_fen
"""


def balance_columns(now_param: str) -> str:
    """The four balance sums, with the current time bound to the placeholder ``now_param``."""
    return _COLUMNS.format(now=now_param)


BALANCE_SQL = f"""
SELECT {balance_columns("$3")}
FROM ledger_entries e
LEFT JOIN settlement_locks l ON l.tenant_id = e.tenant_id AND l.entry_id = e.id
WHERE e.tenant_id = $1 AND e.distributor_id = $2 AND e.kind <> 'absorbed_reversal'
"""

ALL_BALANCES_SQL = f"""
SELECT e.distributor_id, {balance_columns("$2")}
FROM ledger_entries e
LEFT JOIN settlement_locks l ON l.tenant_id = e.tenant_id AND l.entry_id = e.id
WHERE e.tenant_id = $1 AND e.kind <> 'absorbed_reversal'
GROUP BY e.distributor_id
"""


async def balance_of(
    db: Connection, tenant_id: str, distributor_id: str, now_us: int
) -> dict[str, int]:
    row = await db.fetchrow(BALANCE_SQL, tenant_id, distributor_id, now_us)
    if row is None:  # cannot happen: the query above always returns a row
        raise RuntimeError("invariant broken: row is None")
    return {k: int(row[k]) for k in ("pending_fen", "available_fen", "settled_fen", "paid_fen")}


async def all_balances(db: Connection, tenant_id: str, now_us: int) -> dict[str, dict[str, int]]:
    """Every distributor's balance in one aggregate query."""
    rows = await db.fetch(ALL_BALANCES_SQL, tenant_id, now_us)
    return {
        r["distributor_id"]: {
            k: int(r[k]) for k in ("pending_fen", "available_fen", "settled_fen", "paid_fen")
        }
        for r in rows
    }
