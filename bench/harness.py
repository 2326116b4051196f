"""The benchmark harness: the helpers every section of ``python -m bench`` shares (servers on
loopback, fresh databases, the CLI, one load generator, medians, ratios, the summary).

Every API figure is a ratio against a baseline measured in the same run: our app
(``uvicorn server.app:create_app --factory``) and a bare Litestar app (``bench/bare_app.py``)
are started as subprocesses on 127.0.0.1 (one worker each, uvloop + httptools, no access log,
``LIEBIAN_LOG_REQUESTS=0``) against the same database, and both are driven by the same client
with 16 concurrent keep-alive connections and a fixed request count. Each side is warmed up,
then measured ``repeats`` times, alternating bare and app, and the median of each figure kept.

The client is ``wrk`` (a Lua script counts responses and stops at the fixed count, and gives
every POST a unique id from a counter); without ``wrk`` it is ``bench/loadgen.py``, an asyncio
HTTP/1.1 client in a process of its own. PostgreSQL work happens in a database of its own
(``LIEBIAN_BENCH_PG_DB``, default ``liebian_bench``), dropped and re-created by each section:
the test suite's database is never touched.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CONCURRENCY = 16
ID_MARK = "@ID@"

PG_URL = os.environ.get("LIEBIAN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BENCH_DB = os.environ.get("LIEBIAN_BENCH_PG_DB", "liebian_bench")

_TMP_ROOT: Path | None = None


def log(message: str) -> None:
    """Progress, on stderr (figures go to stdout with ``say``)."""
    print(message, file=sys.stderr, flush=True)


def say(message: str = "") -> None:
    """A figure, on stdout."""
    print(message, flush=True)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else 0.0


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or ``VmHWM``, its peak) from /proc, in KiB; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def load_average() -> str:
    return f"load average {tuple(round(x, 2) for x in os.getloadavg())} (other work may run)"


# --------------------------------------------------------------------------- databases


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def pg_bench_url() -> str:
    """The bench's own database on the PostgreSQL server of ``LIEBIAN_BENCH_PG_URL``."""
    return _with_database(PG_URL, PG_BENCH_DB)


def pg_available() -> bool:
    import asyncpg

    async def ping() -> None:
        conn = await asyncpg.connect(_with_database(PG_URL, "postgres"), timeout=3)
        await conn.close()

    try:
        asyncio.run(ping())
    except (TimeoutError, OSError, Exception):  # noqa: BLE001 - any failure: skip
        return False
    return True


