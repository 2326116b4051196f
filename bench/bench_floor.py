"""What 80 % of a bare INSERT leaves an order or a binding on SQLite, and what their SQL takes.

Issue 14 asks for the order and the binding at >= 80 % of the bare one-``INSERT`` endpoint
(``bench api``). On SQLite everything runs on the one event-loop thread of the one worker, so
the figures add up; this section prints the addition:

- served (wrk, 16 connections, as ``api``), in microseconds per request (1 / throughput, one
  core): the bare ``POST /insert`` (the baseline), the app's ``POST /v1/orders`` and
  ``POST /v1/referrals``, and the cheapest authenticated route beside the bare ``GET /get``
  (``GET /v1/program``: what the API key, the tenant and the rate limit add to every request
  before it does anything of its own; the harness serves both without access lines);
- the *allowance*: at 80 % of bare, a request may take 1 / 0.8 - 1 = 25 % of the bare
  request's time more than it;
- the SQL alone: one order and one first binding are sent through the real app, in process,
  with its store recording every statement; those statements (savepoint, reads and writes) are
  then replayed alone on the same database with fresh ids, 16 to a ``BEGIN IMMEDIATE ...
  COMMIT`` (the app's group commit forms groups of 16 at 16 connections), and timed.

When the SQL beyond the bare INSERT plus the per-request cost exceeds the allowance, 80 % is out
of reach on this engine whatever the rest of the request costs: that work would have to leave
the event-loop thread (README, Benchmarks).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench.bare_app import SQLITE_INSERT
from bench.bare_app import open_sqlite as open_bare_sqlite
from bench.bench_api import Seeded, scenario_loads, seed
from bench.harness import (
    Line,
    Load,
    add_load_options,
    client_from,
    create_tenant,
    fresh_database,
    log,
    run_load,
    serve_app,
    serve_bare,
)

ENGINES = ("sqlite",)
QUICK = {"requests": 1000, "replays": 64, "repeats": 1}
GROUP = 16  # transactions per group commit at 16 connections (the app forms groups of up to 16)
JSON = "application/json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=10_000,
                        help="requests per served run (each endpoint)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="served runs per endpoint (alternating; medians)")
    parser.add_argument("--replays", type=int, default=4_000,
                        help="times each request's statements are replayed (in groups of 16)")
    add_load_options(parser)


class _Recording(sqlite3.Connection):
    """A connection that keeps every statement it runs while ``log`` is a list."""

    log: list[tuple[str, Any, bool]] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.log is not None:
            self.log.append((sql, parameters, False))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        rows = [tuple(p) for p in parameters]
        if self.log is not None:
            self.log.append((sql, rows, True))
        return super().executemany(sql, rows)


Statement = tuple[str, Any, bool]


def _served_us(base_url: str, load: Load, requests: int, expected: str) -> float:
    result = run_load(base_url, load, requests)
    if result.errors:
        raise RuntimeError(f"{expected}: {result.errors} errors in the served run")
    return 1e6 / result.rps


def _loads(seeded: Seeded) -> dict[str, Load]:
    """``bench api``'s requests: an order at depth 3 and a new user bound through a link."""
    loads = scenario_loads(seeded)
    return {"order": loads["POST /v1/orders"][0], "binding": loads["POST /v1/referrals"][0]}


def record(path: str, seeded: Seeded, token: str) -> dict[str, list[Statement]]:
    """The statements of one order and one first binding, sent through the real app in
    process (after a few of each, so its caches are warm), ``token`` as their unique id."""
    from litestar.testing import TestClient

    from server.app import create_app
    from server.db import SqliteDatabase, open_sqlite

    logging.getLogger("httpx").setLevel(logging.WARNING)
    conn = open_sqlite(path, factory=_Recording)
    assert isinstance(conn, _Recording)
    recorded: dict[str, list[Statement]] = {}
    saved = os.environ.get("LIEBIAN_LOG_REQUESTS")
    os.environ["LIEBIAN_LOG_REQUESTS"] = "0"  # as the served apps (harness): no access lines
    try:
        app = create_app(db=SqliteDatabase(conn))
    finally:
        if saved is None:
            del os.environ["LIEBIAN_LOG_REQUESTS"]
        else:
            os.environ["LIEBIAN_LOG_REQUESTS"] = saved
    with TestClient(app) as http:
        for name, load in _loads(seeded).items():
            for n in range(6):
                if n == 5:
                    conn.log = []
                unique = token if n == 5 else f"warm{n}-{token}"[: len(token)]
                body = (load.body or "").replace("@ID@", unique)
                response = http.post(load.path, content=body, headers=load.headers)
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"{name}: {response.status_code} {response.text}")
            assert conn.log is not None
            recorded[name] = [s for s in conn.log if s[0] not in ("BEGIN IMMEDIATE", "COMMIT")]
            conn.log = None
    conn.close()
    return recorded


def _swap(value: Any, token: str, fresh: str) -> Any:
    return value.replace(token, fresh) if isinstance(value, str) and token in value else value


