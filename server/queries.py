"""SQL rules shared by several domains, each written once and imported where it is used.

- :func:`binding_active`: when a referral binding counts (it names an inviter and has not
  lapsed); every upline, team, tier and reconciliation query uses it.
- :data:`DAY_US`: one day in the microseconds every stored time is kept in (freeze days,
  binding validity, tier windows).
- :func:`claim_key` / :data:`CLAIM_KEY_SQL` / :data:`RELEASE_KEY_SQL`: the ``Idempotency-Key``
  claim (an insert that loses to an existing key) and its release
  (:mod:`server.idempotency`, and the order write's own claim in :mod:`server.orders.store`).
- :data:`ENTRY_LOCK_JOIN` / :data:`LOCKED_ENTRY_JOIN`: a ledger entry ``e`` with the settlement
  lock ``l`` that holds it (if any): its status (settled, paid) comes from the lock.
"""

from __future__ import annotations

__all__ = [
    "CLAIM_KEY_SQL",
    "DAY_US",
    "ENTRY_LOCK_JOIN",
    "LOCKED_ENTRY_JOIN",
    "RELEASE_KEY_SQL",
    "binding_active",
    "claim_key",
    "upline_joins",
]

DAY_US = 86_400_000_000


def binding_active(alias: str, at: str) -> str:
    """The predicate "the binding row ``alias`` counts at time ``at``" (a SQL expression such
    as ``$3``): it names an inviter and its validity (``expires_at_us``, NULL: forever) has not
    ended by then."""
    return (
        f"({alias}.inviter_id IS NOT NULL"
        f" AND ({alias}.expires_at_us IS NULL OR {alias}.expires_at_us > {at}))"
    )


def upline_joins(user: str, at: str, levels: int = 3) -> str:
    """``LEFT JOIN``s ``b1``, ``b2``, ``b3`` (the first ``levels``): the bindings of ``user``
    (a SQL expression such as ``$2``), of its inviter and of that inviter's inviter that count
    at ``at``, in tenant ``$1``; ``b1.inviter_id``, ``b2.inviter_id``, ``b3.inviter_id`` are the
    upline, nearest first (NULL past its end: a chain stops at the first binding that does not
    count). Probes of ``(tenant_id, user_id)``, joined straight into the caller's ``FROM`` (a
    derived table of them is materialised by SQLite first: 12 against 9 us for the order's
    context read)."""
    return "\n".join(
        f"LEFT JOIN user_bindings {b} ON {b}.tenant_id = $1 AND {b}.user_id = {who}"
        f" AND {binding_active(b, at)}"
        for b, who in (("b1", user), ("b2", "b1.inviter_id"), ("b3", "b2.inviter_id"))[:levels]
    )


def claim_key(rows: str) -> str:
    """Claim an ``Idempotency-Key`` with the row(s) ``rows`` give (a ``VALUES`` or a
    ``SELECT`` of tenant_id, key, request_hash, status_code, response_body, created_at_us);
    nothing is inserted when the tenant's key exists."""
    return (
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, response_body,"
        f" created_at_us) {rows} ON CONFLICT (tenant_id, key) DO NOTHING"
    )


# $1 tenant, $2 key, $3 request hash, $4 status code, $5 response body, $6 now: the claimed
# row's id, or no row when another request holds the key.
CLAIM_KEY_SQL = claim_key("VALUES ($1, $2, $3, $4, $5, $6)") + " RETURNING id"
# Give a claimed key back (the write under it did not happen): $1 tenant, $2 key.
RELEASE_KEY_SQL = "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2"

ENTRY_LOCK_JOIN = "LEFT JOIN settlement_locks l ON l.tenant_id = e.tenant_id AND l.entry_id = e.id"
# The locked entries only (``FROM settlement_locks l`` joined to their entries).
LOCKED_ENTRY_JOIN = "JOIN ledger_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id"
