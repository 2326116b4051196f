"""Netting refunds into settlements: a settlement never pays money already known to be clawed back.

The rule (issue 20; docs/api.md, "Settlements"):

- **At draft time**, a settlement that takes a commission entry also takes every reversal of it
  that exists then, whatever the reversal's own due date (a reversal is due when the refund
  happened, so a refund after the cutoff is not due by it). A fully refunded order therefore
  contributes 0, and the reversal is locked with its commission on approval: no later
  settlement takes it again and no balance shows it as available. The line's
  ``netted_reversal_fen`` is the part of ``reversal_fen`` netted this way (reversals of
  commission the same line pays); the rest of ``reversal_fen`` is clawback of commission an
  earlier settlement paid (clawback ``net_off``).
- **At approval**, under the settlement's row lock, every line's entries are re-read: an entry
  reversed since the draft, a commission or reward no longer due (still inside its freeze
  window: drafts made before future cutoffs were refused), or a distributor no longer active
  makes approval a 409 naming the lines, asking for a new draft. Approval never changes the
  statement finance reviewed; a new draft nets what changed.

Refunds and approvals of one tenant run one after the other: on PostgreSQL, a refund takes a
shared transaction lock of the tenant's class-20 advisory key (refunds do not wait for each
other) and an approval takes it exclusively (:func:`lock_out_refunds`, :func:`lock_out_approvals`);
SQLite runs write transactions one at a time (``BEGIN IMMEDIATE``). So either a refund commits
first and the approval's re-read sees it (409), or the approval commits first and the refund
sees the entry settled (``absorb`` absorbs it, ``net_off`` leaves it for the next settlement):
both clawback modes keep their meaning. An approval holds refunds of its tenant back for its
own duration (about a second per 100,000 entries locked).
"""

from __future__ import annotations

from server.db import Connection
from server.errors import Conflict, FieldError

__all__ = [
    "lock_out_approvals",
    "lock_out_refunds",
    "netted_reversals",
    "recheck_before_approval",
    "take_known_reversals",
]

# Reversals of the draft's commissions that are not due by the cutoff on their own (those due
# are taken by the due-entry rule already). Such a reversal is never locked: its commission is
# not (it is in this draft), and an approval locks a reversal only with its commission or
# after it; were it ever otherwise, approval's unique lock key would refuse (409).
# Every query here joins through indexes (items -> ledger by id or by reverses_entry_id) rather
# than EXISTS / NOT EXISTS: right after a draft the planner's statistics may count no items,
# and PostgreSQL then planned semi- and anti-joins as a scan of every item (or lock) per
# reversal: minutes for 100,000 items, where these take about a second.
TAKE_KNOWN_REVERSALS_SQL = """
INSERT INTO settlement_items (tenant_id, settlement_id, entry_id)
SELECT r.tenant_id, CAST($2 AS VARCHAR(32)), r.id FROM settlement_items i
JOIN ledger_entries r ON r.tenant_id = i.tenant_id AND r.reverses_entry_id = i.entry_id
WHERE i.tenant_id = $1 AND i.settlement_id = $2 AND r.kind = 'reversal'
  AND r.available_at_us > $3
"""

# Per distributor: the reversals in the settlement whose commission is in it too.
NETTED_SQL = """
SELECT r.distributor_id, SUM(r.amount_fen) AS amount
FROM settlement_items n
JOIN ledger_entries r ON r.tenant_id = n.tenant_id AND r.id = n.entry_id
JOIN settlement_items i ON i.tenant_id = n.tenant_id AND i.settlement_id = n.settlement_id
  AND i.entry_id = r.reverses_entry_id
WHERE n.tenant_id = $1 AND n.settlement_id = $2 AND r.kind = 'reversal'
GROUP BY r.distributor_id
"""

# The two-key form keeps these locks apart from single-key advisory locks used elsewhere.
APPROVAL_LOCK_CLASS = 20

