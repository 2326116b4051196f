"""The rate limiter's cost on GET /v1/program (issue 12): the app with limits on vs off.

Two app servers on the same fresh database, identical but for ``LIEBIAN_RATE_LIMITS`` (``1`` and
``0``), driven by the same client (16 connections, fixed request count), warmed up, then
``repeats`` runs each, alternating. Two figures, each on/off (target: the limiter costs at most
5% of the route's rate):

- server CPU per request (user + system time of the server process, from ``/proc``): the
  median of off/on (>= 95%; judged). A worker serving this route is CPU-bound, so this ratio
  is its rate ratio; other processes on a shared machine disturb it far less than throughput.
- throughput: the median over the pairs of adjacent runs of on/off req/s (printed). On a
  machine shared with other work it swings by several times from run to run.

Both still carry the noise of whatever else the machine runs, so a third figure isolates the
limiter: the CPU time of its own per-request work (the program-cache read and the count, the
code the auth middleware runs), timed in this process over many calls with 16 at a time (the
load's connections), as a share of the server's CPU per request with limits off.

The tenant's program sets ``rate_limit_per_minute`` to its maximum (1,000,000) so that every
measured request is counted and none is refused. With ``LIEBIAN_BENCH_REDIS_URL`` (e.g.
``redis://127.0.0.1:6379/4``) a third server counts in that Redis and is compared with "off"
too; its keys (``rl:*``) expire by themselves within two minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.bench_api import seed
from bench.harness import (
    CONCURRENCY,
    Line,
    Load,
    Result,
    Server,
    add_load_options,
    client_from,
    create_tenant,
    fresh_database,
    log,
    run_load,
    serve_app,
)

TARGET = 0.95
REDIS_URL = os.environ.get("LIEBIAN_BENCH_REDIS_URL", "")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    result: Result
    cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.result.requests * 1e6


@dataclass
class LimiterCost:
    scenario: str
    engine: str
    on: list[Run]
    off: list[Run]
    limiter_us: float = 0.0

    @property
    def isolated_ratio(self) -> float:
        """1 - the limiter's own CPU per request / the server's CPU per request (limits off)."""
        off = statistics.median(r.cpu_us_per_request for r in self.off)
        return 1 - self.limiter_us / off if off else 0.0

    @property
    def rps_ratio(self) -> float:
        return statistics.median(
            a.result.rps / b.result.rps for a, b in zip(self.on, self.off, strict=True)
        )

    @property
    def cpu_ratio(self) -> float:
        """off/on CPU per request: the rate with the limiter as a share of the rate without."""
        on = statistics.median(r.cpu_us_per_request for r in self.on)
        off = statistics.median(r.cpu_us_per_request for r in self.off)
        return off / on if on else 0.0

    @property
    def errors(self) -> int:
        return sum(r.result.errors for r in self.on + self.off)

    @property
    def ok(self) -> bool:
        """The target is judged on server CPU per request: what sets the rate of a CPU-bound
        worker, and the figure a shared machine disturbs least (throughput is printed too)."""
        return self.cpu_ratio >= TARGET and self.errors == 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (uvicorn may fork a worker)."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(p) for p in task.read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def _measure(server: Server, load: Load, requests: int) -> Run:
    before = _cpu_seconds(server.pid)
    result = run_load(server.base_url, load, requests)
    return Run(result, _cpu_seconds(server.pid) - before)


def limiter_cpu_us(redis_url: str = "", calls: int = 100_000) -> float:
    """CPU microseconds of the limiter's per-request work (what the auth middleware adds), with
    ``CONCURRENCY`` requests at a time."""
    import asyncio
    import time

    from server.program import service
    from server.program.schemas import Program
    from server.ratelimit import RateLimits
    from server.settings import load_settings

    async def measure() -> float:
        limits = RateLimits(load_settings({}))
        redis = None
        if redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(redis_url)
            limits.use_redis(redis)
        tenant = "tn_bench_limiter_cost"
        program = Program(rate_limit_per_minute=1_000_000_000)
        service._cache[tenant] = (time.monotonic() + 3600, program, b"")
        n = calls if not redis_url else calls // 10

        async def work(count: int) -> None:
            for _ in range(count):
                got = await service.get_program(None, tenant)  # type: ignore[arg-type]
                await limits.check_key(tenant, "lb_sdk_benchbenchben", got.rate_limit_per_minute)

        # As many checks at a time as the load has connections: Redis counts batch them.
        await asyncio.gather(*(work(n // 10 // CONCURRENCY) for _ in range(CONCURRENCY)))
        started = time.process_time()
        await asyncio.gather(*(work(n // CONCURRENCY) for _ in range(CONCURRENCY)))
        spent = time.process_time() - started
        service._cache.pop(tenant, None)
        if redis is not None:
            await redis.aclose()
        return spent / n * 1e6

    return asyncio.run(measure())


def _preflight(base_url: str, load: Load) -> None:
    import httpx

    response = httpx.get(base_url + load.path, headers=load.headers, timeout=10)
    if response.status_code != 200 or response.json().get("rate_limit_per_minute") != 1_000_000:
        raise RuntimeError(f"preflight GET {load.path}: {response.status_code} {response.text}")


def format_cost(c: LimiterCost) -> str:
    def side(name: str, runs: list[Run]) -> str:
        rps = statistics.median(r.result.rps for r in runs)
        p99 = statistics.median(r.result.p99_ms for r in runs)
        cpu = statistics.median(r.cpu_us_per_request for r in runs)
        errors = sum(r.result.errors for r in runs)
        return (f"  {name:4} {rps:9.0f} {p99:8.2f} {cpu:12.1f} {errors:7d}   "
                + " ".join(f"{r.result.rps:.0f}" for r in runs))

    return "\n".join([
        f"{c.scenario} [{c.engine}] {c.on[0].result.requests} requests x {len(c.on)} runs, "
        f"{CONCURRENCY} connections; medians",
        f"  {'':4} {'req/s':>9} {'p99 ms':>8} {'cpu us/req':>12} {'errors':>7}   runs req/s",
        side("on", c.on),
        side("off", c.off),
        f"  on/off rate by server CPU {c.cpu_ratio:6.1%} (target >= {TARGET:.0%}: "
        f"{'met' if c.ok else 'MISSED'}{'' if c.errors == 0 else ', with ERRORS'}); "
        f"throughput {c.rps_ratio:6.1%} (median of paired runs)",
        f"  the limiter's own work: {c.limiter_us:.1f} us CPU per request, "
        f"{1 - c.isolated_ratio:.2%} of the server's CPU per request "
        f"(rate {c.isolated_ratio:.1%} of off)",
    ])


QUICK = {"requests": 3000, "repeats": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", "--get-requests", type=int, default=20_000,
                        help="requests per measured run (each side)")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per side (median)")
    add_load_options(parser)


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    client_from(args)
    return [
        Line("ratelimit", c.scenario, engine,
             f"{c.cpu_ratio:6.1%} of off by server CPU/request (req/s {c.rps_ratio:.1%}; "
             f"limiter's own work {c.limiter_us:.1f} us: {c.isolated_ratio:.1%})"
             + ("" if c.errors == 0 else f" ERRORS {c.errors}"), f">= {TARGET:.0%}", c.ok)
        for c in measure_all(engine, requests=args.requests, repeats=args.repeats)
    ]  # fmt: skip


def measure_all(engine: str, *, requests: int, repeats: int) -> list[LimiterCost]:
    """Limiter on (memory, and Redis when configured) vs off on ``engine``; printed, returned."""
    url = fresh_database(engine, "ratelimit")
    keys = create_tenant(url, "bench-ratelimit")
    load = Load("GET", "/v1/program", {"Authorization": f"Bearer {keys['sdk_key']}"})
    variants = [("memory", {"LIEBIAN_RATE_LIMITS": "1", "LIEBIAN_REDIS_URL": ""})]
    if REDIS_URL:
        variants.append(("redis", {"LIEBIAN_RATE_LIMITS": "1", "LIEBIAN_REDIS_URL": REDIS_URL}))
    else:
        log("  (LIEBIAN_BENCH_REDIS_URL unset: the Redis counters are not measured)")
    off_env = {"LIEBIAN_RATE_LIMITS": "0", "LIEBIAN_REDIS_URL": ""}
    results: list[LimiterCost] = []
    with serve_app(url, off_env, name="limits-off") as off:
        seed(off.base_url, keys)
        run_load(off.base_url, Load("GET", "/health"), 200)
        for counters, env in variants:
            with serve_app(url, env, name=f"limits-{counters}") as on:
                _preflight(on.base_url, load)
                _preflight(off.base_url, load)
                scenario = f"GET /v1/program, limiter on ({counters}) vs off"
                log(f"  {scenario} [{engine}]: {repeats} x {requests} requests per side ...")
                warmup = max(500, requests // 5)
                run_load(off.base_url, load, warmup)
                run_load(on.base_url, load, warmup)
                cost = LimiterCost(
                    scenario, engine, [], [], limiter_cpu_us(env["LIEBIAN_REDIS_URL"])
                )
                for i in range(repeats):  # alternate, and alternate which side goes first
                    first, second = (on, off) if i % 2 == 0 else (off, on)
                    a, b = _measure(first, load, requests), _measure(second, load, requests)
                    cost.on.append(a if first is on else b)
                    cost.off.append(b if first is on else a)
                print(format_cost(cost), flush=True)
                print(flush=True)
                results.append(cost)
    return results
