"""Every balance from the ledger for 100,000 distributors (issue 5, a printed figure).

``ledger_entries`` gets, per distributor of one tenant, four entries, bulk-inserted with SQL:
a commission still frozen (``pending``), one past its freeze (``available``), a partial
``reversal`` of it, and a ``prize``; one distributor in ten has its available commission held
by a settlement (``settlement_locks``: ``settled`` or ``paid``) and one in twenty an
``absorbed_reversal`` (in no balance). Then ``server.ledger.balances.all_balances`` (one
aggregate query, and the dict it builds) is timed: one warm-up and ``repeats`` runs, median.

    python -m bench balances [--engine sqlite|postgres|both] [--distributors N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

from bench.harness import Line, fresh_database, log, migrate, padded, series, vacuum_analyze

TENANT = "tn_bench_balances"
DAY_US = 86_400_000_000


@dataclass
class BalancesResult:
    engine: str
    distributors: int
    entries: int
    load_s: float
    total_ms: float
    runs_ms: list[float]
    plan: str

    @property
    def us_per_row(self) -> float:
        return self.total_ms * 1000 / self.distributors


# One INSERT ... SELECT per engine; {seq} is the row source of i = 0 .. n - 1.
_ENTRIES = """
INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level, order_id,
  refund_id, reverses_entry_id, available_at_us, created_at_us, memo, dedupe_key)
SELECT {t}, {d}, k.kind, k.amount, 1, {o}, CAST(NULL AS TEXT), CAST(NULL AS BIGINT),
  CASE k.kind WHEN 'pending' THEN {now} + 7 * {day} ELSE {now} - 3 * {day} END,
  {now} - 10 * {day}, '', k.kind || ':' || {d}
FROM {seq}
CROSS JOIN (
  SELECT 'commission' AS kind, 1000 AS amount UNION ALL
  SELECT 'pending', 700 UNION ALL
  SELECT 'reversal', -300 UNION ALL
  SELECT 'prize', 5000
) AS k
UNION ALL
SELECT {t}, {d}, 'absorbed_reversal', -200, 1, {o}, CAST(NULL AS TEXT), CAST(NULL AS BIGINT),
  {now} - 3 * {day},
  {now} - 10 * {day}, '', 'absorbed:' || {d}
FROM {seq} WHERE i % 20 = 3
"""

_LOCKS = """
INSERT INTO settlement_locks (tenant_id, entry_id, settlement_id, status)
SELECT e.tenant_id, e.id, 'st_bench', CASE WHEN e.id % 2 = 0 THEN 'settled' ELSE 'paid' END
FROM ledger_entries e
WHERE e.tenant_id = {t} AND e.kind = 'commission' AND e.distributor_id LIKE '%1'
  AND e.available_at_us <= {now}
"""


async def _load(url: str, n: int, now_us: int) -> None:
    from server.db import connect

    db = await connect(url, pool_size=1)
    d, o = padded(db.engine, "d", "i", 6), padded(db.engine, "o", "i", 6)
    try:
        async with db.transaction() as tx:
            # 'pending' is a commission still frozen: kind 'commission', available_at ahead.
            await tx.execute(
                _ENTRIES.format(t="$1", d=d, o=o, now="CAST($3 AS BIGINT)",
                                day=f"CAST({DAY_US} AS BIGINT)", seq=series(db.engine, "$2")),
                TENANT, n, now_us,
            )  # fmt: skip
            await tx.execute("UPDATE ledger_entries SET kind = 'commission' WHERE kind = 'pending'")
            await tx.execute(_LOCKS.format(t="$1", now="CAST($2 AS BIGINT)"), TENANT, now_us)
        await vacuum_analyze(db, "ledger_entries", "settlement_locks")
    finally:
        await db.close()


async def _time(url: str, engine: str, n: int, repeats: int, now_us: int
                ) -> tuple[list[float], int, str]:
    from server.db import _sqlite_sql, connect
    from server.ledger.balances import ALL_BALANCES_SQL, all_balances

    db = await connect(url, pool_size=2)
    try:
        entries = int(await db.fetchval(
            "SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1", TENANT))
        balances = await all_balances(db, TENANT, now_us)  # warm-up, and a correctness check
        if len(balances) != n:
            raise RuntimeError(f"all_balances returned {len(balances)} rows, expected {n}")
        plain = balances["d000000"]
        expected = {"pending_fen": 700, "available_fen": 1000 - 300 + 5000, "settled_fen": 0,
                    "paid_fen": 0}
        if plain != expected:
            raise RuntimeError(f"balance of d000000 is {plain}, expected {expected}")
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            await all_balances(db, TENANT, now_us)
            runs.append((time.perf_counter() - started) * 1000)
        if engine == "sqlite":
            rows = db._conn.execute(  # type: ignore[attr-defined]
                "EXPLAIN QUERY PLAN " + _sqlite_sql(ALL_BALANCES_SQL), (TENANT, now_us)
            ).fetchall()
            plan = "\n".join(f"    {r[3]}" for r in rows)
        else:
            rows = await db.fetch("EXPLAIN (COSTS OFF) " + ALL_BALANCES_SQL, TENANT, now_us)
            plan = "\n".join(f"    {r[0]}" for r in rows)
    finally:
        await db.close()
    return runs, entries, plan


QUICK = {"distributors": 10_000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distributors", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median)")


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    r = measure(engine, distributors=args.distributors, repeats=args.repeats)
    return [Line("balances", f"all_balances, {r.distributors:,} distributors", engine,
                 f"{r.total_ms:,.0f} ms total, {r.us_per_row:.2f} us/row", "(figure)", None)]


def measure(engine: str, *, distributors: int = 100_000, repeats: int = 3) -> BalancesResult:
    url = fresh_database(engine, "balances")
    migrate(url)
    now_us = time.time_ns() // 1000
    log(f"  balances [{engine}]: bulk-inserting ledger entries for {distributors:,} "
        "distributors ...")
    started = time.perf_counter()
    asyncio.run(_load(url, distributors, now_us))
    load_s = time.perf_counter() - started
    runs, entries, plan = asyncio.run(_time(url, engine, distributors, repeats, now_us))
    result = BalancesResult(engine, distributors, entries, load_s, statistics.median(runs),
                            runs, plan)
    print(format_result(result), flush=True)
    return result


def format_result(r: BalancesResult) -> str:
    return "\n".join([
        f"all_balances [{r.engine}] {r.distributors:,} distributors, {r.entries:,} ledger "
        f"entries (loaded in {r.load_s:.1f} s), median of {len(r.runs_ms)} runs",
        f"  total {r.total_ms:.0f} ms   per distributor row {r.us_per_row:.2f} us   runs "
        + " ".join(f"{x:.0f}" for x in r.runs_ms) + " ms",
        "  query plan of ALL_BALANCES_SQL:",
        r.plan,
        "",
    ])