# Lines whose entries changed since the draft, with why (at most $4 lines). $3 is the moment
# an entry must have been available by: the cutoff, or now if that is earlier. Reversals are
# exempt from being due: the draft takes known ones early on purpose, and they only take away.
# (Left joins, not NOT EXISTS: see above.)
STALE_LINES_SQL = """
SELECT * FROM (
  SELECT e.distributor_id,
    MAX(CASE WHEN r.id IS NOT NULL AND j.entry_id IS NULL THEN 1 ELSE 0 END) AS reversed,
    MAX(CASE WHEN e.kind <> 'reversal' AND e.available_at_us > $3 THEN 1 ELSE 0 END) AS frozen,
    MAX(CASE WHEN d.status <> 'active' THEN 1 ELSE 0 END) AS inactive
  FROM settlement_items i
  JOIN ledger_entries e ON e.tenant_id = i.tenant_id AND e.id = i.entry_id
  LEFT JOIN ledger_entries r ON r.tenant_id = e.tenant_id AND r.reverses_entry_id = e.id
  LEFT JOIN settlement_items j ON j.tenant_id = i.tenant_id AND j.settlement_id = i.settlement_id
    AND j.entry_id = r.id
  LEFT JOIN distributors d ON d.tenant_id = e.tenant_id AND d.distributor_id = e.distributor_id
  WHERE i.tenant_id = $1 AND i.settlement_id = $2
  GROUP BY e.distributor_id
) lines
WHERE reversed + frozen + inactive > 0
ORDER BY distributor_id
LIMIT $4
"""

MAX_NAMED_LINES = 20  # a 409 names at most this many lines; its detail gives the count shown


async def lock_out_refunds(tx: Connection, tenant_id: str) -> None:
    """Approval: wait for the tenant's refunds in flight, and hold new ones until commit."""
    if tx.engine == "postgres":
        await tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", APPROVAL_LOCK_CLASS, tenant_id
        )


async def lock_out_approvals(tx: Connection, tenant_id: str) -> None:
    """Refund: wait for an approval of the tenant in flight (refunds share this lock).

    Call before reading whether the order's commissions are settled.
    """
    if tx.engine == "postgres":
        await tx.execute(
            "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))", APPROVAL_LOCK_CLASS, tenant_id
        )


async def take_known_reversals(
    tx: Connection, tenant_id: str, settlement_id: str, cutoff_us: int
) -> None:
    """Add to a draft's items every existing reversal of the commissions it took."""
    await tx.execute(TAKE_KNOWN_REVERSALS_SQL, tenant_id, settlement_id, cutoff_us)


async def netted_reversals(tx: Connection, tenant_id: str, settlement_id: str) -> dict[str, int]:
    """distributor_id -> fen (<= 0) of reversals netted against commission of the same line."""
    rows = await tx.fetch(NETTED_SQL, tenant_id, settlement_id)
    return {r[0]: int(r[1]) for r in rows}


async def recheck_before_approval(
    tx: Connection, tenant_id: str, settlement_id: str, cutoff_us: int, now_us: int
) -> None:
    """Raise :class:`Conflict` (409) if any line's entries changed since the draft.

    Call with the settlement row locked, before locking its entries.
    """
    await lock_out_refunds(tx, tenant_id)
    rows = await tx.fetch(
        STALE_LINES_SQL, tenant_id, settlement_id, min(cutoff_us, now_us), MAX_NAMED_LINES + 1
    )
    if not rows:
        return
    errors = []
    for r in rows[:MAX_NAMED_LINES]:
        if int(r["reversed"]):
            reason = "an entry was reversed since the draft"
        elif int(r["frozen"]):
            reason = "an entry is still inside its freeze window"
        else:
            reason = "the distributor is no longer active"
        errors.append(FieldError(f"lines.{r['distributor_id']}", reason))
    more = " (the first 20 are named)" if len(rows) > MAX_NAMED_LINES else ""
    raise Conflict(
        f"settlement {settlement_id!r} is out of date: {len(errors)} line(s){more} changed "
        "since it was drafted (a refund, a hold, or an entry not yet due); approving it would "
        "pay money that is no longer owed. Create a new draft, which nets these changes, and "
        "approve that one.",
        errors,
    )
