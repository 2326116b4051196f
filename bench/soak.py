"""Soak: two ``liebian serve`` nodes x two workers on PostgreSQL (+ Redis) under a fixed mixed
load below saturation, for N minutes. Prints errors, orders sent vs the ledger (to the fen),
RSS per process at start and end, and p50/p99 per route. Nothing asserts: it reports.

    python -m bench soak --minutes 10                  # the issue's figure
    python -m bench soak --minutes 2 --rate 30         # a short run (--quick: 1 minute)

The mix, per second of ``--rate`` requests: 25 % bindings (``POST /v1/referrals``, a new user
on a distributor's link), 25 % orders (``POST /v1/orders`` by a bound user), 5 % partial
refunds, 25 % rank reads (``GET /v1/campaigns/{id}/leaderboard/{d}``), 15 % poster hits
(``GET /v1/posters/{d}``), 5 % exports (``GET /v1/settlements/{id}/export.csv``). Requests
alternate between the nodes and are sent on a fixed schedule (open loop): a slow answer does
not slow the sender.

The database is ``liebian_soak`` on the server of ``LIEBIAN_BENCH_PG_URL`` (its schema is
dropped and re-created), or ``--database-url``; Redis is ``LIEBIAN_BENCH_REDIS_URL`` or
``--redis-url`` (without one the nodes run without Redis, and say so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.harness import PY, ROOT, children, free_port, log, rss_kb

ENGINES = ("postgres",)
QUICK = {"minutes": 1.0}
MIX = (("binding", 25), ("order", 25), ("refund", 5), ("rank", 25), ("poster", 15), ("export", 5))
DISTRIBUTORS = 40


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--rate", type=float, default=30.0, help="requests/s in all (default 30)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per node")
    parser.add_argument("--database-url", default=os.environ.get("LIEBIAN_SOAK_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("LIEBIAN_BENCH_REDIS_URL"))


# --------------------------------------------------------------------------- set-up


def database_url(args: argparse.Namespace) -> str:
    import asyncpg

    from bench import harness

    url = args.database_url or harness._with_database(harness.PG_URL, "liebian_soak")

    async def reset() -> None:
        name = url.rsplit("/", 1)[1].split("?")[0]
        admin = await asyncpg.connect(harness._with_database(url, "postgres"))
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(reset())
    return url


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PY, "-m", "server.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"liebian {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def processes(nodes: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    """``node1``, ``node1.w1``, ... -> pid (the uvicorn supervisor and its workers; the
    multiprocessing helper it also starts is left out)."""
    out: dict[str, int] = {}
    for n, node in enumerate(nodes, 1):
        out[f"node{n}"] = node.pid
        workers = [
            pid
            for pid in children(node.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        for w, pid in enumerate(workers, 1):
            out[f"node{n}.w{w}"] = pid
    return out


# --------------------------------------------------------------------------- load


@dataclass
class State:
    tenant_id: str
    sdk: dict[str, str]
    admin: dict[str, str]
    campaign_id: str
    settlement_id: str
    scenes: list[tuple[str, str]]  # (distributor, scene)
    users: list[str] = field(default_factory=list)  # bound, not yet ordering
    orders: list[tuple[str, int]] = field(default_factory=list)  # (order id, refundable fen)
    seq: int = 0
    orders_fen: int = 0
    refunds_fen: int = 0
    commission_told_fen: int = 0
    reversal_told_fen: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # "route: status or exception" -> count, every kind (the samples keep only five texts)
    error_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)


async def one(kind: str, http: httpx.AsyncClient, st: State, rng: random.Random) -> None:
    st.seq += 1
    n = st.seq
    route: str
    if kind == "order" and not st.users:
        kind = "binding"
    if kind == "refund" and not st.orders:
        kind = "rank"
    start = time.perf_counter()
    try:
        if kind == "binding":
            route = "POST /v1/referrals"
            distributor, scene = rng.choice(st.scenes)
            user = f"u{n}"
            r = await http.post(
                "/v1/referrals", headers=st.sdk, json={"user_id": user, "scene": scene}
            )
            if r.status_code == 200:
                st.users.append(user)
        elif kind == "order":
            route = "POST /v1/orders"
            user = st.users.pop(rng.randrange(len(st.users)))
            amount = rng.randint(100, 100_000)
            body = {
                "order_id": f"o{n}",
                "user_id": user,
                "amount_fen": amount,
                "paid_at": datetime.now(UTC).isoformat(),
                "campaign_id": st.campaign_id,
            }
            r = await http.post("/v1/orders", headers=st.sdk, json=body)
            if r.status_code == 201:
                st.orders_fen += amount
                st.commission_told_fen += sum(c["amount_fen"] for c in r.json()["commissions"])
                st.orders.append((f"o{n}", amount))
        elif kind == "refund":
            route = "POST /v1/orders/{id}/refunds"
            i = rng.randrange(len(st.orders))
            order_id, left = st.orders[i]
            amount = max(1, left // 2)
            if left - amount <= 0:
                st.orders.pop(i)
            else:
                st.orders[i] = (order_id, left - amount)
            r = await http.post(
                f"/v1/orders/{order_id}/refunds",
                headers=st.sdk,
                json={"refund_id": f"r{n}", "amount_fen": amount},
            )
            if r.status_code in (200, 201):
                st.refunds_fen += amount
                st.reversal_told_fen += sum(x["amount_fen"] for x in r.json()["reversals"])
        elif kind == "rank":
            route = "GET /v1/campaigns/{id}/leaderboard/{d}"
            distributor, _ = rng.choice(st.scenes)
            r = await http.get(
                f"/v1/campaigns/{st.campaign_id}/leaderboard/{distributor}", headers=st.sdk
            )
        elif kind == "poster":
            route = "GET /v1/posters/{d}"
            distributor, _ = rng.choice(st.scenes)
            r = await http.get(f"/v1/posters/{distributor}", headers=st.sdk)
        else:
            route = "GET /v1/settlements/{id}/export.csv"
            r = await http.get(f"/v1/settlements/{st.settlement_id}/export.csv", headers=st.admin)
        ok = r.status_code < 400
        detail = f"{r.status_code} {r.text[:200]}"
        kind_of_error = str(r.status_code)
    except httpx.HTTPError as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
        kind_of_error = type(exc).__name__
        route = locals().get("route", kind)
    st.latencies[route].append(time.perf_counter() - start)
    if not ok:
        st.errors[route] += 1
        st.error_kinds[f"{route}: {kind_of_error}"] += 1
        if len(st.error_samples) < 5:
            st.error_samples.append(f"{route}: {detail}")


async def setup(urls: list[str], keys: dict[str, str]) -> State:
    sdk = {"Authorization": f"Bearer {keys['sdk_key']}"}
    admin = {"Authorization": f"Bearer {keys['admin_key']}"}
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as http:
        now = datetime.now(UTC)
        c = await http.post(
            "/v1/campaigns",
            headers=admin,
            json={
                "name": "soak",
                "starts_at": (now - timedelta(days=1)).isoformat(),
                "ends_at": (now + timedelta(days=30)).isoformat(),
                "metric": "orders",
                "prizes": [{"rank_from": 1, "rank_to": 3, "amount_fen": 10000}],
            },
        )
        c.raise_for_status()
        scenes = []
        for d in range(DISTRIBUTORS):
            name = f"d{d}"
            (
                await http.put(f"/v1/distributors/{name}", headers=sdk, json={"nickname": name})
            ).raise_for_status()
            link = await http.post("/v1/links", headers=sdk, json={"distributor_id": name})
            link.raise_for_status()
            scenes.append((name, link.json()["scene"]))
        s = await http.post("/v1/settlements", headers=admin, json={"cutoff": now.isoformat()})
        s.raise_for_status()
    return State(keys["tenant_id"], sdk, admin, c.json()["id"], s.json()["id"], scenes)


async def load(
    urls: list[str], st: State, rate: float, seconds: float, warm: float, pids: dict[str, int]
) -> tuple[int, dict[str, int]]:
    """Send the mix; returns the requests sent and each process's RSS after ``warm`` s."""
    rng = random.Random(19)
    kinds = [k for k, weight in MIX for _ in range(weight)]
    clients = [
        httpx.AsyncClient(base_url=u, timeout=30, limits=httpx.Limits(max_connections=64))
        for u in urls
    ]
    tasks: set[asyncio.Task[None]] = set()
    sent = 0
    rss_warm: dict[str, int] = {}
    start = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            if not rss_warm and elapsed >= warm:
                rss_warm = {name: rss_kb(pid) for name, pid in pids.items()}
            due = int(elapsed * rate) + 1
            while sent < due:
                task = asyncio.create_task(
                    one(rng.choice(kinds), clients[sent % len(clients)], st, rng)
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(max(0.0, sent / rate - (time.perf_counter() - start)))
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    finally:
        for http in clients:
            await http.aclose()
    return sent, rss_warm


async def ledger(url: str, tenant_id: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        out = {
            "orders": await conn.fetchval(
                "SELECT COALESCE(SUM(amount_fen), 0) FROM orders WHERE tenant_id = $1", tenant_id
            ),
            "refunds": await conn.fetchval(
                "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds WHERE tenant_id = $1", tenant_id
            ),
        }
        for kind in ("commission", "reversal", "absorbed_reversal"):
            out[kind] = await conn.fetchval(
                "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger_entries"
                " WHERE tenant_id = $1 AND kind = $2",
                tenant_id,
                kind,
            )
        return {k: int(v) for k, v in out.items()}
    finally:
        await conn.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0


def run(engine: str, args: argparse.Namespace) -> None:
    url = database_url(args)
    env = {
        **os.environ,
        "LIEBIAN_DATABASE_URL": url,
        "LIEBIAN_LOG_REQUESTS": "0",
        "LIEBIAN_SECRET_KEY": "soak-secret-key-0123456789",
        "LIEBIAN_RATE_LIMITS": "0",
        "LIEBIAN_DB_POOL_SIZE": "10",
    }
    env.pop("LIEBIAN_REDIS_URL", None)
    if args.redis_url:
        env["LIEBIAN_REDIS_URL"] = args.redis_url
        env["LIEBIAN_REDIS_CHANNEL"] = f"liebian:soak:{os.getpid()}"
    else:
        log("soak: no --redis-url / LIEBIAN_BENCH_REDIS_URL: nodes run WITHOUT Redis")
    cli(env, "migrate")
    keys = json.loads(cli(env, "tenants", "create", "soak", "--json"))

    nodes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(args.nodes):
            port = free_port()
            nodes.append(
                subprocess.Popen(
                    [
                        PY,
                        "-m",
                        "server.cli",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--workers",
                        str(args.workers),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
            for _ in range(300):
                try:
                    if httpx.get(f"{urls[-1]}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        time.sleep(1.0)  # every worker up
        st = asyncio.run(setup(urls, keys))
        pids = processes(nodes)
        rss_start = {name: rss_kb(pid) for name, pid in pids.items()}
        seconds = args.minutes * 60
        log(
            f"soak: {args.nodes} nodes x {args.workers} workers, {args.rate:g} req/s for "
            f"{args.minutes:g} min, Redis: {'yes' if args.redis_url else 'no'}"
        )
        t0 = time.perf_counter()
        warm = min(60.0, seconds / 5)  # first poster renders, pools filling, caches warming
        sent, rss_warm = asyncio.run(load(urls, st, args.rate, seconds, warm, pids))
        took = time.perf_counter() - t0
        rss_end = {name: rss_kb(pid) for name, pid in pids.items()}
        totals = asyncio.run(ledger(url, st.tenant_id))
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=15)
            except subprocess.TimeoutExpired:
                node.kill()

    errors = sum(st.errors.values())
    print(f"soak: {sent} requests in {took:.0f} s ({sent / took:.1f}/s), errors: {errors}")
    for error_kind, count in sorted(st.error_kinds.items()):
        print(f"  errors {count:>4}  {error_kind}")
    for sample in st.error_samples:
        print(f"  error: {sample}")
    print("\nmoney (fen)                 sent/told     database    equal")
    for label, mine, theirs in (
        ("orders", st.orders_fen, totals["orders"]),
        ("refunds", st.refunds_fen, totals["refunds"]),
        ("commission entries", st.commission_told_fen, totals["commission"]),
        (
            "reversal entries",
            st.reversal_told_fen,
            totals["reversal"] + totals["absorbed_reversal"],
        ),
    ):
        print(f"  {label:<24}{mine:>12}{theirs:>13}    {'yes' if mine == theirs else 'NO'}")
    warm_s = min(60.0, args.minutes * 12)
    print(f"\nRSS (MB)        start  warm ({warm_s:.0f} s)      end   end vs warm")
    for name in pids:
        a, w, b = rss_start[name] / 1024, rss_warm.get(name, 0) / 1024, rss_end[name] / 1024
        change = f"{(b - w) / w * 100:+.1f} %" if w else "-"
        print(f"  {name:<12}{a:>8.1f} {w:>12.1f} {b:>8.1f}   {change}")
    print("\nroute                                       n     p50 ms   p99 ms  errors")
    for route, values in sorted(st.latencies.items()):
        print(
            f"  {route:<40}{len(values):>6}{pct(values, 50):>10.1f}{pct(values, 99):>9.1f}"
            f"{st.errors.get(route, 0):>8}"
        )

