"""Helpers of the SDK tests: a recording MockTransport (canned replies, for what the real app
cannot show), a runner of one scenario on both clients, and the real API a scenario runs
against (`Target`), whose clients note every method called in `EXERCISED`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from liebian_sdk import AsyncClient, Client

EXERCISED: set[str] = set()  # "resource.method" of every SDK call made against a real API
BASE_URL = "https://liebian.test"
API_KEY = "sk_test_123"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


async def done(value: Any) -> Any:
    """What a call returned: awaited on the async client, as is on the sync one."""
    return await value if inspect.isawaitable(value) else value


async def close(client: Client | AsyncClient) -> None:
    if isinstance(client, AsyncClient):
        await client.aclose()
    else:
        client.close()


@dataclass
class Recorder:
    """A MockTransport handler that replays canned replies and records every request."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        # A fresh copy: a Response's stream belongs to the first client that reads it.
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@dataclass
class Run:
    """Runs `scenario(client)` on a `Client` or an `AsyncClient` over a transport.

    The scenario is written once: on the async client each API call returns a coroutine, which
    `Run.call` awaits. `sleeps` records the retry delays instead of sleeping.
    """

    kind: str
    sleeps: list[float] = field(default_factory=list)

    def __call__(
        self,
        handler: Callable[[httpx.Request], httpx.Response],
        scenario: Callable[[Any], Any],
        **options: Any,
    ) -> Any:
        transport = httpx.MockTransport(handler)
        if self.kind == "sync":
            with Client(
                BASE_URL, API_KEY, transport=transport, sleep=self.sleeps.append, **options
            ) as client:
                return scenario(client)

        async def record_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        async def main() -> Any:
            async with AsyncClient(
                BASE_URL, API_KEY, transport=transport, sleep=record_sleep, **options
            ) as client:
                result = scenario(client)
                return await result if isinstance(result, Awaitable) else result

        return asyncio.run(main())


@dataclass
class Target:
    """A real API to run scenarios against: its URL, an admin and an sdk key of one tenant, and
    the transports that reach it (None: the network)."""

    name: str
    base_url: str
    admin_key: str
    sdk_key: str
    sync_transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None
    webhook_secret: str = "whsec_test"

    def client(self, kind: str, key: str) -> Client | AsyncClient:
        client: Client | AsyncClient
        if kind == "sync":
            client = Client(self.base_url, key, transport=self.sync_transport)
        else:
            client = AsyncClient(self.base_url, key, transport=self.async_transport)
        for name, resource in public_resources(client).items():
            setattr(client, name, _Noted(resource, name))
        return client


def public_resources(client: Client | AsyncClient) -> dict[str, Any]:
    return {name: value for name, value in vars(client).items() if not name.startswith("_")}


def public_methods(client: Client | AsyncClient) -> set[str]:
    """``resource.method`` for every public method of the client's resources."""
    return {
        f"{name}.{attr}"
        for name, resource in public_resources(client).items()
        for attr in dir(type(resource))
        if not attr.startswith("_") and callable(getattr(resource, attr))
    }


class _Noted:
    """A client's resource whose method calls are noted in EXERCISED."""

    def __init__(self, resource: Any, name: str) -> None:
        self._resource, self._name = resource, name

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self._resource, attr)
        if attr.startswith("_") or not callable(method):
            return method

        def noted(*args: Any, **kwargs: Any) -> Any:
            EXERCISED.add(f"{self._name}.{attr}")
            return method(*args, **kwargs)

        return noted


class BorrowedTransport(httpx.BaseTransport):
    """Another client's transport (the app's TestClient's), used but not closed: its owner
    closes it."""

    def __init__(self, owned: httpx.BaseTransport) -> None:
        self._owned = owned

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._owned.handle_request(request)


class ThreadedTransport(httpx.AsyncBaseTransport):
    """Lets an AsyncClient use a sync transport (the app's TestClient transport, whose event
    loop runs in its own thread) by calling it from a worker thread."""

    def __init__(self, sync: httpx.BaseTransport) -> None:
        self._sync = sync

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await asyncio.to_thread(self._sync.handle_request, request)
        content = await asyncio.to_thread(response.read)
        return httpx.Response(response.status_code, headers=response.headers, content=content)