def recreate_pg_database() -> str:
    """Drop and create ``liebian_bench`` (never the test database); return its URL."""
    import asyncpg

    if urlsplit(PG_URL).path.lstrip("/") == PG_BENCH_DB:
        raise SystemExit(f"refusing to drop {PG_BENCH_DB!r}: it is the test database")

    async def run() -> None:
        conn = await asyncpg.connect(_with_database(PG_URL, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return pg_bench_url()


def pg_analyze(url: str) -> None:
    """``ANALYZE`` the database, as autovacuum does within a minute of a table's growth."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())


def tmp_dir() -> Path:
    global _TMP_ROOT
    if _TMP_ROOT is None:
        _TMP_ROOT = Path(tempfile.mkdtemp(prefix="liebian-bench-"))
    return _TMP_ROOT


def cleanup_tmp() -> None:
    global _TMP_ROOT
    if _TMP_ROOT is not None:
        shutil.rmtree(_TMP_ROOT, ignore_errors=True)
        _TMP_ROOT = None


def fresh_sqlite_url(name: str) -> str:
    path = tmp_dir() / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def fresh_database(engine: str, name: str) -> str:
    return fresh_sqlite_url(name) if engine == "sqlite" else recreate_pg_database()


# Bulk loads are one INSERT ... SELECT per table over a number series, run through the app's
# own store (``server.db``: ``$n`` placeholders on both engines); these write the engine's SQL.


def series(engine: str, n: str) -> str:
    """A FROM item of the rows ``i`` = 0 .. n - 1 (``n``: a placeholder or a number)."""
    if engine == "sqlite":
        return (f"(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s"
                f" WHERE i < {n} - 1) SELECT i FROM s) AS seq")  # fmt: skip
    return f"generate_series(0, CAST({n} AS INTEGER) - 1) AS i"


def padded(engine: str, prefix: str, expr: str, width: int) -> str:
    """SQL for ``prefix`` + ``expr`` zero-padded to ``width`` digits (``d000042``)."""
    if engine == "sqlite":
        return f"printf('{prefix}%0{width}d', {expr})"
    return f"('{prefix}' || lpad(CAST({expr} AS TEXT), {width}, '0'))"


async def vacuum_analyze(db: Any, *tables: str) -> None:
    """What autovacuum does soon after a bulk load (index-only scans need the visibility map);
    no tables: the whole database."""
    if db.engine == "sqlite":
        await db.execute("ANALYZE")
    else:
        for table in tables or ("",):
            await db.execute(f"VACUUM ANALYZE {table}")


def _cli_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ, "LIEBIAN_DATABASE_URL": database_url, "LIEBIAN_LOG_REQUESTS": "0",
        "LIEBIAN_SECRET_KEY": os.environ.get("LIEBIAN_SECRET_KEY", "bench-secret-key-0123456789"),
    }


def _cli(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [PY, "-m", "server.cli", *args], cwd=ROOT, env=_cli_env(database_url),
        capture_output=True, text=True, timeout=300, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"liebian {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


def migrate(database_url: str) -> None:
    """Migrate in a child process (Piccolo binds its engine once per process)."""
    _cli(database_url, "migrate")


def create_tenant(database_url: str, name: str = "bench") -> dict[str, str]:
    """Migrate and create a tenant through the CLI; return its id and keys."""
    created: dict[str, str] = json.loads(_cli(database_url, "tenants", "create", name, "--json"))
    return created


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _wait_until_up(server: Server, path: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            if httpx.get(server.base_url + path, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"{server.name} did not come up on {server.base_url}; its log:\n"
        + server.log_path.read_text(errors="replace")[-4000:]
    )


@contextlib.contextmanager
def serve(
    name: str, app: str, database_url: str, ready_path: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run ``uvicorn APP --factory`` on a free loopback port until the block exits; ``env``
    adds or overrides environment variables of the server."""
    port = free_port()
    log_path = tmp_dir() / f"{name}-{port}.log"
    env = {**_cli_env(database_url), **(env or {})}
    cmd = [
        PY, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--log-level", "warning",
    ]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, proc, port, log_path)
    try:
        _wait_until_up(server, ready_path)
        yield server
    finally:
        server.stop()


def serve_app(
    database_url: str, env: dict[str, str] | None = None, name: str = "app"
) -> contextlib.AbstractContextManager[Server]:
    return serve(name, "server.app:create_app", database_url, "/health", env)


def serve_bare(database_url: str) -> contextlib.AbstractContextManager[Server]:
    return serve("bare", "bench.bare_app:create_app", database_url, "/get")


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Load:
    """One kind of request; ``body`` may hold ``@ID@``, replaced by a unique id per request."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_CLIENT: str | None = None


def ensure_wrk(install: bool = True) -> str | None:
    """``wrk``'s path; if missing and allowed, install it with apt-get (root only)."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        log("note: wrk is not installed (apt-get install wrk); using the Python load generator")
        return None
    log("note: wrk is not installed; installing it with apt-get (LIEBIAN_BENCH_NO_INSTALL=1 "
        "or --no-install skips this and uses the Python load generator)")
    for cmd in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "wrk"]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode == 0 and cmd[1] == "install":
            break
    found = shutil.which("wrk")
    if not found:
        log("note: installing wrk failed; using the Python load generator")
    return found


def choose_client(kind: str = "auto", install: bool = True) -> str:
    """``wrk`` or ``python``; the choice holds for the whole run (both sides see the same)."""
    global _CLIENT
    if kind == "python":
        _CLIENT = "python"
    elif kind == "wrk":
        if ensure_wrk(install) is None:
            raise SystemExit("--client wrk: wrk is not installed")
        _CLIENT = "wrk"
    else:
        _CLIENT = "wrk" if ensure_wrk(install) else "python"
    return _CLIENT


def _lua_str(value: str) -> str:
    level = "="
    while f"]{level}]" in value:
        level += "="
    return f"[{level}[{value}]{level}]"


