"""Balances: derived from the ledger, read from its maintained totals.

An entry is ``pending`` until its freeze window ends (``available_at_us``), then
``available``; an approved settlement moves it to ``settled`` and a paid one to ``paid``
(``settlement_locks``). ``absorbed_reversal`` entries (clawback policy ``absorb``) are kept for
the audit trail but belong to no balance.

:func:`balance_of` reads the distributor's running totals (:mod:`server.ledger.totals`) and
sums only the entries still inside their freeze window (``ix_entries_pending``: tenant,
distributor, ``available_at_us``, covering ``amount_fen``, absorbed entries left out), so its
cost follows recent volume, not history:
``available = credited + reversed - settled - paid - pending``.
The window needs no look at settlement locks: a settlement only takes entries due by its
cutoff, and a cutoff is never later than the moment of drafting, so a locked entry is never
inside its freeze window (``liebian ledger verify`` reports one that is, and the property
tests compare every balance with :func:`balance_by_scan`, which checks the locks).
:func:`balance_by_scan` is the definition it must equal (the tests and benchmarks use it).
"""

from __future__ import annotations

from server.db import Connection
from server.queries import ENTRY_LOCK_JOIN

__all__ = ["all_balances", "balance_by_scan", "balance_columns", "balance_of"]

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
{ENTRY_LOCK_JOIN}
WHERE e.tenant_id = $1 AND e.distributor_id = $2 AND e.kind <> 'absorbed_reversal'
"""

ALL_BALANCES_SQL = f"""
SELECT e.distributor_id, {balance_columns("$2")}
FROM ledger_entries e
{ENTRY_LOCK_JOIN}
WHERE e.tenant_id = $1 AND e.kind <> 'absorbed_reversal'
GROUP BY e.distributor_id
"""


# One statement, so the totals and the pending sum are read at one moment.
TOTALS_BALANCE_SQL = """
SELECT COALESCE(SUM(t.credited_fen + t.reversed_fen), 0) AS unlocked_total,
  COALESCE(SUM(t.settled_fen), 0) AS settled_fen, COALESCE(SUM(t.paid_fen), 0) AS paid_fen,
  (SELECT COALESCE(SUM(e.amount_fen), 0) FROM ledger_entries e
   WHERE e.tenant_id = $1 AND e.distributor_id = $2 AND e.available_at_us > $3
     AND e.kind <> 'absorbed_reversal') AS pending_fen
FROM distributor_totals t WHERE t.tenant_id = $1 AND t.distributor_id = $2
"""


async def balance_of(
    db: Connection, tenant_id: str, distributor_id: str, now_us: int
) -> dict[str, int]:
    """pending, available, settled and paid fen at ``now_us``, from the maintained totals."""
    row = await db.fetchrow(TOTALS_BALANCE_SQL, tenant_id, distributor_id, now_us)
    if row is None:  # an aggregate without GROUP BY always returns one row
        raise RuntimeError("invariant broken: row is None")
    settled, paid, pending = int(row["settled_fen"]), int(row["paid_fen"]), int(row["pending_fen"])
    return {
        "pending_fen": pending,
        "available_fen": int(row["unlocked_total"]) - settled - paid - pending,
        "settled_fen": settled,
        "paid_fen": paid,
    }


async def balance_by_scan(
    db: Connection, tenant_id: str, distributor_id: str, now_us: int
) -> dict[str, int]:
    """The balance summed over every entry: the definition, linear in history."""
    row = await db.fetchrow(BALANCE_SQL, tenant_id, distributor_id, now_us)
    if row is None:  # an aggregate without GROUP BY always returns one row
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
