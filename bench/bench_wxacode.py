"""Mini-program codes (issue 16): WeChat calls per distributor, the pacing bound, stored codes.

Run from the repository root: ``.venv/bin/python bench/bench_wxacode.py [--quick]``.

In process (Litestar's TestClient) on a fresh SQLite file under /tmp, against the fake WeChat
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
import asyncio
import math
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar.testing import TestClient  # noqa: E402

from server.app import create_app  # noqa: E402
from server.migrate import migrate  # noqa: E402
from server.settings import load_settings  # noqa: E402
from server.tenants.service import create_tenant  # noqa: E402
from tests.fake_wechat import FakeWeChat  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 80 if parser.parse_args().quick else 200
    with tempfile.TemporaryDirectory() as tmp, FakeWeChat() as fake:
        settings = load_settings({
            "LIEBIAN_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "LIEBIAN_SECRET_KEY": "bench-secret-key-0123456789",
            "LIEBIAN_LOG_REQUESTS": "0", "LIEBIAN_DELIVER_WEBHOOKS": "0",
            "LIEBIAN_RATE_LIMITS": "0", "LIEBIAN_WECHAT_API_BASE": fake.url,
        })  # fmt: skip
        asyncio.run(migrate(settings))
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
    print(f"wxacode: {n} distributors, fake WeChat on loopback, SQLite")
    ok = "met" if first_calls == n else "MISSED"
    print(f"  first requests: {first_calls} WeChat calls for {n} links (target {n}: {ok}), "
          f"{first_s:.1f} s, {rate:.1f} codes/s (bound: 20/s after a burst of 40)")  # fmt: skip
    ok = "met" if later_calls == 0 else "MISSED"
    print(f"  stored codes: {3 * n} requests, {later_calls} WeChat calls (target 0: {ok}), "
          f"p50 {statistics.median(latencies):.2f} ms, p99 {pct(latencies, 99):.2f} ms "
          f"client-side in process")  # fmt: skip
    print(f"  stored bytes per code (430 px PNG from the fake): {statistics.median(sizes):.0f}")
    print(f"  access tokens fetched: {fake.calls['stable_token']}")


if __name__ == "__main__":
    main()