def _wrk_script(load: Load, requests: int, prefix: str) -> str:
    lines = [f"wrk.method = {_lua_str(load.method)}", f"wrk.path = {_lua_str(load.path)}"]
    for name, value in load.headers.items():
        lines.append(f"wrk.headers[ {_lua_str(name)} ] = {_lua_str(value)}")
    lines += [
        f"local limit = {requests}",
        "local seen = 0",
        # Wall time in this worker thread, from its start to the limit-th response.
        "local ffi = require('ffi')",
        "ffi.cdef[[typedef struct { long s; long ns; } bench_ts;"
        " int clock_gettime(int clk, bench_ts *tp);]]",
        "local ts = ffi.new('bench_ts')",
        "local function now_us()",
        "  ffi.C.clock_gettime(1, ts)",
        "  return tonumber(ts.s) * 1000000 + tonumber(ts.ns) / 1000",
        "end",
        "local started = now_us()",
        "elapsed_us = 0",
        "counted = 0",
    ]
    if load.body is not None:
        if ID_MARK in load.body:
            before, _, after = load.body.partition(ID_MARK)
            lines += [
                f"local before, after = {_lua_str(before)}, {_lua_str(after)}",
                f"local prefix = {_lua_str(prefix)}",
                "local sent = 0",
                "function request()",
                "  sent = sent + 1",
                "  return wrk.format(nil, nil, nil, before .. prefix .. sent .. after)",
                "end",
            ]
        else:
            lines.append(f"wrk.body = {_lua_str(load.body)}")
    lines += [
        # At the fixed count: note the time, stop this thread and wake wrk's main thread
        # (asleep for -d) with SIGINT, which it handles like the end of the duration. The
        # signal is repeated until wrk exits: one that lands on a worker thread is lost.
        # io.popen, not os.execute: system() ignores SIGINT in the caller while it runs.
        "function response(status, headers, body)",
        "  seen = seen + 1",
        "  if seen == limit then",
        "    elapsed_us = now_us() - started",
        "    counted = seen",
        "    wrk.thread:stop()",
        "    local stat = io.open('/proc/self/stat')",
        "    local pid = stat:read('*n')",
        "    stat:close()",
        "    io.popen('(for i in $(seq 20); do kill -INT ' .. pid",
        "      .. ' || exit 0; sleep 0.05; done) >/dev/null 2>&1 &'):close()",
        "  end",
        "end",
        "local threads = {}",
        "function setup(thread) table.insert(threads, thread) end",
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        "  local n, us = threads[1]:get('counted'), threads[1]:get('elapsed_us')",
        "  if n == 0 then n, us = summary.requests, summary.duration end",
        "  io.write(string.format('\\n{\"requests\": %d, \"duration_us\": %d, "
        "\"status_errors\": %d, \"socket_errors\": %d, \"p50_us\": %d, \"p99_us\": %d}\\n',",
        "    n, us, e.status, e.connect + e.read + e.write + e.timeout,",
        "    latency:percentile(50), latency:percentile(99)))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def _run_wrk(
    base_url: str, load: Load, requests: int, prefix: str, max_seconds: int
) -> dict[str, Any]:
    script = tmp_dir() / f"load-{os.getpid()}.lua"
    script.write_text(_wrk_script(load, requests, prefix))
    done = subprocess.run(
        ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{max_seconds}s", "--timeout", "10s",
         "-s", str(script), base_url],
        capture_output=True, text=True, timeout=max_seconds + 30, check=False,
    )
    if done.stderr.strip():  # a Lua error: wrk would otherwise run its default request
        raise RuntimeError(f"wrk: {done.stderr.strip()}\nscript:\n{script.read_text()}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def _run_python(
    base_url: str, load: Load, requests: int, prefix: str, max_seconds: int
) -> dict[str, Any]:
    parts = urlsplit(base_url)
    cfg = {
        "host": parts.hostname, "port": parts.port, "method": load.method, "path": load.path,
        "headers": {**load.headers, **({"Content-Type": "application/json"} if load.body else {})},
        "body": load.body, "prefix": prefix, "requests": requests, "concurrency": CONCURRENCY,
        "max_seconds": max_seconds,
    }
    done = subprocess.run(
        [PY, "-m", "bench.loadgen", json.dumps(cfg)], cwd=ROOT, capture_output=True, text=True,
        timeout=max_seconds + 30, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.loadgen failed:\n{done.stderr}")
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


_run_counter = 0


def run_load(base_url: str, load: Load, requests: int, max_seconds: int = 60) -> Result:
    """Send ``requests`` requests over ``CONCURRENCY`` connections; ``max_seconds`` bounds it."""
    global _run_counter
    _run_counter += 1
    # Unique across runs and bench invocations on the same database.
    prefix = f"{os.getpid():x}{int(time.time()) % 100000:x}r{_run_counter}-"
    client = _CLIENT or choose_client()
    runner = _run_wrk if client == "wrk" else _run_python
    raw = runner(base_url, load, requests, prefix, max_seconds)
    return Result(
        requests=int(raw["requests"]), seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
        errors=int(raw["status_errors"]) + int(raw["socket_errors"]),
    )


# --------------------------------------------------------------------------- comparisons


@dataclass
class Side:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    runs: list[Result]


def _median_side(runs: list[Result]) -> Side:
    return Side(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        errors=sum(r.errors for r in runs),
        runs=runs,
    )


@dataclass
class Comparison:
    scenario: str
    engine: str
    app: Side
    bare: Side
    target: float
    requests: int
    profile: Path | None = None
    # the app's p99 at most this many times the bare p99 (None: no tail target)
    p99_factor: float | None = None

    @property
    def pair_ratios(self) -> list[float]:
        """app/bare of each pair of runs (a bare run, then the app's, back to back)."""
        return [a.rps / b.rps if b.rps else 0.0
                for a, b in zip(self.app.runs, self.bare.runs, strict=True)]  # fmt: skip

    @property
    def ratio(self) -> float:
        """The median of the pairs' ratios: a slow spell of the machine (this VM's speed moves
        by a third between runs) slows both runs of a pair, where the ratio of the two sides'
        medians can pair a fast run of one side with a slow run of the other."""
        ratios = self.pair_ratios
        return statistics.median(ratios) if ratios else 0.0

    @property
    def tail_ok(self) -> bool:
        return self.p99_factor is None or self.app.p99_ms <= self.p99_factor * self.bare.p99_ms

    @property
    def ok(self) -> bool:
        return (self.ratio >= self.target and self.tail_ok and self.app.errors == 0
                and self.bare.errors == 0)  # fmt: skip


class Profiler:
    """``py-spy record`` on a server for the length of one run (collapsed stacks)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
             "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def compare(
    scenario: str, engine: str, app: Server, app_load: Load, bare: Server, bare_load: Load,
    requests: int, target: float, repeats: int = 3, warmup: int | None = None,
    profile_dir: Path | None = None, after_warmup: Callable[[], None] | None = None,
    p99_factor: float | None = None,
) -> Comparison:
    """Warm both sides up, then ``repeats`` alternating runs each; medians per side."""
    warmup = warmup if warmup is not None else max(500, requests // 5)
    run_load(bare.base_url, bare_load, warmup)
    run_load(app.base_url, app_load, warmup)
    if after_warmup is not None:
        after_warmup()
    bare_runs: list[Result] = []
    app_runs: list[Result] = []
    profile_path: Path | None = None
    for i in range(repeats):
        bare_runs.append(run_load(bare.base_url, bare_load, requests))
        profiler = None
        if profile_dir is not None and i == 0:
            profile_dir.mkdir(parents=True, exist_ok=True)
            slug = scenario.replace(" ", "_").replace("/", "")
            profile_path = profile_dir / f"{slug}-{engine}.txt"
            profiler = Profiler(app.pid, profile_path)
        try:
            app_runs.append(run_load(app.base_url, app_load, requests))
        finally:
            if profiler is not None:
                profiler.stop()
    return Comparison(
        scenario, engine, _median_side(app_runs), _median_side(bare_runs), target, requests,
        profile_path, p99_factor,
    )


def format_comparison(c: Comparison, labels: tuple[str, str] = ("app", "bare")) -> str:
    head = (f"{c.scenario} [{c.engine}] {c.requests} requests x {len(c.app.runs)} runs, "
            f"{CONCURRENCY} connections, client {_CLIENT}; medians, ratio: median of the pairs")
    rows = [
        f"  {'':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}   runs req/s",
        *(
            f"  {name:6} {s.rps:9.0f} {s.p50_ms:8.2f} {s.p99_ms:8.2f} {s.errors:7d}   "
            + " ".join(f"{r.rps:.0f}" for r in s.runs)
            for name, s in ((labels[0], c.app), (labels[1], c.bare))
        ),
        f"  {labels[0]}/{labels[1]} {c.ratio:6.1%}  (pairs: "
        + " ".join(f"{r:.0%}" for r in c.pair_ratios) + f"; target >= {c.target:.0%}"
        + ("" if c.p99_factor is None else
           f", p99 <= {c.p99_factor:g}x bare: {c.app.p99_ms / c.bare.p99_ms:.1f}x")
        + f": {'met' if c.ok else 'MISSED'}"
        + ("" if c.app.errors == 0 and c.bare.errors == 0 else ", with ERRORS") + ")",
    ]
    if c.profile is not None:
        rows.append(f"  profile of the first app run: {c.profile}")
    return "\n".join([head, *rows])


# --------------------------------------------------------------------------- in-process timing

_serial = iter(range(10**9))


def median_ms(fn: Callable[[int], object], rounds: int) -> float:
    """Median of ``fn(n)`` over ``rounds`` calls after a warm-up, in ms; n is unique across the
    whole run (no cache keyed on it can help)."""
    fn(next(_serial))
    times = []
    for _ in range(rounds):
        n = next(_serial)
        start = time.perf_counter()
        fn(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def paired_median_ms(
    first: Callable[[int], object], second: Callable[[int], object], rounds: int
) -> tuple[float, float]:
    """Medians of two functions timed alternately, so machine noise hits both alike."""
    first(next(_serial))
    second(next(_serial))
    times: tuple[list[float], list[float]] = ([], [])
    for r in range(rounds):
        order = ((0, first), (1, second)) if r % 2 else ((1, second), (0, first))
        for slot, fn in order:
            n = next(_serial)
            start = time.perf_counter()
            fn(n)
            times[slot].append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


# --------------------------------------------------------------------------- profiles


def summarise_profile(path: Path, top: int = 15, package: str = "server/") -> str:
    """Top functions of a py-spy raw (collapsed) profile: inclusive share for frames under
    ``package`` and litestar, and self share for every frame."""
    if not path.exists():
        return f"(no profile at {path})"
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        if any("select" in f and "epoll" in f for f in frames[-1:]) or "(idle)" in stack:
            continue
        total += count
        seen: set[str] = set()
        for frame in frames:
            name = _frame_name(frame)
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
        self_time[_frame_name(frames[-1])] += count
    if total == 0:
        return "(empty profile)"
    ours = [(n, c) for n, c in inclusive.most_common() if package in n or "litestar/" in n]
    lines = [f"  {total} busy samples; inclusive, {package} and litestar frames:"]
    lines += [f"    {c / total:6.1%}  {n}" for n, c in ours[:top]]
    lines.append("  self time, all frames:")
    lines += [f"    {c / total:6.1%}  {n}" for n, c in self_time.most_common(top)]
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:LINE)"; drop the line number.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", str(ROOT) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{file}:{name}"


# --------------------------------------------------------------------------- sections


@dataclass
class Line:
    """One row of ``python -m bench``'s closing summary."""

    section: str
    scenario: str
    engine: str
    figure: str
    target: str
    ok: bool | None


def banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def engines(choice: str, supported: tuple[str, ...], section: str) -> list[str]:
    """The engines a section runs on: ``--engine``'s choice, less those it does not have
    (said) and PostgreSQL when unreachable (warned)."""
    wanted = ["sqlite", "postgres"] if choice == "both" else [choice]
    for engine in [e for e in wanted if e not in supported]:
        print(f"note: {section} runs on {' and '.join(supported)} only: {engine} skipped",
              flush=True)  # fmt: skip
        wanted.remove(engine)
    if "postgres" in wanted and not pg_available():
        print(f"WARNING: PostgreSQL at {PG_URL} is unreachable: the PostgreSQL "
              "figures are SKIPPED", flush=True)
        wanted.remove("postgres")
    return wanted


def add_load_options(parser: Any) -> None:
    """Options of the sections driven by ``run_load`` (wrk or the Python client)."""
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (auto: wrk if installed, else the Python one)")
    parser.add_argument("--no-install", action="store_true",
                        help="never apt-get install wrk (also LIEBIAN_BENCH_NO_INSTALL=1)")


def client_from(args: Any) -> str:
    install = not (args.no_install or os.environ.get("LIEBIAN_BENCH_NO_INSTALL"))
    return choose_client(args.client, install=install)


def print_summary(lines: list[Line], elapsed: float) -> None:
    banner(f"summary ({elapsed / 60:.1f} min)")
    if not lines:
        print("nothing ran")
        return
    w_s = max(len(x.scenario) for x in lines)
    w_f = max(len(x.figure) for x in lines)
    w_t = max(len(x.target) for x in lines)
    for x in lines:
        verdict = "" if x.ok is None else ("met" if x.ok else "MISSED")
        print(f"  {x.section:<18}  {x.scenario:<{w_s}}  {x.engine:<8}  {x.figure:<{w_f}}  "
              f"{x.target:<{w_t}}  {verdict}", flush=True)
