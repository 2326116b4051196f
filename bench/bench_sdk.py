"""The SDK's cost over a bare, reused httpx client (issue 9: at most 10% more per call).

Starts a trivial ASGI app under uvicorn in a child process on 127.0.0.1 that answers every request
with a fixed `GET /v1/distributors/{id}` body, then times N sequential calls, in alternating
order, through `liebian_sdk.Client` (`client.distributors.get`) and through a bare reused
`httpx.Client` (`get` + `raise_for_status` + `json()`), and the same for the async clients.
Prints the median microseconds per call over the rounds and the ratio SDK / bare; for
reference also the ratio to a bare call that does not even parse the body (bytes only).

    python -m bench sdk [--quick] [--calls 2000] [--rounds 7] [--check]

No database; `--check` exits 1 when a ratio is above 1.10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import liebian_sdk

from bench.harness import Line, say, serve

ENGINES = ()
QUICK = {"calls": 300, "rounds": 3}
API_KEY = "sk_bench"
DISTRIBUTOR_ID = "openid-alice"
BODY = json.dumps(
    {
        "distributor_id": DISTRIBUTOR_ID,
        "nickname": "爱丽丝",
        "avatar_url": "https://img.example.com/a.png",
        "tier": "koc",
        "inviter_id": "openid-zed",
        "counts": {"invites": 12, "team": 40},
        "balance": {"pending_fen": 1990, "available_fen": 5000, "settled_fen": 0, "paid_fen": 100},
        "created_at": "2024-11-11T10:00:00+08:00",
    },
    ensure_ascii=False,
).encode()
LIMIT = 1.10


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """The smallest ASGI app that answers like `GET /v1/distributors/{id}`."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def create_app() -> Callable[..., Any]:
    """For ``harness.serve`` (``uvicorn --factory``)."""
    return app


def time_sync(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


async def time_async(call: Callable[[], Awaitable[object]], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls * 1e6


def bench_sync(base_url: str, calls: int, rounds: int) -> dict[str, float]:
    path = f"/v1/distributors/{DISTRIBUTOR_ID}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with (
        liebian_sdk.Client(base_url, API_KEY) as client,
        httpx.Client(base_url=base_url, headers=headers) as bare,
    ):

        def through_sdk() -> object:
            return client.distributors.get(DISTRIBUTOR_ID)

        def through_httpx() -> object:
            response = bare.get(path)
            response.raise_for_status()
            return response.json()

        def through_httpx_bytes() -> object:
            return bare.get(path).raise_for_status().content

        variants = {"sdk": through_sdk, "bare": through_httpx, "bytes": through_httpx_bytes}
        assert through_sdk().nickname == through_httpx()["nickname"]  # type: ignore[attr-defined,index]
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for n in range(rounds + 1):
            # Alternate the order so that neither side always runs on a warmer machine.
            order = list(variants) if n % 2 else list(reversed(variants))
            for name in order:
                timings[name].append(time_sync(variants[name], calls))
    # The first round warms connections and caches up; it is not counted.
    return {name: statistics.median(values[1:]) for name, values in timings.items()}


async def bench_async(base_url: str, calls: int, rounds: int) -> dict[str, float]:
    path = f"/v1/distributors/{DISTRIBUTOR_ID}"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        liebian_sdk.AsyncClient(base_url, API_KEY) as client,
        httpx.AsyncClient(base_url=base_url, headers=headers) as bare,
    ):

        async def through_sdk() -> object:
            return await client.distributors.get(DISTRIBUTOR_ID)

        async def through_httpx() -> object:
            response = await bare.get(path)
            response.raise_for_status()
            return response.json()

        async def through_httpx_bytes() -> object:
            return (await bare.get(path)).raise_for_status().content

        variants = {"sdk": through_sdk, "bare": through_httpx, "bytes": through_httpx_bytes}
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for n in range(rounds + 1):
            order = list(variants) if n % 2 else list(reversed(variants))
            for name in order:
                timings[name].append(await time_async(variants[name], calls))
    return {name: statistics.median(values[1:]) for name, values in timings.items()}


def report(label: str, us: dict[str, float]) -> float:
    """Print one line per client kind; return the ratio that issue 9 bounds (SDK / bare+json)."""
    ratio = us["sdk"] / us["bare"]
    say(
        f"{label:<6} sdk {us['sdk']:7.1f} us/call | bare httpx + json() {us['bare']:7.1f} us/call"
        f" | ratio {ratio:.3f} ({'ok' if ratio <= LIMIT else 'OVER'} <= {LIMIT:.2f})"
        f" | vs bare httpx bytes only {us['bytes']:7.1f} us/call: {us['sdk'] / us['bytes']:.3f}"
    )
    return ratio


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (median is kept)")


def run(engine: None, args: argparse.Namespace) -> list[Line]:
    with serve("sdk-fixed-answer", "bench.bench_sdk:create_app", "", "/v1/distributors/x") as srv:
        say(f"liebian-sdk {liebian_sdk.__version__}: {args.calls} calls x {args.rounds} rounds")
        ratios = {
            "sync": report("sync", bench_sync(srv.base_url, args.calls, args.rounds)),
            "async": report("async", asyncio.run(bench_async(srv.base_url, args.calls,
                                                             args.rounds))),
        }
    return [Line("sdk", f"{kind} call vs bare httpx", "-", f"{ratio:.3f}x", f"<= {LIMIT:.2f}x",
                 ratio <= LIMIT) for kind, ratio in ratios.items()]
