"""Poster figures through HTTP (issue 7): cold render, cache hits, 304s, bytes per poster.

``python -m bench poster-http [--engine E] [--quick]``.

The app runs as it does in production, in a subprocess on a free loopback port:
``uvicorn server.app:create_app --factory --loop uvloop --http httptools`` (one worker) on a
fresh database of the engine, with ``LIEBIAN_LOG_REQUESTS=1`` so every request logs one JSON
line whose ``ms`` is the server-side time from the request's start to the response's start.
Each request carries its own ``X-Request-ID``, so client- and server-side figures pair up.
The tenant comes from ``liebian tenants create NAME --json`` (the console script, same env), a
distributor from ``PUT /v1/distributors/{id}``; then, with one keep-alive httpx client:

- cold: the first ``GET /v1/posters/{id}?format=jpeg`` of the process (template static layer,
  fonts, QR and the render), then first requests for a few more distributors (render misses in
  a warm process);
- cache hits: the same poster again and again (200 with the bytes), and with
  ``If-None-Match`` (304), alternated in batches with ``GET /health`` (one ``SELECT 1``), the
  floor of any request through this app; client-side p50/p99 and server-side p50/p99.
  Target: cache-hit median under 1 ms server-side.

The request cache keeps a poster request for 30 s (``server.share_posters.service``), so the
hit phase is timed from the poster's first render and flagged if it ran past that.
Nothing here asserts on time; the target is reported as met / not met.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx

from bench.harness import Line, create_tenant, fresh_database, log, pct, say, serve_app

REQUEST_TTL = 30.0
TARGET_MS = 1.0
QUICK = {"rounds": 4, "batch": 100, "misses": 3}


def server_ms(log_path: Path) -> dict[str, float]:
    """request_id -> the server-side ms of its access-log line."""
    out: dict[str, float] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("msg") == "request" and record.get("ms") is not None:
            out[str(record.get("request_id"))] = float(record["ms"])
    return out


class Client:
    """One keep-alive connection; every request gets its own X-Request-ID."""

    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )
        self.serial = 0
        self.samples: dict[str, list[tuple[str, float]]] = {}
        self.etag = ""
        self.sizes: dict[str, int] = {}
        self.hit_phase_s = 0.0

    def get(self, kind: str, path: str, **headers: str) -> httpx.Response:
        self.serial += 1
        rid = f"bench-{kind}-{self.serial:09d}"
        start = time.perf_counter()
        response = self.http.get(path, headers={"X-Request-ID": rid, **headers})
        elapsed = (time.perf_counter() - start) * 1000
        self.samples.setdefault(kind, []).append((rid, elapsed))
        return response

    def close(self) -> None:
        self.http.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=10, help="alternated batches")
    parser.add_argument("--batch", type=int, default=200, help="requests per batch")
    parser.add_argument("--misses", type=int, default=5, help="first posters in a warm process")


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    db_url = fresh_database(engine, "poster_http")
    t0 = time.perf_counter()
    keys = create_tenant(db_url, "bench-posters")
    log(f"tenant {keys['tenant_id']} created with the CLI in {time.perf_counter() - t0:.1f} s")
    with serve_app(db_url, {"LIEBIAN_LOG_REQUESTS": "1", "LIEBIAN_DELIVER_WEBHOOKS": "0"}) as app:
        client = Client(app.base_url, keys["sdk_key"])
        try:
            measure(client, args)
        finally:
            client.close()
        time.sleep(0.3)  # let the last log lines reach the file
        return report(client, app.log_path, engine)


def put_distributor(client: Client, distributor: str, n: int) -> None:
    response = client.http.put(
        f"/v1/distributors/{distributor}", json={"nickname": f"小红书达人🌸{n:03d}号"}
    )
    if response.status_code >= 300:
        raise RuntimeError(f"PUT /v1/distributors: {response.status_code} {response.text}")


def measure(client: Client, args: argparse.Namespace) -> None:
    main_id = "koc_bench_0"
    put_distributor(client, main_id, 0)
    path = f"/v1/posters/{main_id}?format=jpeg"
    client.get("warmup", "/health")

    cold = client.get("cold", path)
    cold.raise_for_status()
    first_render = time.monotonic()
    client.etag = cold.headers["etag"]
    for n in range(1, args.misses + 1):
        put_distributor(client, f"koc_bench_{n}", n)
        client.get("miss", f"/v1/posters/koc_bench_{n}?format=jpeg").raise_for_status()
    sizes = {"jpeg": len(cold.content)}
    for fmt in ("png", "webp"):
        response = client.get("other", f"/v1/posters/{main_id}?format={fmt}")
        response.raise_for_status()
        sizes[fmt] = len(response.content)
    client.sizes = sizes

    # warm the hit paths, then alternate batches: hit, 304, health
    for _ in range(20):
        client.get("warmup", path)
        client.get("warmup", path, **{"If-None-Match": client.etag})
        client.get("warmup", "/health")
    for r in range(args.rounds):
        batches: list[tuple[str, str, dict[str, str], int]] = [
            ("hit", path, {}, 200),
            ("304", path, {"If-None-Match": client.etag}, 304),
            ("health", "/health", {}, 200),
        ]
        for kind, p, headers, status in batches if r % 2 == 0 else reversed(batches):
            for _ in range(args.batch):
                response = client.get(kind, p, **headers)
                if response.status_code != status:
                    raise RuntimeError(f"{kind}: {response.status_code} {response.text[:200]}")
    client.hit_phase_s = time.monotonic() - first_render


def report(client: Client, log_path: Path, engine: str) -> list[Line]:
    server = server_ms(log_path)

    def server_side(kind: str) -> list[float]:
        return [server[rid] for rid, _ in client.samples.get(kind, []) if rid in server]

    def client_side(kind: str) -> list[float]:
        return [ms for _, ms in client.samples.get(kind, [])]

    cold_c, cold_s = client_side("cold")[0], server_side("cold")
    say(
        f"cold (first poster of the process): client {cold_c:.1f} ms,"
        f" server {cold_s[0] if cold_s else float('nan'):.1f} ms"
    )
    misses_c, misses_s = client_side("miss"), server_side("miss")
    if misses_c:
        say(
            f"render miss, warm process ({len(misses_c)} new distributors): median client"
            f" {statistics.median(misses_c):.1f} ms, server {statistics.median(misses_s):.1f} ms"
        )
    sizes = client.sizes
    say(
        "bytes per poster (750x1334): "
        + ", ".join(f"{fmt.upper()} {size:,} B" for fmt, size in sizes.items())
    )
    rows = []
    for kind, label in (
        ("hit", "cache hit, 200 + bytes"),
        ("304", "cache hit, If-None-Match 304"),
        ("health", "baseline GET /health"),
    ):
        c, s = client_side(kind), server_side(kind)
        rows.append((kind, statistics.median(s), pct(s, 99)))
        say(
            f"{label:<30} client p50 {pct(c, 50):.3f} ms  p99 {pct(c, 99):.3f} ms |"
            f" server p50 {pct(s, 50):.3f} ms  p99 {pct(s, 99):.3f} ms  (n={len(c)},"
            f" {len(s)} logged)"
        )
    health = rows[2][1]
    for kind, med, _ in rows[:2]:
        say(
            f"  server-side median {kind}: {med:.3f} ms = {med / health:.2f}x of /health"
            f" -> target < {TARGET_MS:.0f} ms: {'met' if med < TARGET_MS else 'NOT met'}"
        )
    hit = rows[0][1]
    lines = [Line("poster-http", "cache hit, server-side median", engine, f"{hit:.3f} ms",
                  f"< {TARGET_MS:.0f} ms", hit < TARGET_MS)]
    phase = client.hit_phase_s
    if phase > REQUEST_TTL:
        say(
            f"  note: the hit phase ended {phase:.0f} s after the first render, past the"
            f" {REQUEST_TTL:.0f} s request cache: later hits re-read the database"
        )
    return lines
