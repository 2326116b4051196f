"""Balances: derived from the ledger, read from its maintained totals.

An entry is ``pending`` until its freeze window ends (``available_at_us``), then
``available``; an approved settlement moves it to ``settled`` and a paid one to ``paid``
(``settlement_locks``). ``absorbed_reversal`` entries (clawback policy ``absorb``) are kept for
the audit trail but belong to no balance.

:func:`balance_of` reads the distributor's running totals (:mod:`server.ledger.totals`),
among them ``matured_fen`` (every entry due by the tenant's maturity checkpoint,
:mod:`server.ledger.maturity`), and sums only the entries that matured between that
checkpoint and now (``ix_entries_pending``: tenant, distributor, ``available_at_us``, covering
``amount_fen``, absorbed entries left out), so its cost follows the last seconds' volume, not
history nor the freeze window: ``matured = matured_fen + since``,
``pending = credited + reversed - matured``, ``available = matured - settled - paid``.
The window needs no look at settlement locks: a settlement only takes entries due by its
cutoff, and a cutoff is never later than the moment of drafting, so a locked entry is never
inside its freeze window (``liebian ledger verify`` reports one that is, and the property
tests compare every balance with :func:`balance_by_scan`, which checks the locks).
:func:`balance_by_scan` is the definition it must equal (the tests and benchmarks use it).
"""

from __future__ import annotations

from server.db import Connection
from server.ledger.maturity import CHECKPOINT_SQL
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


# One statement, so the totals, the checkpoint and the entries since are read at one moment.
# The entries between the checkpoint (c) and now: added when matured by now, taken off when
# now is before the checkpoint (an earlier ``now_us``); the range is seconds of volume.
TOTALS_BALANCE_SQL = f"""
WITH cp AS (SELECT {CHECKPOINT_SQL} AS c)
SELECT COALESCE(SUM(t.credited_fen + t.reversed_fen), 0) AS unlocked_total,
  COALESCE(SUM(t.settled_fen), 0) AS settled_fen, COALESCE(SUM(t.paid_fen), 0) AS paid_fen,
  COALESCE(SUM(t.matured_fen), 0) AS matured_fen,
  (SELECT COALESCE(SUM(CASE WHEN e.available_at_us <= $3 THEN e.amount_fen
                            ELSE -e.amount_fen END), 0)
   FROM cp, ledger_entries e
   WHERE e.tenant_id = $1 AND e.distributor_id = $2 AND e.kind <> 'absorbed_reversal'
     AND e.available_at_us > CASE WHEN cp.c < $3 THEN cp.c ELSE $3 END
     AND e.available_at_us <= CASE WHEN cp.c < $3 THEN $3 ELSE cp.c END) AS since_fen
FROM distributor_totals t WHERE t.tenant_id = $1 AND t.distributor_id = $2
"""


async def balance_of(
    db: Connection, tenant_id: str, distributor_id: str, now_us: int
) -> dict[str, int]:
    """pending, available, settled and paid fen at ``now_us``, from the maintained totals."""
    row = await db.fetchrow(TOTALS_BALANCE_SQL, tenant_id, distributor_id, now_us)
    if row is None:  # an aggregate without GROUP BY always returns one row
        raise RuntimeError("invariant broken: row is None")
    settled, paid = int(row["settled_fen"]), int(row["paid_fen"])
    matured = int(row["matured_fen"]) + int(row["since_fen"] or 0)
    return {
        "pending_fen": int(row["unlocked_total"]) - matured,
        "available_fen": matured - settled - paid,
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
