"""Fixtures of the SDK tests (helpers in sdk_testing.py, the in-memory fake in fake_liebian.py)."""

from __future__ import annotations

import os

import httpx
import pytest
from fake_liebian import FakeLiebian
from sdk_testing import Recorder, Run, Target


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Run:
    """Parametrises a test over `Client` and `AsyncClient`."""
    return Run(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def target() -> Target:
    """The live server named by LIEBIAN_SDK_TEST_BASE_URL (with LIEBIAN_SDK_TEST_ADMIN_KEY and
    LIEBIAN_SDK_TEST_SDK_KEY, keys of one tenant); else FakeLiebian, the in-memory stand-in."""
    base_url = os.environ.get("LIEBIAN_SDK_TEST_BASE_URL")
    if base_url:
        return Target(
            base_url,
            os.environ["LIEBIAN_SDK_TEST_ADMIN_KEY"],
            os.environ["LIEBIAN_SDK_TEST_SDK_KEY"],
        )
    fake = FakeLiebian(admin_key="admin_key_fake", sdk_key="sdk_key_fake")
    return Target(
        "https://fake.liebian.test",
        fake.admin_key,
        fake.sdk_key,
        transport=httpx.MockTransport(fake),
        fake=fake,
    )