def replay(path: str, statements: Sequence[Statement], token: str, times: int) -> float:
    """Microseconds per request of ``statements`` run alone ``times`` times, ``GROUP`` to a
    commit, each time with ``token`` swapped for a fresh id of the same length."""
    from server.db import open_sqlite

    conn = open_sqlite(path)
    conn.execute("PRAGMA wal_autocheckpoint=0")  # as the serving connection (its own thread)
    groups = max(1, times // GROUP)
    start = time.perf_counter()
    for g in range(groups):
        conn.execute("BEGIN IMMEDIATE")
        for i in range(GROUP):
            fresh = f"{g * GROUP + i:0{len(token)}d}"
            for sql, params, many in statements:
                if many:
                    conn.executemany(sql, [[_swap(v, token, fresh) for v in p] for p in params])
                else:
                    conn.execute(sql, [_swap(v, token, fresh) for v in params]).fetchall()
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return elapsed / (groups * GROUP) * 1e6


def replay_bare(path: str, times: int) -> float:
    """Microseconds per request of the bare app's one INSERT (and its commit) run alone."""
    conn = open_bare_sqlite(path)
    prefix = f"floor{time.time_ns() % 10**12:012d}-"
    now = time.time_ns() // 1000
    start = time.perf_counter()
    for i in range(times):
        conn.execute(SQLITE_INSERT, (f"{prefix}{i}", "u1", 10000, now))
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / times * 1e6


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    client_from(args)
    url = fresh_database(engine, "floor")
    keys = create_tenant(url, "bench")
    token = f"floor{time.time_ns() % 10**12:012d}"
    with serve_app(url) as app, serve_bare(url) as bare:
        seeded = seed(app.base_url, keys)
        loads = _loads(seeded)
        insert = Load("POST", "/insert", {"Content-Type": JSON},
                      json.dumps({"id": "@ID@", "user_id": "u1", "amount_fen": 10000}))
        log(f"  served runs: {args.requests} requests each ...")
        for base, load in ((app.base_url, loads["order"]), (bare.base_url, insert)):
            run_load(base, load, max(200, args.requests // 10))  # warm-up
        app_get, bare_get, _ = scenario_loads(seeded)["GET /v1/program"]
        runs = {
            "bare GET /get": (bare.base_url, bare_get, args.requests * 2),
            "app GET /v1/program": (app.base_url, app_get, args.requests * 2),
            "bare POST /insert": (bare.base_url, insert, args.requests),
            "app POST /v1/orders": (app.base_url, loads["order"], args.requests),
            "app POST /v1/referrals": (app.base_url, loads["binding"], args.requests),
        }
        measured: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # alternating, so a slow spell of the machine hits all
            for name, (base, load, n) in runs.items():
                measured[name].append(_served_us(base, load, n, name))
        served = {name: statistics.median(values) for name, values in measured.items()}
    path = url.removeprefix("sqlite:///")
    statements = record(path, seeded, token)
    alone = {name: replay(path, s, token, args.replays) for name, s in statements.items()}
    bare_sql = replay_bare(path, args.replays)

    bare_us = served["bare POST /insert"]
    allowed = bare_us / 0.8 - bare_us
    # What every authenticated request costs beyond the bare one (API key, tenant, rate limit,
    # routing), measured on the cheapest route (the harness serves both without access lines).
    per_request = served["app GET /v1/program"] - served["bare GET /get"]
    print(f"\nSQLite, one worker; us per request (served: 1 / throughput at 16 connections; "
          f"alone: the statements by themselves, {GROUP} to a commit as the app groups them):")
    for name, us in served.items():
        print(f"  {name:<30} {us:6.0f} us  served (median of {args.repeats})")
    print(f"  {'bare INSERT + commit':<30} {bare_sql:6.0f} us  alone")
    for name, us in alone.items():
        kinds = ", ".join(" ".join(s[0].split()[:3:2] if s[0].lstrip().startswith("INSERT")
                                   else s[0].split()[:1]) for s in statements[name])
        print(f"  {'the ' + name + ' SQL':<30} {us:6.0f} us  alone ({kinds})")
    print(f"  80 % of bare allows an order or a binding {allowed:.0f} us more than the bare "
          f"request in all; an authenticated request costs {per_request:.0f} us more than "
          "the bare one before any work of its own")
    return [
        Line("floor", f"{name}: SQL + auth - bare", engine,
             f"{floor:+.0f} us ({alone[name]:.0f} - {bare_sql:.0f} SQL, {per_request:+.0f} per "
             f"request): at best {bare_us / (bare_us + floor):.0%} of bare, "
             f"{bare_us / (bare_us + floor - per_request):.0%} by the SQL alone (now "
             f"{bare_us / served[key]:.0%}); 80 % allows {allowed:+.0f} us",
             f"<= {allowed:.0f} us", floor <= allowed)
        for name, key in (("order", "app POST /v1/orders"), ("binding", "app POST /v1/referrals"))
        for floor in [alone[name] - bare_sql + per_request]
    ]  # fmt: skip
