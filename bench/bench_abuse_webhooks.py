"""Server memory under hostile webhook receivers (issue 13), section ``webhook_abuse``.

Run from the repository root: ``.venv/bin/python bench/bench_abuse_webhooks.py [--engine
sqlite|postgres] [--deliveries 20]`` (also ``python -m bench abuse_webhooks``).

The app runs as in production: ``liebian serve --host 127.0.0.1`` on a free loopback port, one
worker, the delivery loop on, a fresh SQLite file (or the bench's own PostgreSQL database), with
``LIEBIAN_WEBHOOK_ALLOW_PRIVATE=1`` (the receivers are on loopback) and
``LIEBIAN_WEBHOOK_TIMEOUT=3``. Hostile receivers run in this process: half the endpoints answer
200 or 500 with a 400 MiB body streamed lazily from one 64 KiB buffer, half send their answer
one byte every 3 s. One event fans out to ``--deliveries`` endpoints; while they are
attempted, a second tenant's event goes to a healthy receiver and its delivery time is printed.

Printed: idle RSS (after start-up and a few requests), peak RSS while the hostile deliveries
run (``VmRSS`` sampled every 20 ms, and ``VmHWM``), their ratio against the target < 2x, bytes
the huge receivers managed to push, and the healthy tenant's delivery time. Nothing asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
HUGE_BYTES = 400 * 1024 * 1024
TRICKLE_EVERY = 3.0
DEADLINE_S = 3
TARGET_RATIO = 2.0
_CHUNK = b"x" * 65536


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receivers:
    """Loopback receivers: "huge" (200), "huge500", "trickle" and "ok", a thread per
    connection."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.huge_sent = 0
        self.requests: dict[str, int] = {"huge": 0, "huge500": 0, "trickle": 0, "ok": 0}
        self.ok_at: list[float] = []
        self._servers: list[socketserver.ThreadingTCPServer] = []

    def _handle(self, mode: str, sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        while len(body) < length:
            body += sock.recv(65536)
        self.requests[mode] += 1
        if mode == "ok":
            self.ok_at.append(time.monotonic())
            sock.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        elif mode in ("huge", "huge500"):
            status = b"200 OK" if mode == "huge" else b"500 Internal Server Error"
            sock.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n" % (status, HUGE_BYTES))
            sent = 0
            while sent < HUGE_BYTES and not self.stop.is_set():
                sock.sendall(_CHUNK)
                sent += len(_CHUNK)
                self.huge_sent += len(_CHUNK)
        else:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                if self.stop.wait(TRICKLE_EVERY):
                    return
                sock.sendall(bytes([byte]))

    def hostile(self) -> int:
        return sum(n for mode, n in self.requests.items() if mode != "ok")

    def start(self, mode: str) -> str:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):  # the client hung up
                    owner._handle(mode, self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/hook"

    def close(self) -> None:
        self.stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def database_url(engine: str, tmp: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'abuse.db'}"
    import asyncio

    import asyncpg

    base = os.environ.get("LIEBIAN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = os.environ.get("LIEBIAN_BENCH_PG_DB", "liebian_bench") + "_webhooks"
    if urlsplit(base).path.lstrip("/") == name:
        raise SystemExit(f"refusing to drop {name!r}: it is the test database")
    admin = urlunsplit(urlsplit(base)._replace(path="/postgres"))

    async def recreate() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    return urlunsplit(urlsplit(base)._replace(path="/" + name))


@contextmanager
def server(db_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
    env.update(LIEBIAN_DATABASE_URL=db_url, LIEBIAN_LOG_REQUESTS="0",
               LIEBIAN_WEBHOOK_ALLOW_PRIVATE="1", LIEBIAN_WEBHOOK_TIMEOUT=str(DEADLINE_S),
               LIEBIAN_SECRET_KEY="bench-secret-key-0123456789")  # noqa: S106  # fmt: skip
    cli = [sys.executable, "-m", "server.cli"]
    subprocess.run([*cli, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    keys = {}
    for name in ("hostile", "healthy"):
        out = subprocess.run([*cli, "tenants", "create", name, "--json"], cwd=ROOT, env=env,
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        keys[name] = json.loads(out)["admin_key"]
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield proc, base, keys
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def webhook_abuse(engine: str = "sqlite", deliveries: int = 20) -> dict[str, float]:
    """Idle and peak server RSS around ``deliveries`` hostile deliveries; returns the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="liebian-abuse-"))
    receivers = Receivers()
    try:
        modes = ("huge", "huge500", "trickle", "ok")
        huge_url, huge500_url, trickle_url, ok_url = (receivers.start(m) for m in modes)
        with server(database_url(engine, tmp)) as (proc, base, keys), httpx.Client(
            base_url=base, timeout=30
        ) as http:  # fmt: skip
            hostile = {"Authorization": f"Bearer {keys['hostile']}"}
            healthy = {"Authorization": f"Bearer {keys['healthy']}"}
            for n in range(deliveries):
                url = (huge_url, trickle_url, huge500_url, trickle_url)[n % 4]
                http.post("/v1/webhook-endpoints", headers=hostile,
                          json={"url": url, "events": ["settlement.approved"]}).raise_for_status()
            http.post("/v1/webhook-endpoints", headers=healthy,
                      json={"url": ok_url, "events": ["settlement.approved"]}).raise_for_status()
            for _ in range(50):
                http.get("/v1/webhook-endpoints", headers=hostile)
            time.sleep(1.0)
            idle = rss_kb(proc.pid)
            log(f"[{engine}] idle RSS {idle / 1024:.1f} MB; {deliveries} hostile deliveries "
                f"(400 MiB answers with 200 or 500, and answers of one byte every "
                f"{TRICKLE_EVERY:g} s), deadline {DEADLINE_S} s per attempt")
            draft = http.post("/v1/settlements", headers=hostile,
                              json={"cutoff": "2100-01-01T00:00:00+00:00"}).json()
            http.post(f"/v1/settlements/{draft['id']}/approve", headers=hostile)
            started = time.monotonic()
            peak = idle
            healthy_ms = None
            sent_healthy = False
            # first attempts of all hostile deliveries: K per tenant at a time, each <= deadline
            until = started + DEADLINE_S * (deliveries / 4 + 2) + 5
            while time.monotonic() < until:
                peak = max(peak, rss_kb(proc.pid))
                if not sent_healthy and receivers.hostile() >= 2:
                    other = http.post("/v1/settlements", headers=healthy,
                                      json={"cutoff": "2100-01-01T00:00:00+00:00"}).json()
                    healthy_sent_at = time.monotonic()
                    http.post(f"/v1/settlements/{other['id']}/approve", headers=healthy)
                    sent_healthy = True
                if sent_healthy and healthy_ms is None and receivers.ok_at:
                    healthy_ms = (receivers.ok_at[0] - healthy_sent_at) * 1000
                done = receivers.hostile()
                if done >= deliveries and time.monotonic() - started > DEADLINE_S + 1:
                    break
                time.sleep(0.02)
            hwm = rss_kb(proc.pid, "VmHWM")
            attempted = receivers.hostile()
    finally:
        receivers.close()
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = peak / idle if idle else float("inf")
    verdict = "met" if ratio < TARGET_RATIO else "MISSED"
    log(f"[{engine}] hostile attempts (retries included): {attempted} for {deliveries} "
        f"deliveries; the 400 MiB receivers pushed {receivers.huge_sent / 1e6:.1f} MB in all")
    log(f"[{engine}] peak RSS {peak / 1024:.1f} MB (VmHWM {hwm / 1024:.1f} MB) = {ratio:.2f}x "
        f"idle; target < {TARGET_RATIO:g}x: {verdict}")
    log(f"[{engine}] healthy tenant's delivery during the abuse: "
        + (f"{healthy_ms:.0f} ms" if healthy_ms is not None else "NOT DELIVERED"))
    return {"idle_mb": idle / 1024, "peak_mb": peak / 1024, "ratio": ratio,
            "healthy_ms": healthy_ms if healthy_ms is not None else -1.0}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--deliveries", type=int, default=20)
    args = parser.parse_args()
    log("=== webhook_abuse " + "=" * 60)
    for engine in ["sqlite", "postgres"] if args.engine == "both" else [args.engine]:
        webhook_abuse(engine, args.deliveries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
