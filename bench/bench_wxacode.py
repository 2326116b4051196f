"""Mini-program codes (issue 16): WeChat calls per distributor, the pacing bound, stored codes.

``python -m bench wxacode [--engine E] [--quick] [--distributors N]``.

In process (Litestar's TestClient) on a fresh database of the engine, against the fake WeChat
API of ``tests/fake_wechat.py`` on 127.0.0.1 (a real QR PNG per call). For N distributors:

- first requests: ``GET /v1/links/{code}/wxacode`` once per link, one after the other; the
  WeChat calls made (target: exactly N) and the rate achieved (the pacing bound: 20 a second
  per tenant and process after a burst of 40);
- stored codes: every link's code asked 3 more times; WeChat calls made (target: 0) and the
  client-side p50/p99 of a stored code;
- bytes stored per code.
Nothing asserts; targets are printed as met / MISSED.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time

from litestar.testing import TestClient

from bench.harness import Line, fresh_database, migrate, pct, say
from server.app import create_app
from server.settings import load_settings
from server.tenants.service import create_tenant
from tests.fake_wechat import FakeWeChat

QUICK = {"distributors": 80}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distributors", type=int, default=200)


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    n = args.distributors
    url = fresh_database(engine, "wxacode")
    migrate(url)
    with FakeWeChat() as fake:
        settings = load_settings({
            "LIEBIAN_DATABASE_URL": url,
            "LIEBIAN_SECRET_KEY": "bench-secret-key-0123456789",
            "LIEBIAN_LOG_REQUESTS": "0", "LIEBIAN_DELIVER_WEBHOOKS": "0",
            "LIEBIAN_RATE_LIMITS": "0", "LIEBIAN_WECHAT_API_BASE": fake.url,
        })  # fmt: skip
        appid, secret = "wx" + secrets.token_hex(8), secrets.token_hex(16)
        fake.add_app(appid, secret)
        with TestClient(create_app(settings)) as client:
            with client.portal() as portal:
                tenant = portal.call(create_tenant, client.app.state.db, "bench")
            admin = {"Authorization": f"Bearer {tenant.admin_key}"}
            sdk = {"Authorization": f"Bearer {tenant.sdk_key}"}
            client.put("/v1/wechat", json={"appid": appid, "secret": secret}, headers=admin)
            codes = []
            for i in range(n):
                client.put(f"/v1/distributors/d{i}", json={"nickname": f"d{i}"}, headers=sdk)
                link = client.post("/v1/links", json={"distributor_id": f"d{i}"}, headers=sdk)
                codes.append(link.json()["code"])
            start, sizes = time.perf_counter(), []
            for code in codes:
                response = client.get(f"/v1/links/{code}/wxacode", headers=sdk)
                assert response.status_code == 200, response.text
                sizes.append(len(response.content))
            first_s = time.perf_counter() - start
            first_calls = fake.calls["getwxacodeunlimit"]
            latencies = []
            for _ in range(3):
                for code in codes:
                    t0 = time.perf_counter()
                    client.get(f"/v1/links/{code}/wxacode", headers=sdk)
                    latencies.append((time.perf_counter() - t0) * 1000)
            later_calls = fake.calls["getwxacodeunlimit"] - first_calls
    rate = n / first_s
    say(f"wxacode [{engine}]: {n} distributors, fake WeChat on loopback")
    ok = "met" if first_calls == n else "MISSED"
    say(f"  first requests: {first_calls} WeChat calls for {n} links (target {n}: {ok}), "
          f"{first_s:.1f} s, {rate:.1f} codes/s (bound: 20/s after a burst of 40)")  # fmt: skip
    ok = "met" if later_calls == 0 else "MISSED"
    say(f"  stored codes: {3 * n} requests, {later_calls} WeChat calls (target 0: {ok}), "
          f"p50 {statistics.median(latencies):.2f} ms, p99 {pct(latencies, 99):.2f} ms "
          f"client-side in process")  # fmt: skip
    say(f"  stored bytes per code (430 px PNG from the fake): {statistics.median(sizes):.0f}")
    say(f"  access tokens fetched: {fake.calls['stable_token']}")
    return [Line("wxacode", "WeChat calls: first codes / stored", engine,
                 f"{first_calls} / {later_calls} for {n} links", f"{n} / 0",
                 first_calls == n and later_calls == 0)]

