"""The SDK against the real app's rate limit: it waits the app's Retry-After and retries, and
past its retries raises RateLimitError carrying the app's Retry-After and problem document.

The app's limiter clock is frozen, and the SDK's injected `sleep` advances it: the retry after
the wait lands in the next window, as it would in real time."""

from __future__ import annotations

import asyncio
from typing import Any

import liebian_sdk as sdk
import pytest
from sdk_testing import BorrowedTransport, ThreadedTransport

MINUTE = 41_000_000  # a minute of its own, far from real time: its counters start empty


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_apps_429_and_retry_after_are_honoured(kind, client, tenant, monkeypatch) -> None:
    assert tenant.put("/v1/program", {"rate_limit_per_minute": 2}).status_code == 200
    now = [(MINUTE + (kind == "async")) * 60 + 20.0]
    monkeypatch.setattr(client.app.state.rate_limits, "clock", lambda: now[0])
    sleeps: list[float] = []

    def advance(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    async def scenario() -> sdk.RateLimitError:
        sync_transport = BorrowedTransport(client._transport)
        url, key = str(client.base_url).rstrip("/"), tenant.sdk_key
        if kind == "sync":
            app: Any = sdk.Client(url, key, transport=sync_transport, sleep=advance)
            once: Any = sdk.Client(url, key, transport=sync_transport, max_retries=0)
        else:

            async def async_advance(seconds: float) -> None:
                advance(seconds)

            threaded = ThreadedTransport(sync_transport)
            app = sdk.AsyncClient(url, key, transport=threaded, sleep=async_advance)
            once = sdk.AsyncClient(url, key, transport=threaded, max_retries=0)

        async def call(c: Any) -> Any:
            result = c.program.get()
            return await result if asyncio.iscoroutine(result) else result

        for _ in range(3):  # the third is refused with Retry-After: 40, waited, then retried
            assert (await call(app)).bind_mode == "first"
        assert sleeps == [40.0]
        assert (await call(app)).bind_mode == "first"  # 2 of 2 in the new window
        with pytest.raises(sdk.RateLimitError) as info:
            await call(once)
        return info.value

    error = asyncio.run(scenario())
    assert error.status == 429
    assert error.retry_after == 60.0  # the new window has just begun
    assert error.type is not None and error.type.endswith("/rate-limited")
    assert error.detail is not None and "rate_limit_per_minute" in error.detail
