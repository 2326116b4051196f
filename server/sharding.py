"""How the schema is distributed by tenant (Citus); see docs/deploy.md.

Every table is *distributed* by ``tenant_id`` (its primary key and every unique key start with
``tenant_id``; migration 0030) except:

- ``REFERENCE_TABLES``: small tables read before the tenant is known (an API key's prefix, a
  share code, a console session cookie) or naming tenants themselves; replicated to every node
  (``create_reference_table``);
- ``LOCAL_TABLES``: Piccolo's migration bookkeeping, on the coordinator only.

Every statement the store issues either constrains each distributed table it names to one
tenant (``tenant_id = $n``; joins between distributed tables on ``tenant_id``) or names
reference tables only; ``tests/server/test_shard_routing.py`` checks every statement of the
PostgreSQL test pass. The exceptions are the maintenance statements in ``MAINTENANCE`` — jobs
over all tenants (purges, roll-ups), which Citus runs as multi-shard statements in parallel.
"""

from __future__ import annotations

__all__ = ["LOCAL_TABLES", "MAINTENANCE", "MIGRATION_MODULE_PREFIX", "REFERENCE_TABLES"]

REFERENCE_TABLES = frozenset(
    {
        "tenants",  # tenant_id -> name; listed by operators and jobs over all tenants
        "api_keys",  # key prefix -> tenant (authentication reads it before the tenant is known)
        "link_codes",  # share code -> tenant (the public /s/{code} redirect and click counter)
        "console_sessions",  # session cookie -> tenant (the console's sign-in)
        "stats_watermarks",  # one row per roll-up source: how far the daily figures are folded
    }
)

LOCAL_TABLES = frozenset({"migration"})

# Multi-shard maintenance, allowed: a job's statement over every tenant's rows, by the function
# that issues it. Each is a whole-table scan or delete by age that Citus fans out to every shard
# in parallel; none runs on a request path.
MAINTENANCE: dict[str, str] = {
    "server.maintenance.purge_idempotency_keys": "deletes replay records past their age, in"
    " batches, across tenants (a multi-shard DELETE; its LIMIT subquery is planned first)",
    "server.stats.service.roll_up": "folds new rows of every tenant, by id watermark, into"
    " daily_stats (a multi-shard read in id order; its writes are per tenant)",
    "server.webhooks.delivery._due_rows": "the delivery loop's poll for due rows of every"
    " tenant, ranked per tenant (a multi-shard read; the claims that follow are per tenant)",
    "server.webhooks.delivery.give_up_abandoned": "the delivery loop marks rows whose last"
    " attempt never reported as given up, across tenants (a multi-shard UPDATE)",
    "server.ledger.maturity.advance_maturity": "the maturity job (called without a tenant)"
    " finds the tenants with newly matured entries, a multi-shard read; each checkpoint then"
    " moves per tenant",
    "server.settlements.export._find_settlement_of_any_tenant": "`liebian settlements export"
    " ID` without --tenant: an operator's look-up across tenants",
}

# Schema migrations (modules ``server/migrations/liebian_*``) run once, on the coordinator,
# before or while tables are distributed; their backfills read every tenant by design.
MIGRATION_MODULE_PREFIX = "liebian_"
