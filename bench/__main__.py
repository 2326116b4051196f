"""``python -m bench`` (``make bench``): every benchmark is a section of this one command.

    python -m bench                               # every section, both engines
    python -m bench --quick                       # every section at small sizes (a few minutes)
    python -m bench api --engine sqlite           # one section, one engine
    python -m bench upline balances --quick       # several sections
    python -m bench top-distributor --entries 500000   # a section's own options
    python -m bench SECTION --help                # a section's options
    python -m bench soak --minutes 10             # the soak (never part of "all")

Every section takes ``--engine sqlite|postgres|both`` (default both; a section without a
database runs once, a section that has one engine only says so), ``--quick`` (small sizes:
a smoke run, not figures) and ``--check`` (exit 1 if a target is missed). PostgreSQL runs in
a database of its own (``LIEBIAN_BENCH_PG_DB``, default ``liebian_bench``, on the server of
``LIEBIAN_BENCH_PG_URL``); when it is unreachable the PostgreSQL half is skipped with a
warning. Nothing here asserts: targets are reported as met or MISSED, then a summary; a
section that fails is reported and the others still run (exit status 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from types import ModuleType

from bench import harness
from bench.harness import Line

# name -> module; the order "all" runs them in. Each module has ``run(engine, args)`` (or
# ``run(None, args)`` when ENGINES is empty), optional ``add_arguments(parser)`` and QUICK.
SECTIONS = {
    "api": "bench_api", "floor": "bench_floor", "ratelimit": "bench_ratelimit",
    "tiers": "bench_tiers", "upline": "bench_upline", "balances": "bench_balances",
    "top-distributor": "bench_top_distributor", "settlement-netting": "bench_settlement_netting",
    "leaderboards": "bench_leaderboards", "export": "bench_export", "console": "bench_console",
    "poster-http": "bench_poster_http", "posters": "bench_posters",
    "painter-card": "bench_painter_card", "rewards": "bench_rewards", "sdk": "bench_sdk",
    "wxacode": "bench_wxacode", "abuse-posters": "bench_abuse_posters",
    "abuse-webhooks": "bench_abuse_webhooks", "soak": "soak",
}  # fmt: skip
NOT_IN_ALL = {"soak"}


def module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{SECTIONS[name]}")


def section_parser(name: str) -> argparse.ArgumentParser:
    mod = module(name)
    parser = argparse.ArgumentParser(
        prog=f"python -m bench {name}", description=(mod.__doc__ or name).strip().splitlines()[0]
    )
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, few runs: a smoke test, not figures")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    if hasattr(mod, "add_arguments"):
        mod.add_arguments(parser)
    return parser


def parse_section(name: str, argv: list[str], strict: bool) -> tuple[argparse.Namespace, list[str]]:
    """The section's options; ``--quick`` swaps in its QUICK defaults (explicit flags win)."""
    parser = section_parser(name)
    if "--quick" in argv:
        parser.set_defaults(**getattr(module(name), "QUICK", {}))
    if strict:
        return parser.parse_args(argv), []
    return parser.parse_known_args(argv)


def overview() -> str:
    rows = [f"  {name:<19} {(module(name).__doc__ or '').strip().splitlines()[0]}"
            for name in SECTIONS]  # fmt: skip
    return (__doc__ or "") + "\nsections:\n" + "\n".join(rows) + "\n"


def run_section(name: str, args: argparse.Namespace) -> list[Line]:
    mod = module(name)
    supported: tuple[str, ...] = getattr(mod, "ENGINES", ("sqlite", "postgres"))
    harness.banner(f"{name}: {(mod.__doc__ or '').strip().splitlines()[0]}")
    lines: list[Line] = []
    started = time.perf_counter()
    for engine in harness.engines(args.engine, supported, name) if supported else [None]:
        try:
            lines += mod.run(engine, args) or []
        except Exception as exc:  # noqa: BLE001 - one section's failure must not stop the rest
            traceback.print_exc()
            lines.append(Line(name, "FAILED", engine or "-", f"{type(exc).__name__}: {exc}"[:80],
                              "runs", False))  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"({name}: {elapsed:.0f} s)", flush=True)
    return lines or [Line(name, "(figures above)", "-", f"ran in {elapsed:.0f} s", "", None)]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names: list[str] = []
    while argv and not argv[0].startswith("-"):
        names.append(argv.pop(0).replace("_", "-"))
    if not names and argv and argv[0] in ("-h", "--help"):
        print(overview())
        return 0
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    chosen = names or [n for n in SECTIONS if n not in NOT_IN_ALL]
    if "export" in chosen and not {"-h", "--help"} & set(argv):
        module("export").start_launcher()  # while this process is small: its RSS figures
    parsed = {n: parse_section(n, argv, strict=len(chosen) == 1) for n in chosen}
    left = set.intersection(*(set(extra) for _, extra in parsed.values()))
    if left:
        print(f"no chosen section takes {' '.join(sorted(left))}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    lines: list[Line] = []
    try:
        for name, (args, _) in parsed.items():
            lines += run_section(name, args)
    finally:
        harness.cleanup_tmp()
    harness.print_summary(lines, time.perf_counter() - started)
    check = any(args.check for args, _ in parsed.values())
    crashed = any(x.scenario == "FAILED" for x in lines)
    return 1 if crashed or (check and any(x.ok is False for x in lines)) else 0


if __name__ == "__main__":
    sys.exit(main())
