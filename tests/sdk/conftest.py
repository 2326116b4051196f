"""Fixtures of the SDK tests (helpers in sdk_testing.py).

Every end-to-end test runs against the real app (`target`); canned replies (`Recorder`) only
show what the app cannot: retries, timeouts, malformed or unexpected responses.
"""

from __future__ import annotations

import os

import pytest
from sdk_testing import BorrowedTransport, Recorder, Run, Target, ThreadedTransport


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Run:
    """Parametrises a test over `Client` and `AsyncClient`."""
    return Run(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


LIVE_URL = os.environ.get("LIEBIAN_SDK_TEST_BASE_URL")


@pytest.fixture(params=["live"] if LIVE_URL else ["app"])
def target(request: pytest.FixtureRequest) -> Target:
    """The API end-to-end tests run against: never a stand-in.

    - "app": the real app in-process (on the engine of this pass: SQLite, or PostgreSQL in the
      PostgreSQL pass), through the `client` (TestClient) and `tenant` fixtures of
      tests/conftest.py;
    - "live": the server at LIEBIAN_SDK_TEST_BASE_URL, with LIEBIAN_SDK_TEST_ADMIN_KEY and
      LIEBIAN_SDK_TEST_SDK_KEY (keys of one tenant).
    """
    if request.param == "live":
        assert LIVE_URL is not None
        admin_key = os.environ["LIEBIAN_SDK_TEST_ADMIN_KEY"]
        return Target("live", LIVE_URL, admin_key, os.environ["LIEBIAN_SDK_TEST_SDK_KEY"])
    test_client = request.getfixturevalue("client")
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


# The test that every public SDK method reached the real app runs last, and only judges a run
# that selected every test using the real app (see test_sdk_real_app.py).
COVERAGE_TEST = "test_every_public_method_reaches_the_real_app"
APP_FIXTURES = {"target", "app_target"}
_all_app_tests = pytest.StashKey[set[str]]()
_selected_app_tests = pytest.StashKey[set[str]]()


def _app_tests(items: list[pytest.Item]) -> set[str]:
    return {item.nodeid for item in items
            if APP_FIXTURES & set(getattr(item, "fixturenames", ()))}  # fmt: skip


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_all_app_tests] = _app_tests(items)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_selected_app_tests] = _app_tests(session.items)
    last = [item for item in session.items if item.originalname == COVERAGE_TEST]
    session.items[:] = [item for item in session.items if item not in last] + last


@pytest.fixture
def whole_app_suite_selected(request: pytest.FixtureRequest) -> bool:
    stash = request.config.stash
    return stash.get(_all_app_tests, set()) <= stash.get(_selected_app_tests, set())
