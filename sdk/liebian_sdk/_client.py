"""`Client` and `AsyncClient`: one httpx connection pool each, the same resources on both.

Both send the `Call`s built in `_resources` through a runner that adds the per-call
Idempotency-Key, retries connection failures, 429 and 5xx with capped, fully jittered
exponential backoff (or the server's Retry-After), and turns problem documents into errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import uuid4

import httpx
import msgspec

from ._core import MAX_RETRY_AFTER, Async, Call, Sync, backoff, parse_retry_after
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    error_from_response,
)
from ._resources import (
    Campaigns,
    Distributors,
    Leaderboards,
    Links,
    Orders,
    Posters,
    ProgramResource,
    Referrals,
    Settlements,
    Webhooks,
    Withdrawals,
)
from ._version import __version__

__all__ = ["AsyncClient", "Client"]

T = TypeVar("T")

USER_AGENT = f"liebian-sdk/{__version__}"
# Failures after which the request may not have reached the app, or its answer was lost;
# writes are safe to resend because they carry the same Idempotency-Key.
_RETRYABLE_TRANSPORT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def _default_headers(api_key: str) -> dict[str, str]:
    if not api_key:
        raise ValueError("api_key is required")
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}


def _check_base_url(base_url: str) -> str:
    if not httpx.URL(base_url).is_absolute_url:
        raise ValueError(f"base_url must be an absolute http(s) URL, not {base_url!r}")
    return base_url


class _Runner:
    """The policy both runners share: request building, retry decisions, decoding."""

    __slots__ = ("_max_retries",)

    def __init__(self, max_retries: int) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._max_retries = max_retries

    @staticmethod
    def _build(http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        headers: dict[str, str] = {}
        if call.is_write:
            # Once per logical call: every retry of this request carries the same key.
            headers["Idempotency-Key"] = call.idempotency_key or str(uuid4())
        if call.body is not None:
            headers["Content-Type"] = call.content_type
        return http.build_request(
            call.method, call.path, params=call.params, content=call.body, headers=headers
        )

    def _delay_after_error(self, attempt: int, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying, or raise the connection error."""
        if attempt < self._max_retries and isinstance(exc, _RETRYABLE_TRANSPORT_ERRORS):
            return backoff(attempt)
        if isinstance(exc, httpx.TimeoutException):
            raise APITimeoutError(f"request timed out: {exc}") from exc
        raise APIConnectionError(f"connection failed: {exc!r}") from exc

    def _delay_after_response(self, attempt: int, response: httpx.Response) -> float:
        """Seconds to wait before retrying, or raise the error the response describes."""
        status = response.status_code
        retry_after = None
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt < self._max_retries:
                if retry_after is None:
                    return backoff(attempt)
                if retry_after <= MAX_RETRY_AFTER:
                    return retry_after
        raise error_from_response(response, retry_after)

    @staticmethod
    def _decode(call: Call[T], response: httpx.Response) -> T:
        try:
            return call.decode(response.content)
        except msgspec.DecodeError as exc:
            raise APIResponseValidationError(
                f"{call.method} {call.path}: unexpected response body: {exc}", response
            ) from exc


class _SyncRunner(_Runner):
    __slots__ = ("_http", "_sleep")

    def __init__(self, http: httpx.Client, max_retries: int, sleep: Callable[[float], None]):
        super().__init__(max_retries)
        self._http = http
        self._sleep = sleep

    def run(self, call: Call[T]) -> T:
        request = self._build(self._http, call)
        attempt = 0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._delay_after_error(attempt, exc)
            else:
                if response.is_success:
                    return self._decode(call, response)
                delay = self._delay_after_response(attempt, response)
            self._sleep(delay)
            attempt += 1


class _AsyncRunner(_Runner):
    __slots__ = ("_http", "_sleep")

    def __init__(
        self,
        http: httpx.AsyncClient,
        max_retries: int,
        sleep: Callable[[float], Awaitable[None]],
    ):
        super().__init__(max_retries)
        self._http = http
        self._sleep = sleep

    async def run(self, call: Call[T]) -> T:
        request = self._build(self._http, call)
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = self._delay_after_error(attempt, exc)
            else:
                if response.is_success:
                    return self._decode(call, response)
                delay = self._delay_after_response(attempt, response)
            await self._sleep(delay)
            attempt += 1


class Client:
    """Synchronous client of the Liebian API.

        with Client("https://api.example.com", api_key) as client:
            link = client.links.create("openid-alice")

    `timeout` is in seconds per request attempt; `max_retries` counts retries after the first
    attempt; `transport` is an optional httpx transport (tests: `httpx.MockTransport`);
    `sleep` waits between retries (tests inject a recorder). Thread-safe; reuse one client.
    """

    distributors: Distributors[Sync]
    links: Links[Sync]
    referrals: Referrals[Sync]
    orders: Orders[Sync]
    program: ProgramResource[Sync]
    campaigns: Campaigns[Sync]
    leaderboards: Leaderboards[Sync]
    posters: Posters[Sync]
    settlements: Settlements[Sync]
    withdrawals: Withdrawals[Sync]
    webhooks: Webhooks

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=_check_base_url(base_url),
            headers=_default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        runner = _SyncRunner(self._http, max_retries, sleep)
        self.distributors = Distributors(runner)
        self.links = Links(runner)
        self.referrals = Referrals(runner)
        self.orders = Orders(runner)
        self.program = ProgramResource(runner)
        self.campaigns = Campaigns(runner)
        self.leaderboards = Leaderboards(runner)
        self.posters = Posters(runner)
        self.settlements = Settlements(runner)
        self.withdrawals = Withdrawals(runner)
        self.webhooks = Webhooks()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"


class AsyncClient:
    """Asynchronous client of the Liebian API; the same resources as `Client`, awaited.

        async with AsyncClient("https://api.example.com", api_key) as client:
            link = await client.links.create("openid-alice")

    `sleep` defaults to `asyncio.sleep`; under trio pass `sleep=trio.sleep`.
    """

    distributors: Distributors[Async]
    links: Links[Async]
    referrals: Referrals[Async]
    orders: Orders[Async]
    program: ProgramResource[Async]
    campaigns: Campaigns[Async]
    leaderboards: Leaderboards[Async]
    posters: Posters[Async]
    settlements: Settlements[Async]
    withdrawals: Withdrawals[Async]
    webhooks: Webhooks

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=_check_base_url(base_url),
            headers=_default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        runner = _AsyncRunner(self._http, max_retries, sleep)
        self.distributors = Distributors(runner)
        self.links = Links(runner)
        self.referrals = Referrals(runner)
        self.orders = Orders(runner)
        self.program = ProgramResource(runner)
        self.campaigns = Campaigns(runner)
        self.leaderboards = Leaderboards(runner)
        self.posters = Posters(runner)
        self.settlements = Settlements(runner)
        self.withdrawals = Withdrawals(runner)
        self.webhooks = Webhooks()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"
