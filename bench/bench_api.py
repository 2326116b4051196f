"""API throughput against a bare Litestar app (issues 3, 4, 5 and 14), per engine.

Scenarios, each app vs bare with the same client (16 connections, fixed request count):

- ``GET /v1/program`` with an sdk key vs the bare ``GET /get`` (target: app >= 60% of bare);
- ``POST /v1/referrals``: every request a new user arriving through one distributor's link,
  vs the bare one-``INSERT`` endpoint (target >= 80%);
- ``POST /v1/orders`` for a buyer bound at depth 3 (program ``commission_bps`` [1000, 500,
  200], so three commission entries), a unique ``order_id`` per request, vs the bare
  ``INSERT`` (target >= 80%, and a p99 at most 3x the bare p99).

The tenant is created with ``liebian tenants create``; the program, distributors, links and
the referral chain are seeded through the app's own HTTP API before anything is measured.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    Comparison,
    Line,
    Load,
    add_load_options,
    client_from,
    compare,
    create_tenant,
    format_comparison,
    fresh_database,
    log,
    pg_analyze,
    run_load,
    serve_app,
    serve_bare,
    summarise_profile,
)

JSON = "application/json"


@dataclass
class Seeded:
    sdk_key: str
    top_code: str  # the link new users arrive through (distributor bd3, itself at depth 2)
    buyer: str  # bound at depth 3: bd3 -> bd2 -> bd1


def _check(response: Any, expected: int) -> Any:
    if response.status_code != expected:
        raise RuntimeError(
            f"seeding: {response.request.method} {response.request.url} -> "
            f"{response.status_code} {response.text}"
        )
    return response.json()


def seed(target: str | Any, keys: dict[str, str]) -> Seeded:
    """Program, three distributors in a chain and a buyer at depth 3, all over HTTP
    (``target``: the app's base URL, or an ``httpx.Client`` such as Litestar's TestClient)."""
    import httpx

    if isinstance(target, str):
        with httpx.Client(base_url=target, timeout=10) as http:
            return seed(http, keys)
    http = target
    admin = {"Authorization": f"Bearer {keys['admin_key']}"}
    sdk = {"Authorization": f"Bearer {keys['sdk_key']}"}
    _check(http.put("/v1/program", headers=admin, json={
        "bind_mode": "first", "commission_bps": [1000, 500, 200], "freeze_days": 7,
        # The highest limit a program may set: the runs send far more than the default
        # 6000 a minute, and every request still goes through the limiter.
        "rate_limit_per_minute": 1_000_000,
    }), 200)
    codes = {}
    for name in ("bd1", "bd2", "bd3"):
        _check(http.put(f"/v1/distributors/{name}", headers=sdk,
                        json={"nickname": name, "tier": "koc"}), 200)
        codes[name] = _check(http.post("/v1/links", headers=sdk,
                                       json={"distributor_id": name}), 201)["code"]
    for user, code in (("bd2", codes["bd1"]), ("bd3", codes["bd2"]), ("buyer", codes["bd3"])):
        out = _check(http.post("/v1/referrals", headers=sdk,
                               json={"user_id": user, "code": code}), 200)
        assert out["outcome"] == "bound", out
    upline = _check(http.post("/v1/referrals", headers=sdk,
                              json={"user_id": "buyer", "code": codes["bd3"]}), 200)["upline"]
    if upline != ["bd3", "bd2", "bd1"]:
        raise RuntimeError(f"seeding: buyer's upline is {upline}, expected bd3, bd2, bd1")
    return Seeded(keys["sdk_key"], codes["bd3"], "buyer")


def scenario_loads(seeded: Seeded) -> dict[str, tuple[Load, Load, str]]:
    auth = {"Authorization": f"Bearer {seeded.sdk_key}"}
    post_headers = {**auth, "Content-Type": JSON}
    paid_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    bare_insert = Load("POST", "/insert", {"Content-Type": JSON},
                       json.dumps({"id": "@ID@", "user_id": "u1", "amount_fen": 10000}))
    return {
        "GET /v1/program": (
            Load("GET", "/v1/program", auth), Load("GET", "/get"), "get",
        ),
        "POST /v1/referrals": (
            Load("POST", "/v1/referrals", post_headers,
                 json.dumps({"user_id": "nu-@ID@", "code": seeded.top_code})),
            bare_insert, "post",
        ),
        "POST /v1/orders": (
            Load("POST", "/v1/orders", post_headers, json.dumps({
                "order_id": "o-@ID@", "user_id": seeded.buyer, "amount_fen": 12345,
                "paid_at": paid_at,
            })),
            bare_insert, "post",
        ),
    }


# Issue 14's targets: throughput against bare, and for orders a tail of at most 3x bare's p99.
TARGETS = {"GET /v1/program": 0.60, "POST /v1/referrals": 0.80, "POST /v1/orders": 0.80}
P99_FACTORS = {"POST /v1/orders": 3.0}


def _preflight(base_url: str, load: Load, expected: int) -> None:
    """One request of the scenario, checked, so a misconfigured run fails loudly."""
    import httpx

    body = load.body.replace("@ID@", f"preflight-{time.time_ns()}") if load.body else None
    response = httpx.request(load.method, base_url + load.path, headers=load.headers,
                             content=body, timeout=10)
    if response.status_code != expected:
        raise RuntimeError(f"preflight {load.method} {load.path}: {response.status_code} "
                           f"{response.text[:500]}")


QUICK = {"get_requests": 3000, "post_requests": 1000, "repeats": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--get-requests", type=int, default=20_000,
                        help="requests per measured GET run (each side)")
    parser.add_argument("--post-requests", type=int, default=6_000,
                        help="requests per measured POST run (each side)")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per side (median)")
    parser.add_argument("--scenario", action="append", default=None,
                        help="only scenarios whose name contains this (program, referrals, orders)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy record the app during its first measured run per scenario")
    parser.add_argument("--no-analyze", action="store_true",
                        help="PostgreSQL: skip the ANALYZE after warm-up (fresh-db plans)")
    add_load_options(parser)


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    client_from(args)
    return [
        Line("api", c.scenario, engine,
             f"{c.ratio:6.1%} of bare ({c.app.rps:,.0f} vs {c.bare.rps:,.0f} req/s; "
             f"p99 {c.app.p99_ms:.1f} vs {c.bare.p99_ms:.1f} ms)"
             + ("" if c.app.errors == 0 and c.bare.errors == 0
                else f" ERRORS app {c.app.errors} bare {c.bare.errors}"),
             f">= {c.target:.0%}", c.ok)
        for c in compare_all(
            engine, get_requests=args.get_requests, post_requests=args.post_requests,
            repeats=args.repeats, scenarios=args.scenario, profile_dir=args.profile,
            analyze=not args.no_analyze,
        )
    ]  # fmt: skip


def compare_all(
    engine: str, *, get_requests: int, post_requests: int, repeats: int,
    scenarios: list[str] | None = None, profile_dir: Path | None = None, analyze: bool = True,
) -> list[Comparison]:
    """Both servers on a fresh database of ``engine``; each scenario compared, printed, returned.

    On PostgreSQL the database is ANALYZEd after each scenario's warm-up (``analyze``), as
    autovacuum would do soon after tables grow: without it the planner keeps plans made for
    the near-empty tables of a fresh database (see the note printed with ``--no-analyze``).
    """
    url = fresh_database(engine, "api")
    keys = create_tenant(url, "bench")
    results: list[Comparison] = []
    with serve_app(url) as app, serve_bare(url) as bare:
        seeded = seed(app.base_url, keys)
        # The schema's statements and caches are warm before the first measured request.
        run_load(app.base_url, Load("GET", "/health"), 200)
        for scenario, (app_load, bare_load, kind) in scenario_loads(seeded).items():
            if scenarios and not any(s in scenario.lower() for s in scenarios):
                continue
            _preflight(app.base_url, app_load, 201 if "orders" in app_load.path else 200)
            _preflight(bare.base_url, bare_load, 200 if bare_load.method == "GET" else 201)
            n = get_requests if kind == "get" else post_requests
            log(f"  {scenario} [{engine}]: {repeats} x {n} requests per side ...")
            comparison = compare(
                scenario, engine, app, app_load, bare, bare_load, n, TARGETS[scenario],
                p99_factor=P99_FACTORS.get(scenario),
                repeats=repeats, profile_dir=profile_dir,
                after_warmup=(lambda: pg_analyze(url)) if engine == "postgres" and analyze
                else None,
            )
            print(format_comparison(comparison), flush=True)
            if engine == "postgres":
                print("  (PostgreSQL: " + ("ANALYZE after the warm-up, as autovacuum would)"
                      if analyze else "no ANALYZE: planner statistics of the fresh database)"),
                      flush=True)
            if comparison.profile is not None:
                print(summarise_profile(comparison.profile), flush=True)
            print(flush=True)
            results.append(comparison)
    return results
