"""The upline of a user at depth 3 among 1,000,000 bindings (issue 4: p99 under 2 ms).

``user_bindings`` gets 1,000,000 users of one tenant, bulk-inserted with one SQL statement
(a recursive CTE on SQLite, ``generate_series`` on PostgreSQL): user ``i``'s inviter is user
``(i - 1) // 10``, a tree of fan-out 10 and depth 6 in which every user from ``i = 111`` on has
three bound ancestors (1 in 10 bindings carries an expiry in the future, so the "active"
predicate is evaluated for real). A second tenant gets 100,000 users so the tenant key matters.
Then ``server.referrals.graph.upline_of`` is timed for random users with a full three-level
upline, through the app's own store (``server.db.connect``), one lookup at a time.
The statement's query plan is printed to show the three index probes.

    python -m bench upline [--engine sqlite|postgres|both] [--users N] [--lookups N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import time
from dataclasses import dataclass

from bench.harness import Line, fresh_database, log, migrate, padded, series, vacuum_analyze

TENANT = "tn_bench_upline"
OTHER = "tn_bench_other"
FANOUT = 10
TARGET_P99_MS = 2.0


@dataclass
class UplineResult:
    engine: str
    users: int
    lookups: int
    load_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    plan: str

    @property
    def ok(self) -> bool:
        return self.p99_ms < TARGET_P99_MS


def _user(i: int) -> str:
    return f"u{i:07d}"


async def _fill(url: str, tenants: list[tuple[str, int]], now_us: int) -> None:
    from server.db import connect

    db = await connect(url, pool_size=1)
    now, user = "CAST($4 AS BIGINT)", functools.partial(padded, db.engine, "u", width=7)
    try:
        for tenant, users in tenants:
            await db.execute(
                "INSERT INTO user_bindings (tenant_id, user_id, inviter_id, bound_at_us,"
                f" expires_at_us, first_seen_at_us, event_id) SELECT $1, {user('i')},"
                f" CASE WHEN i = 0 THEN NULL ELSE {user('(i - 1) / $3')} END,"
                f" CASE WHEN i = 0 THEN NULL ELSE {now} - i END,"
                f" CASE WHEN i % 10 = 7 THEN {now} + CAST(86400000000 AS BIGINT) * 365 END,"
                f" {now} - i, CASE WHEN i = 0 THEN NULL ELSE i END FROM {series(db.engine, '$2')}",
                tenant, users, FANOUT, now_us,
            )
        # What autovacuum would do shortly after a bulk load; without statistics the planner
        # still picks the unique index for these equality probes, but be explicit.
        await vacuum_analyze(db, "user_bindings")
    finally:
        await db.close()


async def _plan(db: object, engine: str, sample: str, now_us: int) -> str:
    from server.referrals.graph import UPLINE_SQL

    if engine == "sqlite":
        raw = db._conn  # type: ignore[attr-defined]
        from server.db import _sqlite_sql

        rows = raw.execute("EXPLAIN QUERY PLAN " + _sqlite_sql(UPLINE_SQL),
                           (TENANT, sample, now_us)).fetchall()
        return "\n".join(f"    {r[3]}" for r in rows)
    rows = await db.fetch(  # type: ignore[attr-defined]
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + UPLINE_SQL, TENANT, sample, now_us
    )
    return "\n".join(f"    {r[0]}" for r in rows)


async def _time_lookups(url: str, engine: str, users: int, lookups: int, now_us: int
                        ) -> tuple[list[float], str]:
    from server.db import connect
    from server.referrals.graph import upline_of

    db = await connect(url, pool_size=4)
    rnd = random.Random(4)
    first = 1 + FANOUT + FANOUT**2  # every user from here on has three bound ancestors
    try:
        sample = _user(rnd.randrange(first, users))
        chain, _ = await upline_of(db, TENANT, sample, now_us)
        i = int(sample[1:])
        expected = []
        for _ in range(3):
            i = (i - 1) // FANOUT
            expected.append(_user(i))
        if chain != expected:
            raise RuntimeError(f"upline of {sample} is {chain}, expected {expected}")
        for _ in range(200):  # warm-up: statement caches, prepared statements
            await upline_of(db, TENANT, _user(rnd.randrange(first, users)), now_us)
        timings = []
        for _ in range(lookups):
            user = _user(rnd.randrange(first, users))
            started = time.perf_counter_ns()
            chain, _ = await upline_of(db, TENANT, user, now_us)
            timings.append((time.perf_counter_ns() - started) / 1e6)
            if len(chain) != 3:
                raise RuntimeError(f"upline of {user} has {len(chain)} levels, expected 3")
        plan = await _plan(db, engine, sample, now_us)
    finally:
        await db.close()
    return timings, plan


QUICK = {"users": 100_000, "lookups": 500}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=1_000_000, help="bindings in the tree")
    parser.add_argument("--lookups", type=int, default=2_000, help="timed upline lookups")


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    r = measure(engine, users=args.users, lookups=args.lookups)
    return [Line("upline", f"upline_of, {r.users:,} users", engine,
                 f"p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms",
                 f"p99 < {TARGET_P99_MS:g} ms", r.ok)]


def measure(engine: str, *, users: int = 1_000_000, lookups: int = 2000) -> UplineResult:
    url = fresh_database(engine, "upline")
    migrate(url)
    now_us = time.time_ns() // 1000
    log(f"  upline [{engine}]: bulk-inserting {users:,} bindings ...")
    started = time.perf_counter()
    asyncio.run(_fill(url, [(TENANT, users), (OTHER, users // 10)], now_us))
    load_s = time.perf_counter() - started
    timings, plan = asyncio.run(_time_lookups(url, engine, users, lookups, now_us))
    timings.sort()
    result = UplineResult(
        engine=engine, users=users, lookups=lookups, load_s=load_s,
        p50_ms=statistics.median(timings),
        p99_ms=timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        max_ms=timings[-1], plan=plan,
    )
    print(format_result(result), flush=True)
    return result


def format_result(r: UplineResult) -> str:
    return "\n".join([
        f"upline_of at depth 3 [{r.engine}] {r.users:,} users bound (+{r.users // 10:,} in "
        f"another tenant, loaded in {r.load_s:.1f} s), {r.lookups} random lookups",
        f"  p50 {r.p50_ms:.3f} ms   p99 {r.p99_ms:.3f} ms   max {r.max_ms:.3f} ms   "
        f"(target p99 < {TARGET_P99_MS:g} ms: {'met' if r.ok else 'MISSED'})",
        "  query plan of UPLINE_SQL:",
        r.plan,
        "",
    ])
