"""A live server on loopback delivers a signed webhook to a receiver on this machine, and the
SDK verifies it: the whole path an integrator sees."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from liebian_sdk import webhooks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_server(tmp_path, **extra_env: str):
    """``liebian serve`` on a free loopback port with a fresh tenant; (process, base, admin)."""
    env = {**os.environ, "LIEBIAN_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}",
           "LIEBIAN_LOG_REQUESTS": "0"}
    env.pop("LIEBIAN_WEBHOOK_ALLOW_PRIVATE", None)
    env.update(extra_env)
    cli = [sys.executable, "-m", "server.cli"]
    keys = json.loads(subprocess.run([*cli, "tenants", "create", "live", "--json"], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, base, {"Authorization": f"Bearer {keys['admin_key']}"}


@pytest.mark.sqlite_only
def test_binding_loopback_does_not_turn_the_address_guard_off(tmp_path):
    server, base, admin = start_server(tmp_path)
    try:
        refused = httpx.post(f"{base}/v1/webhook-endpoints", headers=admin, json={
            "url": "http://127.0.0.1:9/hook", "events": ["settlement.approved"]})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "url"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.sqlite_only
def test_live_server_delivers_a_signed_webhook(tmp_path):
    # A receiver on this machine is a private target: allowed only by the explicit setting.
    hook_port = free_port()
    receiver = HTTPServer(("127.0.0.1", hook_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    server, base, admin = start_server(tmp_path, LIEBIAN_WEBHOOK_ALLOW_PRIVATE="1")
    try:
        created = httpx.post(f"{base}/v1/webhook-endpoints", headers=admin, json={
            "url": f"http://127.0.0.1:{hook_port}/hook", "events": ["settlement.approved"]})
        assert created.status_code == 201, created.text
        draft = httpx.post(f"{base}/v1/settlements", headers=admin,
                           json={"cutoff": "2026-06-01T00:00:00+00:00"}).json()
        assert httpx.post(f"{base}/v1/settlements/{draft['id']}/approve",
                          headers=admin).status_code == 200
        for _ in range(100):
            if Receiver.received:
                break
            time.sleep(0.1)
        headers, body = Receiver.received[0]
        event = webhooks.verify(body, headers["Liebian-Signature"], created.json()["secret"])
        assert event["type"] == "settlement.approved"
        assert event["data"]["settlement_id"] == draft["id"]
    finally:
        server.terminate()
        server.wait(timeout=10)
        receiver.shutdown()
        receiver.server_close()
