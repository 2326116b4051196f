"""``python -m bench`` (``make bench``): every benchmark, a table per scenario, then a summary.

    python -m bench                          # everything, both engines
    python -m bench api --engine sqlite      # only the API ratios, only on SQLite
    python -m bench upline balances          # only the graph and ledger figures
    python -m bench rewards posters sdk      # only other benches (any bench/bench_NAME.py)
    python -m bench api --profile /tmp/prof  # py-spy the app during its first measured run
    python -m bench soak --minutes 10        # two nodes x two workers, mixed load (bench/soak.py)

Sections, in this order: ``api`` (app vs bare Litestar through HTTP: GET /v1/program, POST
/v1/referrals, POST /v1/orders), ``ratelimit`` (GET /v1/program with the rate limiter on vs
off; Redis counters too with ``LIEBIAN_BENCH_REDIS_URL``), ``upline`` (1,000,000 bindings),
``balances`` (100,000 distributors), then every other ``bench/bench_*.py`` script as a
subprocess printing its own figures (``others`` selects them all). PostgreSQL runs in a
database of its own (``liebian_bench`` on the server of ``LIEBIAN_BENCH_PG_URL``, default the
test server); when it is unreachable the PostgreSQL half is skipped with a warning. Nothing
here asserts: targets are reported as met or MISSED (``--check`` makes a missed target exit 1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import harness

MINE = {"api", "ratelimit", "upline", "balances"}
OTHERS_TIMEOUT_S = 600


@dataclass
class Line:
    section: str
    scenario: str
    engine: str
    figure: str
    target: str
    ok: bool | None


def other_benches() -> dict[str, Path]:
    here = Path(__file__).resolve().parent
    found = {}
    for path in sorted(here.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if name not in MINE:
            found[name] = path
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    others = other_benches()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sections", nargs="*", metavar="SECTION",
        help=f"any of: {', '.join(sorted(MINE))}, others, {', '.join(others)} (default: all)",
    )
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--get-requests", type=int, default=20_000,
                        help="requests per measured GET run (each side)")
    parser.add_argument("--post-requests", type=int, default=6_000,
                        help="requests per measured POST run (each side)")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per side (median)")
    parser.add_argument("--scenario", action="append", default=None,
                        help="api scenarios whose name contains this (program, referrals, orders)")
    parser.add_argument("--users", type=int, default=1_000_000, help="bindings for upline")
    parser.add_argument("--lookups", type=int, default=2_000, help="timed upline lookups")
    parser.add_argument("--distributors", type=int, default=100_000, help="for balances")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator (auto: wrk if installed, else the Python one)")
    parser.add_argument("--no-install", action="store_true",
                        help="never apt-get install wrk (also LIEBIAN_BENCH_NO_INSTALL=1)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy record the app during its first measured run per scenario")
    parser.add_argument("--no-analyze", action="store_true",
                        help="api on PostgreSQL: skip the ANALYZE after warm-up (fresh-db plans)")
    parser.add_argument("--quick", action="store_true",
                        help="small counts, one run per side: a smoke test, not figures")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    valid = MINE | {"others"} | set(others)
    unknown = [s for s in args.sections if s not in valid]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(sorted(valid))}")
    if args.quick:
        args.get_requests, args.post_requests, args.repeats = 3000, 1000, 1
        args.users, args.lookups, args.distributors = 100_000, 500, 10_000
    return args


def engines(choice: str) -> list[str]:
    wanted = ["sqlite", "postgres"] if choice == "both" else [choice]
    if "postgres" in wanted and not harness.pg_available():
        print(f"WARNING: PostgreSQL at {harness.PG_URL} is unreachable: the PostgreSQL "
              "figures are SKIPPED", flush=True)
        wanted.remove("postgres")
    return wanted


def banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 74 - len(title)), flush=True)


def run_api(args: argparse.Namespace, engine_list: list[str], lines: list[Line]) -> None:
    from bench import bench_api

    client = harness.choose_client(
        args.client, install=not (args.no_install or os.environ.get("LIEBIAN_BENCH_NO_INSTALL"))
    )
    banner(f"API vs bare Litestar (client: {client}, {harness.CONCURRENCY} connections)")
    for engine in engine_list:
        for c in bench_api.run(
            engine, get_requests=args.get_requests, post_requests=args.post_requests,
            repeats=args.repeats, scenarios=args.scenario, profile_dir=args.profile,
            analyze=not args.no_analyze,
        ):
            lines.append(Line(
                "api", c.scenario, engine,
                f"{c.ratio:6.1%} of bare ({c.app.rps:,.0f} vs {c.bare.rps:,.0f} req/s; "
                f"p99 {c.app.p99_ms:.1f} vs {c.bare.p99_ms:.1f} ms)"
                + ("" if c.app.errors == 0 and c.bare.errors == 0
                   else f" ERRORS app {c.app.errors} bare {c.bare.errors}"),
                f">= {c.target:.0%}", c.ok,
            ))


def run_ratelimit(args: argparse.Namespace, engine_list: list[str], lines: list[Line]) -> None:
    from bench import bench_ratelimit

    client = harness.choose_client(
        args.client, install=not (args.no_install or os.environ.get("LIEBIAN_BENCH_NO_INSTALL"))
    )
    banner(f"rate limiter on vs off (client: {client}, {harness.CONCURRENCY} connections)")
    for engine in engine_list:
        for c in bench_ratelimit.run(engine, requests=args.get_requests, repeats=args.repeats):
            lines.append(Line(
                "ratelimit", c.scenario, engine,
                f"{c.cpu_ratio:6.1%} of off by server CPU/request (req/s {c.rps_ratio:.1%}; "
                f"limiter's own work {c.limiter_us:.1f} us: {c.isolated_ratio:.1%})"
                + ("" if c.errors == 0 else f" ERRORS {c.errors}"),
                f">= {bench_ratelimit.TARGET:.0%}", c.ok,
            ))


def run_upline(args: argparse.Namespace, engine_list: list[str], lines: list[Line]) -> None:
    from bench import bench_upline

    banner("upline_of at depth 3")
    for engine in engine_list:
        r = bench_upline.run(engine, users=args.users, lookups=args.lookups)
        lines.append(Line("upline", f"upline_of, {r.users:,} users", engine,
                          f"p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms",
                          f"p99 < {bench_upline.TARGET_P99_MS:g} ms", r.ok))


def run_balances(args: argparse.Namespace, engine_list: list[str], lines: list[Line]) -> None:
    from bench import bench_balances

    banner("all_balances from the ledger")
    for engine in engine_list:
        r = bench_balances.run(engine, distributors=args.distributors)
        lines.append(Line("balances", f"all_balances, {r.distributors:,} distributors", engine,
                          f"{r.total_ms:,.0f} ms total, {r.us_per_row:.2f} us/row",
                          "(figure)", None))


def run_other(name: str, path: Path, lines: list[Line]) -> None:
    banner(f"{path.name} (its own figures)")
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(path)], cwd=harness.ROOT,
                              timeout=OTHERS_TIMEOUT_S, check=False)
        status = "ran" if done.returncode == 0 else f"exit status {done.returncode}"
        ok: bool | None = None if done.returncode == 0 else False
    except subprocess.TimeoutExpired:
        status, ok = f"killed after {OTHERS_TIMEOUT_S} s", False
    lines.append(Line(name, path.name, "-", f"{status} in {time.perf_counter() - started:.0f} s",
                      "see its output", ok))


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
        print(f"  {x.scenario:<{w_s}}  {x.engine:<8}  {x.figure:<{w_f}}  "
              f"{x.target:<{w_t}}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["soak"]:  # a long run with options of its own; never part of "all"
        from bench import soak

        return soak.main(argv[1:])
    args = parse_args(argv)
    others = other_benches()
    chosen = set(args.sections) or (MINE | {"others"})
    if "others" in chosen:
        chosen |= set(others)
    started = time.perf_counter()
    lines: list[Line] = []
    try:
        mine = [s for s in ("api", "ratelimit", "upline", "balances") if s in chosen]
        engine_list = engines(args.engine) if mine else []
        if "api" in chosen:
            run_api(args, engine_list, lines)
        if "ratelimit" in chosen:
            run_ratelimit(args, engine_list, lines)
        if "upline" in chosen:
            run_upline(args, engine_list, lines)
        if "balances" in chosen:
            run_balances(args, engine_list, lines)
        for name, path in others.items():
            if name in chosen:
                run_other(name, path, lines)
    finally:
        harness.cleanup_tmp()
    print_summary(lines, time.perf_counter() - started)
    missed = any(x.ok is False for x in lines)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
