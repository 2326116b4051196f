"""A 3-level order with tier lookup against today's order (issue 17, a printed figure).

One app on a fresh database; the chain bd1 <- bd2 <- bd3 <- buyer of ``bench_api`` (program
[1000, 500, 200] bp). The same ``POST /v1/orders`` load (a unique order id per request) is run
under three programs, alternating, ``repeats`` times each, medians compared:

- ``plain``: no tiers (today's order);
- ``tiers``: three tiers, bd3 set to the second by an operator: each level's rate is looked up
  from its earner's tier (on PostgreSQL inside the one-statement order);
- ``tiers+promotion``: the same tiers with promotion conditions, so every order also evaluates
  the credited upline and the buyer (one figures query each that is below the top tier).

Target: ``tiers`` within 5 % of ``plain`` (ratio >= 0.95).

    python -m bench tiers [--engine sqlite|postgres|both] [--quick] [--requests N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime
from typing import Any

from bench.bench_api import seed
from bench.harness import (
    Line,
    Load,
    add_load_options,
    client_from,
    create_tenant,
    fresh_database,
    log,
    run_load,
    say,
    serve_app,
)

BASE = {"bind_mode": "first", "commission_bps": [1000, 500, 200], "freeze_days": 7,
        "rate_limit_per_minute": 1_000_000}  # fmt: skip
TIERS = [
    {"name": "member", "commission_bps": [1000, 500, 200]},
    {"name": "silver", "commission_bps": [1200, 600, 200]},
    {"name": "gold", "commission_bps": [1500, 800, 300]},
]
CONDITIONS = [
    TIERS[0],
    TIERS[1] | {"promote_when": {"team_size_l1": 1000}},
    TIERS[2] | {"promote_when": {"team_sales_fen": 10**12, "team_sales_days": 30}},
]
PROGRAMS: dict[str, dict[str, Any]] = {
    "plain": BASE,
    "tiers": BASE | {"tiers": TIERS},
    "tiers+promotion": BASE | {"tiers": CONDITIONS},
}


def measure(engine: str, requests: int, repeats: int) -> dict[str, float]:
    import httpx

    url = fresh_database(engine, "tiers")
    keys = create_tenant(url, "bench-tiers")
    admin = {"Authorization": f"Bearer {keys['admin_key']}"}
    with serve_app(url) as app:
        seeded = seed(app.base_url, keys)
        paid_at = datetime.now(UTC).replace(microsecond=0).isoformat()
        headers = {"Authorization": f"Bearer {seeded.sdk_key}", "Content-Type": "application/json"}
        body = {"order_id": "o-@ID@", "user_id": seeded.buyer, "amount_fen": 12345,
                "paid_at": paid_at}  # fmt: skip
        load = Load("POST", "/v1/orders", headers, json.dumps(body))

        def use(name: str) -> None:
            with httpx.Client(base_url=app.base_url, headers=admin, timeout=10) as http:
                assert http.put("/v1/program", json=PROGRAMS[name]).status_code == 200
                if name != "plain":
                    tier = http.put("/v1/distributors/bd3/tier", json={"name": "silver"})
                    assert tier.status_code == 200, tier.text

        rps: dict[str, list[float]] = {name: [] for name in PROGRAMS}
        for name in PROGRAMS:  # warm-up
            use(name)
            run_load(app.base_url, load, max(300, requests // 5))
        for i in range(repeats):
            for name in PROGRAMS:
                use(name)
                result = run_load(app.base_url, load, requests)
                if result.errors:
                    raise RuntimeError(f"{name}: {result.errors} failed requests")
                rps[name].append(result.rps)
                log(f"  [{engine}] run {i + 1} {name}: {result.rps:.0f} req/s "
                    f"(p50 {result.p50_ms:.1f} ms)")  # fmt: skip
    return {name: statistics.median(values) for name, values in rps.items()}


QUICK = {"requests": 500, "repeats": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=3000, help="orders per measured run")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per program")
    add_load_options(parser)


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    client_from(args)
    medians = measure(engine, args.requests, args.repeats)
    plain = medians["plain"]
    for name, value in medians.items():
        ratio = value / plain if plain else 0.0
        target = "  (target >= 0.95)" if name == "tiers" else ""
        say(f"orders with tiers [{engine}] {name:16s} {value:8.0f} req/s  "
            f"ratio {ratio:.3f}{target}")  # fmt: skip
    ratio = medians["tiers"] / plain if plain else 0.0
    return [Line("tiers", "POST /v1/orders, tiers vs plain", engine, f"{ratio:.3f}", ">= 0.95",
                 ratio >= 0.95)]
