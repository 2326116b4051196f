"""Two ``liebian serve`` nodes on two loopback ports sharing PostgreSQL and Redis agree.

A revoked key, a changed program and a closed campaign are announced over Redis
(:mod:`server.coherence`): the other node drops its cached copy within 100 ms, where it would
otherwise serve it for the cache's lifetime (5 s for keys, 2 s for programs and campaigns).
Closing a campaign on both nodes at once pays its TOP-N once; with both nodes running their
webhook delivery loops, each event reaches the receiver once.

The nodes are real processes (the caches are per process), on the PostgreSQL pass only (SQLite
across processes is not a production set-up). Without Redis the tests skip with a warning
(fail under CI=true).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import msgspec
import pytest

from tests.conftest import REDIS_URL, TenantKeys, make_tenant
from tests.server.test_campaigns import IN_WINDOW, campaign, invite
from tests.server.test_live_webhooks import free_port
from tests.server.test_referrals import register

pytestmark = pytest.mark.postgres_only

#: The promise: another node stops serving a changed thing within this many seconds.
BOUND = 0.100
#: Allowance for the test's own polling (one HTTP round trip on a loaded 2-core machine).
MARGIN = 0.050


def redis_or_skip(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        if os.environ.get("CI") == "true":
            raise
        warnings.warn(
            f"Redis at {url} is unreachable, multi-node tests skipped: {exc}", stacklevel=2
        )
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    finally:
        client.close()


@dataclass
class Nodes:
    urls: list[str]
    settings: Any  # the nodes' settings (same database, Redis and channel)
    env: dict[str, str]
    clients: list[httpx.Client]

    def tenant_on(self, node: int, keys: TenantKeys) -> TenantKeys:
        return TenantKeys(keys.tenant_id, keys.admin_key, keys.sdk_key, self.clients[node])


def start_nodes(settings: Any, redis_url: str, count: int = 2, **extra: str) -> Iterator[Nodes]:
    """``count`` ``liebian serve`` processes on free loopback ports; yields once every node
    listens for invalidations (the channel has ``count`` subscribers)."""
    import redis

    channel = f"liebian:test:{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "LIEBIAN_DATABASE_URL": settings.database_url,
        "LIEBIAN_REDIS_URL": redis_url,
        "LIEBIAN_REDIS_CHANNEL": channel,
        "LIEBIAN_SECRET_KEY": settings.secret_key,
        "LIEBIAN_LOG_REQUESTS": "0",
        "LIEBIAN_DELIVER_WEBHOOKS": "1",
        "LIEBIAN_WEBHOOK_ALLOW_PRIVATE": "1",
        "LIEBIAN_RATE_LIMITS": "0",
        **extra,
    }
    processes: list[subprocess.Popen[bytes]] = []
    # The nodes' stderr goes to a file: a pipe nobody reads could fill up and stall them.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    urls: list[str] = []
    try:
        for _ in range(count):  # one after the other: each migrates (a no-op) before serving
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
            processes.append(process)
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"node exited: {log.read().decode()[-2000:]}")
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            urls.append(url)
        probe = redis.Redis.from_url(redis_url.replace("redis+cluster://", "redis://"))
        try:
            for _ in range(100):
                if dict(probe.pubsub_numsub(channel)).get(channel.encode(), 0) >= count:
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("the nodes never subscribed to the invalidation channel")
        finally:
            probe.close()
        node_settings = msgspec.structs.replace(
            settings, redis_url=redis_url, redis_channel=channel,
            redis_cluster=redis_url.startswith("redis+cluster://"),
        )  # fmt: skip
        clients = [httpx.Client(base_url=url) for url in urls]
        try:
            yield Nodes(urls, node_settings, env, clients)
        finally:
            for http in clients:
                http.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


@pytest.fixture(scope="module")
def nodes(settings: Any) -> Iterator[Nodes]:
    redis_or_skip(REDIS_URL)
    yield from start_nodes(settings, REDIS_URL)


def refused_within(poll: Any, bound: float) -> float | None:
    """Call ``poll()`` until it returns True or ``bound`` seconds pass; the seconds it took."""
    start = time.monotonic()
    while True:
        if poll():
            return time.monotonic() - start
        if time.monotonic() - start > bound:
            return None


def test_a_key_revoked_on_one_node_is_refused_on_the_other_within_100ms(client, nodes):
    from server.cli import _with_db
    from server.tenants.service import rotate_keys

    keys = make_tenant(client, "nodes-revoke")
    a, b = nodes.tenant_on(0, keys), nodes.tenant_on(1, keys)
    # Both nodes have verified (and cached, for 5 s) the key.
    assert a.get("/v1/program").status_code == 200
    assert b.get("/v1/program").status_code == 200
    # Revoked as `liebian keys rotate` does: a process with the deployment's settings.
    new = asyncio.run(
        _with_db(nodes.settings, lambda db: rotate_keys(db, keys.tenant_id, ("admin",)))
    )
    took = refused_within(lambda: b.get("/v1/program").status_code == 401, BOUND + MARGIN)
    assert took is not None, "node B still accepts the revoked key after 150 ms"
    assert a.get("/v1/program").status_code == 401
    fresh = {"Authorization": f"Bearer {new['admin_key']}"}
    assert b.client.get("/v1/program", headers=fresh).status_code == 200


def test_a_key_revoked_by_the_cli_is_refused_by_every_node(client, nodes):
    keys = make_tenant(client, "nodes-revoke-cli")
    b = nodes.tenant_on(1, keys)
    assert b.get("/v1/program", scope="sdk").status_code == 200
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "keys", "rotate", "--tenant", keys.tenant_id,
         "--scope", "sdk", "--json"],
        env=nodes.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    took = refused_within(lambda: b.get("/v1/program", scope="sdk").status_code == 401, BOUND)
    assert took is not None, "node B still accepts the key the CLI revoked"


def test_a_program_change_on_one_node_is_seen_on_the_other_within_100ms(client, nodes):
    keys = make_tenant(client, "nodes-program")
    a, b = nodes.tenant_on(0, keys), nodes.tenant_on(1, keys)
    assert b.get("/v1/program").json()["bind_mode"] != "last"  # cached on B for 2 s
    changed = a.put("/v1/program", {"bind_mode": "last"})
    assert changed.status_code == 200, changed.text
    took = refused_within(
        lambda: b.get("/v1/program").json()["bind_mode"] == "last", BOUND + MARGIN
    )
    assert took is not None, "node B still serves the old program after 150 ms"


def test_a_campaign_closed_on_both_nodes_at_once_pays_top_n_once(client, nodes):
    keys = make_tenant(client, "nodes-close")
    a, b = nodes.tenant_on(0, keys), nodes.tenant_on(1, keys)
    prizes = [
        {"rank_from": 1, "rank_to": 1, "amount_fen": 88800},
        {"rank_from": 2, "rank_to": 3, "amount_fen": 38800},
    ]
    c = campaign(a, prizes=prizes)
    for name, n in (("a", 5), ("b", 4), ("c", 2), ("d", 1)):
        register(a, name)
        invite(b, name, n, IN_WINDOW)
    assert b.get(f"/v1/campaigns/{c['id']}", scope="sdk").json()["status"] == "open"
    with ThreadPoolExecutor(4) as pool:
        closes = list(pool.map(lambda t: t.post(f"/v1/campaigns/{c['id']}/close"), [a, b, a, b]))
    assert all(r.status_code == 200 for r in closes), [r.text for r in closes]
    awards = [r.json()["awards"] for r in closes]
    assert all(x == awards[0] for x in awards)
    assert [(x["distributor_id"], x["rank"], x["amount_fen"]) for x in awards[0]] == [
        ("a", 1, 88800), ("b", 2, 38800), ("c", 3, 38800),
    ]  # fmt: skip
    prizes_paid = Counter()
    for name in "abcd":
        ledger = a.get(f"/v1/distributors/{name}/ledger", scope="sdk").json()["entries"]
        for entry in ledger:
            if entry["kind"] == "prize":
                prizes_paid[name] += entry["amount_fen"]
    assert prizes_paid == {"a": 88800, "b": 38800, "c": 38800}
    # Both nodes stopped counting for the campaign (their open-campaign caches were dropped).
    invite(b, "d", 5, IN_WINDOW, prefix="late-")
    board = a.get(f"/v1/campaigns/{c['id']}/leaderboard", scope="sdk").json()["entries"]
    assert ("d", 1) in [(e["distributor_id"], e["score"]) for e in board]


class CountingReceiver(BaseHTTPRequestHandler):
    events: Counter[str] = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with CountingReceiver.lock:
            CountingReceiver.events[msgspec.json.decode(body)["id"]] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhooks_are_delivered_once_with_both_nodes_delivering(client, nodes):
    keys = make_tenant(client, "nodes-webhooks")
    a, b = nodes.tenant_on(0, keys), nodes.tenant_on(1, keys)
    port = free_port()
    receiver = HTTPServer(("127.0.0.1", port), CountingReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        created = a.post(
            "/v1/webhook-endpoints",
            {"url": f"http://127.0.0.1:{port}/hook", "events": ["commission.created"]},
        )
        assert created.status_code == 201, created.text
        # Node B learns of the new endpoint at once (not after its 2 s endpoint cache).
        register(b, "seller")
        link = b.post("/v1/links", {"distributor_id": "seller"}, scope="sdk").json()
        ids = []
        for n in range(20):
            node = a if n % 2 else b
            user = f"buyer-{n}"
            node.post("/v1/referrals", {"user_id": user, "scene": link["scene"]}, scope="sdk")
            body = {"order_id": f"o-{n}", "user_id": user, "amount_fen": 10000 + n,
                    "paid_at": "2026-06-10T04:00:00+00:00"}  # fmt: skip
            placed = node.post("/v1/orders", body, scope="sdk")
            assert placed.status_code == 201, placed.text
            ids.append(n)
        deadline = time.monotonic() + 30
        while len(CountingReceiver.events) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # two more turns of both delivery loops: a duplicate would show
        assert len(CountingReceiver.events) == len(ids)
        assert set(CountingReceiver.events.values()) == {1}
    finally:
        receiver.shutdown()
        receiver.server_close()


@pytest.fixture(scope="module")
def cluster_nodes(settings: Any, redis_cluster_url: str) -> Iterator[Nodes]:
    yield from start_nodes(settings, redis_cluster_url)


def test_on_a_redis_cluster_a_revocation_published_on_another_master_reaches_every_node(
    client, cluster_nodes, redis_cluster_ports
):
    """The nodes subscribe on the first master; the revoking process publishes on the
    second: PUBLISH on a cluster is broadcast to every node."""
    from server.cli import _with_db
    from server.tenants.service import rotate_keys

    keys = make_tenant(client, "nodes-cluster-revoke")
    a, b = cluster_nodes.tenant_on(0, keys), cluster_nodes.tenant_on(1, keys)
    assert a.get("/v1/program").status_code == 200
    assert b.get("/v1/program").status_code == 200
    elsewhere = msgspec.structs.replace(
        cluster_nodes.settings, redis_url=f"redis+cluster://127.0.0.1:{redis_cluster_ports[1]}"
    )
    asyncio.run(_with_db(elsewhere, lambda db: rotate_keys(db, keys.tenant_id, ("admin",))))
    for node in (b, a):
        took = refused_within(
            lambda n=node: n.get("/v1/program").status_code == 401, BOUND + MARGIN
        )
        assert took is not None, "a node still accepts the revoked key after 150 ms"


def test_on_a_redis_cluster_a_program_change_reaches_the_other_node(client, cluster_nodes):
    keys = make_tenant(client, "nodes-cluster-program")
    a, b = cluster_nodes.tenant_on(0, keys), cluster_nodes.tenant_on(1, keys)
    assert b.get("/v1/program").json()["bind_mode"] != "last"
    assert a.put("/v1/program", {"bind_mode": "last"}).status_code == 200
    took = refused_within(
        lambda: b.get("/v1/program").json()["bind_mode"] == "last", BOUND + MARGIN
    )
    assert took is not None, "node B still serves the old program after 150 ms"
