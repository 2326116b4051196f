"""Figures for rewards/: medians of a 10,000-packet split and a 10,000-standing rank.

``python -m bench rewards [--quick] [--repeats N]`` (no database). Target (issue 6): a
red-packet split of 10,000 packets under 20 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable

from bench.harness import Line, median_ms, say
from rewards import (
    RedPacketConfig,
    Standing,
    award_top_n,
    draw_per_invite,
    rank_standings,
    split_pool_awards,
    split_pool_proportional,
    split_pool_random,
)
from rewards.prizes import PrizeTier

ENGINES = ()
QUICK = {"repeats": 5}
N = 10_000
REPEATS = 31
TARGET_MS = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs (median)")


def run(engine: None, args: argparse.Namespace) -> list[Line]:
    repeats = args.repeats
    rnd = random.Random(6)
    scores = [rnd.randrange(1, 5_000) for _ in range(N)]
    standings = [
        Standing(f"d{i:06d}", rnd.randrange(0, 500), rnd.randrange(10**15)) for i in range(N)
    ]
    ranked = rank_standings(standings)
    pool = RedPacketConfig(
        "pool_split_random", budget_fen=10_000_000, min_fen=100, max_fen=20_000, seed=1
    )
    per_invite = RedPacketConfig(
        "random_per_invite", budget_fen=1_000_000, min_fen=100, max_fen=300
    )
    tiers = [PrizeTier(1, 1, 88_800), PrizeTier(2, 3, 38_800), PrizeTier(4, 10, 8_800)]

    def invites(i: int) -> list[int]:
        return [draw_per_invite(per_invite, i, k, 1_000_000, 5_000 - k) for k in range(1_000)]

    budget = 10_000_000
    rows: list[tuple[str, Callable[[int], object]]] = [
        ("split_pool_random 10,000 packets (no max)",
         lambda i: split_pool_random(budget, N, 1, None, i)),
        ("split_pool_random 10,000 packets (100..20000 fen)",
         lambda i: split_pool_random(budget, N, 100, 20_000, i)),
        ("split_pool_proportional 10,000 scores",
         lambda i: split_pool_proportional(budget, scores, 100, 20_000)),
        ("rank_standings 10,000 standings", lambda i: rank_standings(standings)),
        ("award_top_n over 10,000 ranked", lambda i: award_top_n(ranked, tiers)),
        ("split_pool_awards random over 10,000 ranked", lambda i: split_pool_awards(ranked, pool)),
        ("draw_per_invite x 1,000 (per-draw seeding)", invites),
    ]  # fmt: skip
    say(f"median of {repeats} runs, Python {sys.version.split()[0]}")
    for label, fn in rows:
        say(f"{label:<52} {median_ms(fn, repeats):8.2f} ms")
    split_ms = median_ms(lambda i: split_pool_random(10_000_000, N, 100, 20_000, i), repeats)
    verdict = "OK" if split_ms < TARGET_MS else "OVER TARGET"
    say(f"10,000-packet split: {split_ms:.2f} ms vs target {TARGET_MS:.0f} ms: {verdict}")
    return [Line("rewards", "10,000-packet split", "-", f"{split_ms:.2f} ms",
                 f"< {TARGET_MS:.0f} ms", split_ms < TARGET_MS)]

