"""``bench floor`` records what the real app runs for an order and a binding, and replays it.

The section's figures (microseconds) are never asserted; what is checked is that the recording
holds the statements the app really runs (inside one savepoint each) and that the replay
writes them again with fresh ids, so the timing it prints is of real work.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from litestar.testing import TestClient

from bench.bench_api import seed
from bench.bench_floor import record, replay, replay_bare
from bench.harness import create_tenant
from server.app import create_app
from server.db import SqliteDatabase, open_sqlite


def _count(path: str, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_the_floor_replays_the_statements_the_app_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "floor.db")
    keys = create_tenant(f"sqlite:///{path}")
    conn = open_sqlite(path)
    with TestClient(create_app(db=SqliteDatabase(conn))) as http:
        seeded = seed(http, keys)
    conn.close()

    token = "floor000000000001"
    recorded = record(path, seeded, token)

    tables = {
        name: [sql.split()[2] for sql, _, _ in statements if sql.lstrip().startswith("INSERT")]
        for name, statements in recorded.items()
    }
    assert tables["order"] == ["orders", "ledger_entries", "distributor_totals", "user_bindings"]
    assert set(tables["binding"]) >= {"attribution_events", "user_bindings", "team_counts"}
    for statements in recorded.values():
        assert statements[0][0] != "BEGIN IMMEDIATE" and statements[-1][0] == "RELEASE tx"
        assert any(token in str(params) for _, params, _ in statements)

    orders = "SELECT COUNT(*) FROM orders"
    entries = "SELECT COUNT(*) FROM ledger_entries"
    bindings = "SELECT COUNT(*) FROM user_bindings WHERE inviter_id IS NOT NULL"
    before = [_count(path, q) for q in (orders, entries, bindings)]
    assert replay(path, recorded["order"], token, 32) > 0
    assert replay(path, recorded["binding"], token, 32) > 0
    after = [_count(path, q) for q in (orders, entries, bindings)]
    # 32 orders of 3 commission entries each, 32 users bound
    assert [a - b for a, b in zip(after, before, strict=True)] == [32, 96, 32]

    assert replay_bare(path, 10) > 0
    assert _count(path, "SELECT COUNT(*) FROM bench_bare_inserts") == 10
