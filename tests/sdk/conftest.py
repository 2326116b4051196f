"""Fixtures of the SDK tests (helpers in sdk_testing.py, the in-memory fake in fake_liebian.py)."""

from __future__ import annotations

import os

import httpx
import pytest
from fake_liebian import FakeLiebian
from sdk_testing import BorrowedTransport, Recorder, Run, Target, ThreadedTransport


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Run:
    """Parametrises a test over `Client` and `AsyncClient`."""
    return Run(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# Routes the end-to-end scenarios need; until the app serves them all, they run on the fake only.
APP_ROUTES = ("/v1/distributors", "/v1/orders", "/v1/campaigns", "/v1/posters", "/v1/settlements")
LIVE_URL = os.environ.get("LIEBIAN_SDK_TEST_BASE_URL")


@pytest.fixture(params=["live"] if LIVE_URL else ["fake", "app"])
def target(request: pytest.FixtureRequest) -> Target:
    """The API end-to-end tests run against.

    - "live": the server at LIEBIAN_SDK_TEST_BASE_URL, with LIEBIAN_SDK_TEST_ADMIN_KEY and
      LIEBIAN_SDK_TEST_SDK_KEY (keys of one tenant);
    - "fake": FakeLiebian, the in-memory stand-in (not the server);
    - "app": the real app in-process, through the `client` (TestClient) and `tenant` fixtures of
      tests/conftest.py; skipped while the app lacks one of APP_ROUTES.
    """
    if request.param == "live":
        assert LIVE_URL is not None
        admin_key = os.environ["LIEBIAN_SDK_TEST_ADMIN_KEY"]
        return Target("live", LIVE_URL, admin_key, os.environ["LIEBIAN_SDK_TEST_SDK_KEY"])
    if request.param == "app":
        pytest.importorskip("server.app", reason="the server package is not importable")
        test_client = request.getfixturevalue("client")
        paths = list(test_client.app.openapi_schema.paths or {})
        missing = [r for r in APP_ROUTES if not any(p.startswith(r) for p in paths)]
        if missing:
            pytest.skip(f"the app does not serve {', '.join(missing)} yet")
        keys = request.getfixturevalue("tenant")
        sync_transport = BorrowedTransport(test_client._transport)
        return Target(
            "app",
            str(test_client.base_url).rstrip("/"),
            keys.admin_key,
            keys.sdk_key,
            sync_transport=sync_transport,
            async_transport=ThreadedTransport(sync_transport),
        )
    fake = FakeLiebian(admin_key="admin_key_fake", sdk_key="sdk_key_fake")
    transport = httpx.MockTransport(fake)
    return Target(
        "fake",
        "https://fake.liebian.test",
        fake.admin_key,
        fake.sdk_key,
        sync_transport=transport,
        async_transport=transport,
        fake=fake,
    )
