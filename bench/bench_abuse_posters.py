"""Hostile posters against a running server (issue 13): peak RSS vs idle, and the pool's cost.

``python -m bench abuse-posters [--engine E] [--quick] [--rounds N]``.

The app runs as in production (``uvicorn server.app:create_app --factory``, one worker, on a
free loopback port, a fresh database of the engine; render pool settings from the environment,
default 2 workers and a 5 s deadline). After one ordinary poster per worker (so the workers
exist), the idle RSS of the server process and of the server plus its render workers is read
from /proc. Then 50 hostile poster requests are sent, 8 at a time: the templates the issue
measured (a 8192x8192 rect with radius 4096 on a 10x10 canvas, 1 MB of text, 200 large
translucent rects, a 2.9 KB PNG claiming 11662x11662 px, 200k views, a 4096x4096 canvas)
through ``PUT`` and, stored directly in the database as if written before the budget existed,
through ``GET /v1/posters`` and the public ``/p/`` links; plus a template within every bound
that draws for ~8 s (killed at the deadline). RSS is sampled every 10 ms throughout.

Then, in this process: the warm-render overhead of the process hop, i.e. the median time of
rendering the default poster (a new nickname each time, so nothing is cached but the
template) through ``RenderPool(workers=1)`` against ``render_poster`` in this process.

Target: peak RSS under 2x idle. Nothing asserts; the figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import pickle
import statistics
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import harness
from bench.harness import Line, children, load_average, log, say

QUICK = {"rounds": 10}


def png_bomb(width: int, height: int) -> bytes:
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(b"\x00" * (width * 4 + 1)) for _ in range(32))
    body += compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def hostile_templates() -> dict[str, dict[str, Any]]:
    bomb = "data:image/png;base64," + base64.b64encode(png_bomb(11_662, 11_662)).decode()
    small = {"width": 10, "height": 10}
    return {
        "rect8192": {**small, "views": [{"type": "rect", "css": {
            "width": 8192, "height": 8192, "borderRadius": 4096, "background": "#ff0000"}}]},
        "text1mb": {**small, "views": [{"type": "text", "text": "长" * 1_000_000,
                                        "css": {"width": 10, "fontSize": 1}}]},
        "rects200": {"width": 4096, "height": 2048, "views": [{"type": "rect", "css": {
            "width": 4096, "height": 2048, "background": "rgba(255, 0, 0, 0.5)"}}] * 200},
        "bomb": {**small, "views": [{"type": "image", "url": bomb,
                                     "css": {"width": 10, "height": 10}}]},
        "views200k": {**small, "views": [{"type": "rect", "css": {"width": 1, "height": 1}}]
                      * 200_000},
        "canvas16m": {"width": 4096, "height": 4096},
    }  # fmt: skip


SLOW = {"width": 4096, "height": 2048, "views": [
    {"type": "rect", "css": {"width": 4096, "height": 2048, "borderRadius": 900,
                             "background": f"linear-gradient({30 + i}deg, "
                                           "rgba(255, 0, 0, 0.5), rgba(0, 0, 255, 0.4))"}}
    for i in range(6)
] + [{"type": "text", "text": "长" * 2000, "css": {"width": 4096, "fontSize": 40}}]}  # fmt: skip


def rss_mb(pid: int) -> float:
    return harness.rss_kb(pid) / 1024


class Sampler(threading.Thread):
    """Peak RSS of the server process and of the server plus its children, every 10 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_server = 0.0
        self.peak_total = 0.0
        self.stop_event = threading.Event()

    def total(self) -> float:
        return rss_mb(self.pid) + sum(rss_mb(c) for c in children(self.pid))

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.peak_server = max(self.peak_server, rss_mb(self.pid))
            self.peak_total = max(self.peak_total, self.total())
            time.sleep(0.01)


def store_directly(db_url: str, tenant_id: str, templates: dict[str, Any]) -> None:
    """Write templates as a database holds them from before the budget (no PUT checks)."""
    from server.db import connect

    async def store() -> None:
        db = await connect(db_url, pool_size=1)
        try:
            await db.executemany(
                "INSERT INTO poster_templates (tenant_id, name, document, updated_at_us)"
                " VALUES ($1, $2, $3, $4)",
                [(tenant_id, f"old-{name}", json.dumps(palette), int(time.time() * 1e6))
                 for name, palette in templates.items()],
            )
        finally:
            await db.close()

    asyncio.run(store())


def hostile_phase(base: str, keys: dict[str, str], db_url: str) -> None:
    admin = {"Authorization": f"Bearer {keys['admin_key']}"}
    sdk = {"Authorization": f"Bearer {keys['sdk_key']}"}
    templates = hostile_templates()
    store_directly(db_url, keys["tenant_id"], templates)
    with httpx.Client(base_url=base, timeout=120) as http:
        assert http.put("/v1/poster-templates/slow", json=SLOW, headers=admin).status_code == 200
        public = {}
        for name in [*templates, "slow"]:
            template = name if name == "slow" else f"old-{name}"
            signed = http.get("/v1/posters/amy/url", params={"template": template}, headers=sdk)
            public[name] = urlsplit(signed.json()["url"]).path

    requests: list[tuple[str, str, str, Any]] = []
    for name, palette in templates.items():  # 6 PUTs + 6 x 7 renders
        requests.append(("PUT", f"/v1/poster-templates/{name}", "admin", palette))
        for _ in range(2):
            requests.append(("GET", f"/v1/posters/amy?template=old-{name}", "sdk", None))
        requests += [("GET", public[name], "", None)] * 5
    requests += [("GET", "/v1/posters/amy?template=slow", "sdk", None), ("GET", public["slow"],
                                                                          "", None)]  # fmt: skip
    log(f"sending {len(requests)} hostile poster requests, 8 at a time")

    def send(item: tuple[str, str, str, Any]) -> tuple[str, int, float]:
        method, path, scope, body = item
        headers = admin if scope == "admin" else sdk if scope == "sdk" else {}
        start = time.perf_counter()
        with httpx.Client(base_url=base, timeout=120) as http:
            response = http.request(method, path, json=body, headers=headers)
        return f"{method} {path[:40]}", response.status_code, time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, requests))
    took = time.perf_counter() - start
    by_status: dict[int, int] = {}
    for _, status, _ in results:
        by_status[status] = by_status.get(status, 0) + 1
    slowest = max(results, key=lambda r: r[2])
    log(f"  done in {took:.1f} s; statuses {dict(sorted(by_status.items()))};"
        f" slowest {slowest[0]} -> {slowest[1]} in {slowest[2]:.1f} s")  # fmt: skip


