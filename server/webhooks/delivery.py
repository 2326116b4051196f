"""Delivering the outbox: signed POSTs, retried with capped exponential backoff and jitter.

Signature (docs/api.md): ``Liebian-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``.
Rows are claimed by pushing their next attempt past a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so several workers never send the same delivery at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from server.common import now_us
from server.db import Database

__all__ = ["WebhookWorker", "deliver_due", "sign"]

_log = logging.getLogger("liebian.webhooks")
LEASE_US = 60_000_000
MAX_ATTEMPTS = 12
NEVER_US = 2**62
SECOND_US = 1_000_000


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_us(attempts: int) -> int:
    """Full-jitter exponential backoff: up to 2^n seconds, capped at one hour."""
    cap = min(2**attempts, 3600) * SECOND_US
    return SECOND_US + random.randrange(cap)  # noqa: S311 - jitter, not security


_CLAIM = """
UPDATE webhook_outbox SET next_attempt_at_us = $1 + {lease}, attempts = attempts + 1
WHERE id IN (SELECT id FROM webhook_outbox
             WHERE delivered_at_us IS NULL AND next_attempt_at_us <= $1{tenant}
             ORDER BY next_attempt_at_us LIMIT $2{skip})
RETURNING id, tenant_id, endpoint_id, payload, attempts
"""


async def deliver_due(
    db: Database,
    client: httpx.AsyncClient,
    *,
    at_us: int | None = None,
    batch: int = 50,
    tenant_id: str | None = None,
    resolve: Resolver | None = None,
) -> int:
    """Send the deliveries due at ``at_us`` (one batch; of one tenant if given); return how
    many succeeded. With ``resolve``, each host is resolved and checked before sending."""
    now = now_us() if at_us is None else at_us
    skip = " FOR UPDATE SKIP LOCKED" if db.engine == "postgres" else ""
    sql = _CLAIM.format(
        lease=LEASE_US, skip=skip, tenant=" AND tenant_id = $3" if tenant_id else ""
    )
    claimed = await db.fetch(sql, now, batch, *([tenant_id] if tenant_id else []))
    if not claimed:
        return 0
    targets = {
        r[0]: (r[1], r[2])
        for r in await db.fetch(
            "SELECT endpoint_id, url, secret FROM webhook_endpoints WHERE endpoint_id IN ("
            + ", ".join(f"${n}" for n in range(1, len({c[2] for c in claimed}) + 1))
            + ")",
            *sorted({c[2] for c in claimed}),
        )
    }
    results = await asyncio.gather(
        *(_send(client, row, targets.get(row[2]), resolve) for row in claimed)
    )
    for row, error in zip(claimed, results, strict=True):
        if error is None:
            await db.execute(
                "UPDATE webhook_outbox SET delivered_at_us = $2, last_error = '' WHERE id = $1",
                row[0],
                now_us(),
            )
        else:
            give_up = int(row[4]) >= MAX_ATTEMPTS
            await db.execute(
                "UPDATE webhook_outbox SET next_attempt_at_us = $2, last_error = $3 WHERE id = $1",
                row[0],
                NEVER_US if give_up else now + backoff_us(int(row[4])),
                error[:500],
            )
    return sum(1 for e in results if e is None)


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _pin(url: httpx.URL, resolve: Resolver) -> tuple[httpx.URL, dict[str, Any], str | None]:
    """Resolve the endpoint's host once, refuse internal addresses, and aim the request at the
    checked address (Host header and TLS name kept), so DNS cannot change it in between."""
    host = url.host
    try:
        ipaddress.ip_address(host)
        answers = [host]
    except ValueError:
        try:
            answers = await resolve(host, url.port or (443 if url.scheme == "https" else 80))
        except OSError as exc:
            return url, {}, f"DNS: {host}: {exc}"
    for answer in answers:
        ip = ipaddress.ip_address(answer.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return url, {}, f"refused: {host} resolves to the internal address {ip}"
    if not answers:
        return url, {}, f"DNS: {host}: no addresses"
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return url.copy_with(host=answers[0]), extensions, None


async def _send(
    client: httpx.AsyncClient,
    row: Any,
    target: tuple[str, str] | None,
    resolve: Resolver | None,
) -> str | None:
    if target is None:
        return "endpoint was deleted"
    url, secret = target
    body = row[3].encode()
    headers = {
        "Content-Type": "application/json",
        "Liebian-Signature": sign(secret, body, int(time.time())),
        "User-Agent": "liebian-webhooks/1",
    }
    request_url = httpx.URL(url)
    extensions: dict[str, Any] = {}
    if resolve is not None:
        headers["Host"] = request_url.netloc.decode("ascii")
        request_url, extensions, refusal = await _pin(request_url, resolve)
        if refusal is not None:
            return refusal
    try:
        response = await client.post(
            request_url, content=body, headers=headers, extensions=extensions
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


class WebhookWorker:
    """A background task of the app: polls the outbox and delivers."""

    def __init__(
        self,
        db: Database,
        client: httpx.AsyncClient,
        interval: float = 1.0,
        allow_private: bool = False,
    ) -> None:
        self.db = db
        self.client = client
        self.interval = interval
        # Outside development, every delivery resolves and checks its host (see _pin).
        self.resolve: Resolver | None = None if allow_private else _system_resolver
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                while await deliver_due(self.db, self.client, resolve=self.resolve):
                    pass
            except Exception:  # noqa: BLE001 - keep delivering after a transient failure
                _log.exception("webhook delivery round failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liebian-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
