"""Server memory under hostile webhook receivers (issue 13).

``python -m bench abuse-webhooks [--engine sqlite|postgres|both] [--quick] [--deliveries 20]``.

The app runs as in production (``uvicorn server.app:create_app --factory``) on a free loopback
port, one worker, the delivery loop on, a fresh database of the engine, with
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
import socket
import socketserver
import threading
import time
from datetime import UTC, datetime

import httpx

from bench.harness import Line, create_tenant, fresh_database, log, rss_kb, say, serve_app

QUICK = {"deliveries": 8}
HUGE_BYTES = 400 * 1024 * 1024
TRICKLE_EVERY = 3.0
DEADLINE_S = 3
TARGET_RATIO = 2.0
_CHUNK = b"x" * 65536


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


def _now() -> str:
    return datetime.now(UTC).isoformat()  # a cutoff may not be later than now


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deliveries", type=int, default=20, help="hostile endpoints")


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    """Idle and peak server RSS around ``deliveries`` hostile deliveries."""
    deliveries = args.deliveries
    url = fresh_database(engine, "abuse_webhooks")
    keys = {name: create_tenant(url, name)["admin_key"] for name in ("hostile", "healthy")}
    env = {"LIEBIAN_WEBHOOK_ALLOW_PRIVATE": "1", "LIEBIAN_WEBHOOK_TIMEOUT": str(DEADLINE_S),
           "LIEBIAN_DELIVER_WEBHOOKS": "1"}  # fmt: skip
    receivers = Receivers()
    try:
        modes = ("huge", "huge500", "trickle", "ok")
        huge_url, huge500_url, trickle_url, ok_url = (receivers.start(m) for m in modes)
        with serve_app(url, env) as app, httpx.Client(base_url=app.base_url, timeout=30) as http:
            proc = app.proc
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
            draft = http.post("/v1/settlements", headers=hostile, json={"cutoff": _now()})
            draft.raise_for_status()
            http.post(f"/v1/settlements/{draft.json()['id']}/approve", headers=hostile)
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
                                      json={"cutoff": _now()}).raise_for_status().json()
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
    ratio = peak / idle if idle else float("inf")
    verdict = "met" if ratio < TARGET_RATIO else "MISSED"
    say(f"[{engine}] idle RSS {idle / 1024:.1f} MB")
    say(f"[{engine}] hostile attempts (retries included): {attempted} for {deliveries} "
        f"deliveries; the 400 MiB receivers pushed {receivers.huge_sent / 1e6:.1f} MB in all")
    say(f"[{engine}] peak RSS {peak / 1024:.1f} MB (VmHWM {hwm / 1024:.1f} MB) = {ratio:.2f}x "
        f"idle; target < {TARGET_RATIO:g}x: {verdict}")
    say(f"[{engine}] healthy tenant's delivery during the abuse: "
        + (f"{healthy_ms:.0f} ms" if healthy_ms is not None else "NOT DELIVERED"))
    return [Line("abuse-webhooks", "peak RSS vs idle", engine, f"{ratio:.2f}x",
                 f"< {TARGET_RATIO:g}x", ratio < TARGET_RATIO)]
