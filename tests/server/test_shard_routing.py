"""A Citus-ready schema: keys start with tenant_id, and every statement routes to one shard.

The PostgreSQL pass records every statement the store runs (tests/conftest.py wraps
server.db's connection); the last test parses each (sqlglot) and fails on any that could
touch more than one tenant's shard, but the documented maintenance in server.sharding.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import tests.shard_routing as routing
from server.sharding import LOCAL_TABLES, MAINTENANCE, MIGRATION_MODULE_PREFIX, REFERENCE_TABLES
from tests.conftest import PG_URL, TenantKeys
from tests.shard_routing import multi_shard_reasons

_NOT_ROUTED = re.compile(r"^\s*(SELECT\s+set_config|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)", re.I)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM orders WHERE tenant_id = $1 AND order_id = $2",
        "SELECT o.a FROM orders o JOIN refunds r ON r.tenant_id = o.tenant_id"
        " AND r.order_id = o.order_id WHERE o.tenant_id = $1",
        "INSERT INTO orders (tenant_id, order_id) VALUES ($1, $2)"
        " ON CONFLICT (tenant_id, order_id) DO NOTHING",
        "UPDATE distributors SET tier = $3 WHERE tenant_id = $1 AND distributor_id = $2",
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at_us < $2",
        "WITH x AS (SELECT user_id FROM user_bindings WHERE tenant_id = $1)"
        " SELECT * FROM x JOIN team_counts t ON t.tenant_id = $1 AND t.user_id = x.user_id",
        "SELECT tenant_id, scope FROM api_keys WHERE prefix = $1",
        "SELECT 1 FROM orders o WHERE o.tenant_id = $1 AND EXISTS (SELECT 1 FROM refunds r"
        " WHERE r.tenant_id = o.tenant_id AND r.order_id = o.order_id)",
    ],
)
def test_single_shard_statements_pass(sql: str) -> None:
    assert multi_shard_reasons(sql) == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM orders WHERE order_id = $1",
        "SELECT a FROM orders WHERE tenant_id = $1 OR order_id = $2",
        "SELECT o.a FROM orders o JOIN refunds r ON r.order_id = o.order_id WHERE o.tenant_id = $1",
        "DELETE FROM idempotency_keys WHERE created_at_us < $1",
        "UPDATE webhook_outbox SET attempts = attempts + 1 WHERE id = $1",
        "INSERT INTO orders (order_id) VALUES ($1)",
        "SELECT * FROM orders WHERE tenant_id = ANY($1)",
        "SELECT tenant_id FROM links WHERE code = $1",
    ],
)
def test_multi_shard_statements_are_named(sql: str) -> None:
    assert multi_shard_reasons(sql)


def _needs_routing(sql: str) -> bool:
    return not _NOT_ROUTED.match(sql)


@pytest.mark.postgres_only
@pytest.mark.run_last
def test_every_statement_of_the_pass_routes_to_one_shard(tenant: TenantKeys) -> None:
    # Run alone, this test still has statements to check: a tenant, a distributor, a link.
    created = tenant.put("/v1/distributors/routing", {"nickname": "R"},
                         headers={"Idempotency-Key": "routing-1"})  # fmt: skip
    assert created.status_code == 200, created.text
    assert any("FROM tenants" in sql for sql, _ in routing.RECORDED), "nothing was recorded"
    offenders = []
    for (sql, caller), first_test in sorted(routing.RECORDED.items()):
        if not _needs_routing(sql) or caller in MAINTENANCE:
            continue
        if any(part.startswith(MIGRATION_MODULE_PREFIX) for part in caller.split(".")):
            continue
        if caller.startswith("tests."):
            continue  # a test arranging rows through the store, not the service's own SQL
        reasons = multi_shard_reasons(sql)
        if reasons:
            statement = " ".join(sql.split())
            offenders.append(f"{caller} ({first_test}): {'; '.join(reasons)}\n    {statement}")
    assert not offenders, f"{len(offenders)} multi-shard statements:\n" + "\n".join(offenders)


_KEYS = """
SELECT c.relname AS table_name, i.relname AS index_name, x.indisprimary AS is_primary,
       a.attname AS first_column
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
WHERE n.nspname = 'public' AND (x.indisunique OR x.indisprimary) AND c.relkind = 'r'
ORDER BY 1, 2
"""


async def _catalog_keys(url: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(_KEYS))
    finally:
        await conn.close()


@pytest.mark.postgres_only
def test_every_key_starts_with_tenant_id(settings: Any) -> None:
    """From the catalog after every migration: tables added later are held to it too."""
    rows = asyncio.run(_catalog_keys(PG_URL))
    tables = {row["table_name"] for row in rows}
    assert tables >= REFERENCE_TABLES, "a reference table is missing"
    assert {"orders", "ledger_entries", "links"} <= tables
    wrong = [
        f"{row['table_name']}.{row['index_name']} starts with {row['first_column']}"
        for row in rows
        if row["table_name"] not in REFERENCE_TABLES | LOCAL_TABLES
        and row["first_column"] != "tenant_id"
    ]
    assert not wrong, "keys that do not start with tenant_id:\n" + "\n".join(wrong)
    primary = {row["table_name"] for row in rows if row["is_primary"]}
    assert not tables - primary, f"tables without a primary key: {sorted(tables - primary)}"


@pytest.mark.parametrize("name", sorted(MAINTENANCE))
def test_each_allowed_maintenance_statement_names_a_real_function(name: str) -> None:
    import importlib

    module, _, function = name.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))
