"""Migration 0030 on a database with rows from before it, on both engines: the rows stay,
the keys become tenant-first, share codes move to link_codes, ids keep counting up."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.sharding import LOCAL_TABLES, REFERENCE_TABLES
from tests.conftest import ENGINE, PG_URL

MIGRATIONS = Path(__file__).parents[2] / "server" / "migrations"
OURS = "2026-12-01T03:00:00:000000"


def _previous_id() -> str:
    ids = [
        m.group(1)
        for path in MIGRATIONS.glob("liebian_*.py")
        if (m := re.search(r'^ID = "([^"]+)"', path.read_text(), re.M))
    ]
    return max(i for i in ids if i < OURS)


def _migrate(url: str, up_to: str = "all") -> None:
    script = (
        "import asyncio, sys\n"
        "from piccolo.apps.migrations.commands.forwards import run_forwards\n"
        "result = asyncio.run(run_forwards('liebian', migration_id=sys.argv[1]))\n"
        "sys.exit(0 if result.success else result.message)\n"
    )
    env = {**os.environ, "LIEBIAN_DATABASE_URL": url, "PICCOLO_CONF": "server.piccolo_conf"}
    subprocess.run(
        [sys.executable, "-c", script, up_to], env=env, check=True, timeout=300, capture_output=True
    )


# Rows from before the migration (the columns without a default, and a few with one).
ROWS = [
    "INSERT INTO tenants (tenant_id, name, created_at_us)"
    " VALUES ('t1', 'one', 1), ('t2', 'two', 2)",
    "INSERT INTO links (tenant_id, code, distributor_id, campaign_id, channel, created_at_us)"
    " VALUES ('t1', 'AAAA1111', 'd1', '', '', 1), ('t2', 'BBBB2222', 'd1', '', '', 2)",
    "INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, request_hash,"
    " created_at_us) VALUES ('t1', 'o1', 'u1', 1000, 1, 'h', 1),"
    " ('t2', 'o1', 'u1', 2000, 1, 'h', 1)",
    "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, order_id,"
    " available_at_us, created_at_us, dedupe_key) VALUES"
    " ('t1', 'd1', 'commission', 100, 'o1', 1, 1, 'order:o1:0'),"
    " ('t2', 'd1', 'commission', 200, 'o1', 1, 1, 'order:o1:0'),"
    " ('t2', 'd1', 'reversal', -50, 'o1', 1, 1, 'refund:r1:0')",
    "INSERT INTO settlements (tenant_id, settlement_id, cutoff_us, status, total_fen,"
    " line_count, created_at_us) VALUES ('t1', 'st1', 1, 'draft', 100, 1, 1)",
    "INSERT INTO withdrawals (tenant_id, withdrawal_id, distributor_id, amount_fen, status,"
    " created_at_us) VALUES ('t1', 'w1', 'd1', 100, 'requested', 1)",
    "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, events, secret, created_at_us)"
    " VALUES ('t2', 'ep1', 'https://example.com/h', '[]', 's', 1)",
    "INSERT INTO console_audit (audit_id, tenant_id, object_id, action, actor, at_us)"
    " VALUES ('a1', 't1', 'd1', 'freeze', 'admin', 1)",
]
CHECKED = [
    "tenants",
    "links",
    "orders",
    "ledger_entries",
    "settlements",
    "withdrawals",
    "webhook_endpoints",
    "console_audit",
]


class _Sqlite:
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self.path = path

    def run(self, sql: str) -> list[Any]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    def unique_keys(self) -> list[tuple[str, str, str]]:
        """(table, key, first column) of every primary and unique key but rowid ones."""
        found = []
        for (table,) in self.run(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ):
            for index in self.run(f'PRAGMA index_list("{table}")'):
                if index[2]:  # unique
                    first = self.run(f'PRAGMA index_info("{index[1]}")')[0][2]
                    found.append((table, index[1], first))
        return found


class _Postgres:
    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, sql: str) -> list[Any]:
        import asyncpg

        async def go() -> list[Any]:
            conn = await asyncpg.connect(self.url)
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        return asyncio.run(go())

    def unique_keys(self) -> list[tuple[str, str, str]]:
        return self.run(
            "SELECT c.relname, i.relname, a.attname FROM pg_index x"
            " JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]"
            " WHERE n.nspname = 'public' AND (x.indisunique OR x.indisprimary)"
        )


@pytest.fixture
def old_database(tmp_path: Path) -> Iterator[Any]:
    if ENGINE == "sqlite":
        yield _Sqlite(tmp_path / "old.db")
        return
    base, _, name = PG_URL.rpartition("/")
    scratch = f"{name}_tenant_keys"
    admin = _Postgres(f"{base}/postgres")
    admin.run(f'DROP DATABASE IF EXISTS "{scratch}"')
    admin.run(f'CREATE DATABASE "{scratch}"')
    try:
        yield _Postgres(f"{base}/{scratch}")
    finally:
        admin.run(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


@pytest.mark.slow
def test_migration_keeps_rows_and_makes_keys_tenant_first(old_database: Any) -> None:
    db = old_database
    _migrate(db.url, _previous_id())
    for sql in ROWS:
        db.run(sql)
    before = {t: sorted(db.run(f"SELECT * FROM {t}")) for t in CHECKED}
    assert any(table == "links" and first == "code" for table, _, first in db.unique_keys()), (
        "the old schema had a global unique key on links.code"
    )

    _migrate(db.url)

    after = {t: sorted(db.run(f"SELECT * FROM {t}")) for t in CHECKED}
    assert after == before
    assert sorted(db.run("SELECT code, tenant_id FROM link_codes")) == [
        ("AAAA1111", "t1"),
        ("BBBB2222", "t2"),
    ]
    wrong = [
        key
        for key in db.unique_keys()
        if key[0] not in REFERENCE_TABLES | LOCAL_TABLES and key[2] != "tenant_id"
    ]
    # SQLite keeps an INTEGER PRIMARY KEY as the rowid (not an index, so not listed).
    assert wrong == []
    # Ids keep counting up after the rebuild; ids were unique per tenant's key only now.
    db.run(
        "INSERT INTO withdrawals (tenant_id, withdrawal_id, distributor_id, amount_fen,"
        " status, created_at_us) VALUES ('t2', 'w1', 'd1', 5, 'requested', 2)"
    )
    ids = db.run("SELECT id FROM withdrawals ORDER BY id")
    assert len(ids) == 2 and ids[1][0] > ids[0][0]
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        db.run(
            "INSERT INTO withdrawals (tenant_id, withdrawal_id, distributor_id, amount_fen,"
            " status, created_at_us) VALUES ('t2', 'w1', 'd1', 5, 'requested', 3)"
        )
    # Running the migrations again changes nothing (each step is idempotent or recorded).
    _migrate(db.url)
    assert {t: sorted(db.run(f"SELECT * FROM {t}")) for t in CHECKED}["links"] == after["links"]