def warm(base: str, keys: dict[str, str]) -> None:
    sdk = {"Authorization": f"Bearer {keys['sdk_key']}"}
    with httpx.Client(base_url=base, timeout=60) as http:
        for who in ("amy", "bob", "cat"):
            http.put(f"/v1/distributors/{who}", json={"nickname": who}, headers=sdk)

    def poster(who: str) -> int:
        with httpx.Client(base_url=base, timeout=60) as http:
            return http.get(f"/v1/posters/{who}?format=jpeg", headers=sdk).status_code

    with ThreadPoolExecutor(2) as pool:  # two at once: both render workers start
        statuses = list(pool.map(poster, ["bob", "cat"]))
    if statuses != [200, 200]:
        raise RuntimeError(f"ordinary posters failed: {statuses}")


def server_phase(engine: str) -> list[Line]:
    db_url = harness.fresh_database(engine, "abuse-posters")
    harness.migrate(db_url)
    keys = harness.create_tenant(db_url, "abuse")
    with harness.serve_app(db_url) as server:
        warm(server.base_url, keys)
        time.sleep(1.0)
        sampler = Sampler(server.pid)
        idle_server, idle_total = rss_mb(server.pid), sampler.total()
        workers = len(children(server.pid))
        say(f"idle (after ordinary posters): server {idle_server:.0f} MB, server + {workers}"
            f" render workers {idle_total:.0f} MB")  # fmt: skip
        sampler.start()
        try:
            hostile_phase(server.base_url, keys, db_url)
            # An ordinary poster still renders afterwards (a killed worker was replaced).
            sdk = {"Authorization": f"Bearer {keys['sdk_key']}"}
            after = httpx.get(f"{server.base_url}/v1/posters/amy", headers=sdk, timeout=60)
            log(f"  an ordinary poster afterwards: {after.status_code}")
            time.sleep(0.5)
        finally:
            sampler.stop_event.set()
            sampler.join()
        end_server, end_total = rss_mb(server.pid), sampler.total()
    lines = []
    for label, idle, peak, end in (
        ("server process", idle_server, sampler.peak_server, end_server),
        ("server + render workers", idle_total, sampler.peak_total, end_total),
    ):
        ratio = peak / idle if idle else float("nan")
        say(f"[{engine}] {label:<24} idle {idle:6.0f} MB  peak {peak:6.0f} MB ({ratio:.2f}x)  "
            f"after {end:6.0f} MB -> target < 2x idle: {'met' if ratio < 2 else 'NOT met'}")
        lines.append(Line("abuse-posters", f"peak RSS, {label}", engine, f"{ratio:.2f}x idle",
                          "< 2x", ratio < 2))
    return lines


def overhead_phase(rounds: int) -> None:
    from posters import PosterData, default_template, render_poster
    from server.share_posters.pool import RenderPool

    template = default_template()

    def data(i: int) -> PosterData:
        return PosterData(nickname=f"达人{i:05d}", campaign="春季活动", rank="第 3 名",
                          link=f"https://liebian.example.com/s/{i:06d}")  # fmt: skip

    async def measure() -> tuple[list[float], list[float], list[float]]:
        # Alternate the two so machine load (2 shared cores) falls on both alike.
        pool = RenderPool(workers=1, deadline=30)
        await pool.warm()
        here, there = [], []
        try:
            for i in range(3):
                render_poster(template, data(10_000 + i), "jpeg")
                await pool.render("default", template, data(20_000 + i), "jpeg")
            for i in range(rounds):
                start = time.perf_counter()
                render_poster(template, data(i), "jpeg")
                here.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                await pool.render("default", template, data(i), "jpeg")
                there.append((time.perf_counter() - start) * 1000)
            # The bare round trip to a warm worker: pickle, pipe, wake-up, reply.
            worker = pool._idle[0]
            bare = []
            for _ in range(rounds):
                start = time.perf_counter()
                worker.conn.send_bytes(pickle.dumps(("", None, None, "jpeg")))
                worker.conn.recv_bytes()
                bare.append((time.perf_counter() - start) * 1000)
        finally:
            pool.close()
        return here, there, bare

    here, there, bare = asyncio.run(measure())
    a, b = statistics.median(here), statistics.median(there)
    say(f"warm render of the default poster (JPEG, {rounds} each): in-process median {a:.1f} ms,"
        f" through the process pool {b:.1f} ms: the hop costs {b - a:+.1f} ms"
        f" ({(b - a) / a:+.0%}); a bare round trip to a warm worker (no render) takes"
        f" {statistics.median(bare):.2f} ms median")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=30, help="renders each side, pool hop")


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    log(load_average())
    lines = server_phase(engine)
    if engine == "sqlite" or args.engine == "postgres":  # no database: once per invocation
        overhead_phase(args.rounds)
    return lines
