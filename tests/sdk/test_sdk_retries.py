"""Retries: connection failures, timeouts, 429 and 5xx, with backoff or Retry-After; the same
Idempotency-Key on every attempt of one write; never a retry on other 4xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import liebian_sdk as sdk
import pytest
from liebian_sdk import _core
from sdk_testing import Recorder, Run

LINK = {"code": "Ab3", "scene": "c=Ab3", "url": "https://liebian.test/s/Ab3"}
OK = httpx.Response(200, json=LINK)


def create_link(client: object) -> object:
    return client.links.create("openid-alice")  # type: ignore[attr-defined]


def unavailable(retry_after: str | None = None, status: int = 503) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, json={"title": "busy", "status": status}, headers=headers)


def keys(recorder: Recorder) -> set[str]:
    return {request.headers["idempotency-key"] for request in recorder.requests}


def test_503_is_retried_with_the_same_idempotency_key(run: Run, recorder: Recorder) -> None:
    recorder.replies += [unavailable(), unavailable(), OK]

    link = run(recorder, create_link)

    assert isinstance(link, sdk.Link)
    assert len(recorder.requests) == 3 and len(keys(recorder)) == 1
    assert len(run.sleeps) == 2
    assert 0 <= run.sleeps[0] <= 0.5 and 0 <= run.sleeps[1] <= 1.0


def test_retry_after_seconds_is_honoured(run: Run, recorder: Recorder) -> None:
    recorder.replies += [unavailable("2"), OK]
    run(recorder, create_link)
    assert run.sleeps == [2.0]
    assert len(keys(recorder)) == 1


def test_429_retry_after_http_date_is_honoured(run: Run, recorder: Recorder) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    recorder.replies += [unavailable(when, status=429), OK]
    run(recorder, create_link)
    [delay] = run.sleeps
    assert 25 < delay <= 30


def test_429_until_retries_are_used_up(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(unavailable("1.5", status=429))
    with pytest.raises(sdk.RateLimitError) as info:
        run(recorder, create_link)
    assert info.value.retry_after == 1.5
    assert len(recorder.requests) == 3 and run.sleeps == [1.5, 1.5]
    assert len(keys(recorder)) == 1


def test_5xx_until_retries_are_used_up(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(unavailable(status=500))
    with pytest.raises(sdk.ServerError):
        run(recorder, create_link, max_retries=3)
    assert len(recorder.requests) == 4
    ceilings = [0.5, 1.0, 2.0]
    assert all(0 <= s <= c for s, c in zip(run.sleeps, ceilings, strict=True))


def test_a_long_retry_after_is_not_waited_for(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(unavailable("120", status=429))
    with pytest.raises(sdk.RateLimitError) as info:
        run(recorder, create_link)
    assert info.value.retry_after == 120
    assert len(recorder.requests) == 1 and run.sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(status: int, run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.Response(status, json={"title": "no", "status": status}))
    with pytest.raises(sdk.APIError) as info:
        run(recorder, create_link)
    assert info.value.status == status
    assert len(recorder.requests) == 1 and run.sleeps == []


def test_max_retries_zero_sends_once(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(unavailable())
    with pytest.raises(sdk.ServerError):
        run(recorder, create_link, max_retries=0)
    assert len(recorder.requests) == 1


def test_connection_error_is_retried_then_succeeds(run: Run, recorder: Recorder) -> None:
    recorder.replies += [httpx.ConnectError("refused"), httpx.ReadError("reset"), OK]
    assert isinstance(run(recorder, create_link), sdk.Link)
    assert len(recorder.requests) == 3 and len(keys(recorder)) == 1 and len(run.sleeps) == 2


def test_connection_errors_until_retries_are_used_up(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.ConnectError("refused"))
    with pytest.raises(sdk.APIConnectionError) as info:
        run(recorder, create_link)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert not isinstance(info.value, sdk.APITimeoutError)
    assert len(recorder.requests) == 3
    assert sdk.ConnectionError is sdk.APIConnectionError


def test_timeouts_raise_api_timeout_error(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.ReadTimeout("slow"))
    with pytest.raises(sdk.APITimeoutError):
        run(recorder, lambda c: c.distributors.get("openid-alice"))
    assert len(recorder.requests) == 3
    assert all("idempotency-key" not in r.headers for r in recorder.requests)


def test_unsupported_protocol_is_not_retried(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.UnsupportedProtocol("gopher"))
    with pytest.raises(sdk.APIConnectionError):
        run(recorder, create_link)
    assert len(recorder.requests) == 1


def test_backoff_is_capped_exponential_full_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_core.random, "uniform", lambda low, high: high)
    assert [_core.backoff(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    monkeypatch.setattr(_core.random, "uniform", lambda low, high: low)
    assert _core.backoff(3) == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.25", 0.25),
        ("-4", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 11 Nov 2024 10:00:30 GMT", 30.0),
        ("Wed, 11 Nov 2024 09:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2024, 11, 11, 10, tzinfo=UTC)
    assert _core.parse_retry_after(header, now=now) == seconds
