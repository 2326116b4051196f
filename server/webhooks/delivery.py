"""Delivering the outbox: signed POSTs, bounded, fair between tenants, every failure recorded.

Signature (docs/api.md): ``Liebian-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``.

Bounds (:class:`DeliveryPolicy`): one ``deadline`` per attempt covers DNS, connect, send and
reading the answer, in total; a 2xx status is a delivery and its body is never read; of any
other answer at most ``max_response_bytes`` are read raw for ``last_error`` (streamed, then the
connection is closed, so the transport reads at most one more socket read); at most
``concurrency`` attempts are in flight and at most ``per_tenant`` of one tenant, so a slow or
dead endpoint ties up its own tenant's slots only.

Fairness: due rows are ranked within their tenant and taken rank by rank (every tenant's first
row, then every tenant's second, ...), skipping tenants already at ``per_tenant``. A row is
claimed by a conditional UPDATE that pushes its next attempt past a lease and marks it in flight
(``lease_until_us``, cleared when the outcome is recorded), so several workers, or a worker and
an operator's "retry now" (:mod:`server.webhooks.retry`), never send the same delivery at once;
an outcome is recorded only by the claim that holds the lease. Every failure of any kind (a URL
the parser refuses, a refused address, DNS, reset, timeout, an HTTP status) is written on its
row (``last_error``, ``attempts``, ``next_attempt_at_us``) and ends at ``MAX_ATTEMPTS``; a
failing row never stops a round for the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx

from server.common import now_us
from server.db import Database
from server.outbound import (
    DEFAULT_PORTS,
    OutboundRefused,
    Resolver,
    parse_url,
    pin,
    resolve_public,
    system_resolver,
)

__all__ = [
    "MAX_ATTEMPTS",
    "Claimed",
    "DeliveryPolicy",
    "attempt",
    "deliver_due",
    "deliver_row",
    "sign",
    "with_targets",
]

_log = logging.getLogger("liebian.webhooks")
MAX_ATTEMPTS = 12
NEVER_US = 2**62
SECOND_US = 1_000_000


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are bounded; seconds and bytes. ``allow_private`` is for development."""

    allow_private: bool = False
    resolve: Resolver = field(default=system_resolver)
    deadline: float = 10.0
    max_response_bytes: int = 4096
    concurrency: int = 32
    per_tenant: int = 4

    @property
    def lease_us(self) -> int:
        """How long a claimed row is left alone: well past any attempt's deadline."""
        return max(60 * SECOND_US, int(self.deadline * 2 * SECOND_US))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_us(attempts: int) -> int:
    """Full-jitter exponential backoff: up to 2^n seconds, capped at one hour."""
    cap = min(2**attempts, 3600) * SECOND_US
    return SECOND_US + random.randrange(cap)  # noqa: S311 - jitter, not security


async def attempt(
    client: httpx.AsyncClient, url: str, secret: str, body: bytes, policy: DeliveryPolicy
) -> str | None:
    """POST ``body`` to ``url`` once; ``None`` on a 2xx, else why it failed. Never raises
    (but for cancellation): every error becomes the returned text."""
    deadline = asyncio.timeout(policy.deadline)
    started = time.monotonic()
    try:
        async with deadline:
            return await _post(client, url, secret, body, policy)
    except TimeoutError:
        return _timed_out(policy)
    except OutboundRefused as exc:
        return f"refused ({exc.reason}): {exc.detail}"
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row
        if deadline.expired() or time.monotonic() - started >= policy.deadline:
            # The deadline ended the attempt, but the transport reported it as its own error
            # (its cancellation, or the client's own timeout of the same length, reached
            # httpx mid-read: a ReadError): a timeout all the same.
            return _timed_out(policy)
        return f"{type(exc).__name__}: {exc}"


def _timed_out(policy: DeliveryPolicy) -> str:
    return f"timeout: no complete answer within {policy.deadline:g} s"


async def _post(
    client: httpx.AsyncClient, raw_url: str, secret: str, body: bytes, policy: DeliveryPolicy
) -> str | None:
    url = parse_url(raw_url)
    headers = {
        "Content-Type": "application/json",
        "Liebian-Signature": sign(secret, body, int(time.time())),
        "User-Agent": "liebian-webhooks/1",
        "Accept-Encoding": "identity",
    }
    extensions: dict[str, Any] = {}
    if not policy.allow_private:
        port = url.port or DEFAULT_PORTS[url.scheme]
        ip = await resolve_public(url.host, port, policy.resolve)
        url, host_header, extensions = pin(url, ip)
        headers.update(host_header)
    request = client.build_request("POST", url, content=body, headers=headers,
                                   extensions=extensions)  # fmt: skip
    response = await client.send(request, stream=True)
    kept = bytearray()
    try:
        if 200 <= response.status_code < 300:
            return None  # received: the body, whatever its size or pace, is not read
        async for chunk in response.aiter_raw():  # raw: no decompression (no gzip bomb)
            kept += chunk[: policy.max_response_bytes - len(kept)]
            if len(kept) >= policy.max_response_bytes:
                break
    except httpx.StreamConsumed:  # an in-memory answer (a test transport): already whole
        kept = bytearray(response.content[: policy.max_response_bytes])
    finally:
        await response.aclose()  # an unread rest is not drained: the connection is closed
    snippet = bytes(kept[:200]).decode("utf-8", "replace").strip()
    return f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")


# --------------------------------------------------------------------------- claiming


class Claimed(NamedTuple):
    id: int
    tenant_id: str
    endpoint_id: str
    payload: str
    attempts: int  # including the attempt about to be made
    url: str | None
    secret: str | None
    lease_until_us: int  # the claim's lease: its outcome is recorded only by this claim


_DUE = """
SELECT id, tenant_id FROM (
  SELECT id, tenant_id, next_attempt_at_us,
         ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY next_attempt_at_us, id) AS rank
  FROM webhook_outbox
  WHERE delivered_at_us IS NULL AND next_attempt_at_us <= $1 AND attempts < $2{tenant}
) due WHERE rank <= $3 ORDER BY rank, next_attempt_at_us, id LIMIT $4
"""


def _ids(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


async def give_up_abandoned(db: Database, now: int) -> None:
    """Rows whose last allowed attempt never reported (a crash mid-attempt): given up."""
    await db.execute(
        "UPDATE webhook_outbox SET next_attempt_at_us = $3, lease_until_us = NULL,"
        " last_error = 'gave up: the last attempt did not finish (worker stopped)'"
        " WHERE delivered_at_us IS NULL AND next_attempt_at_us <= $1 AND attempts >= $2",
        now, MAX_ATTEMPTS, NEVER_US,
    )  # fmt: skip


async def _due_rows(
    db: Database, now: int, policy: DeliveryPolicy, tenants: Sequence[str]
) -> list[tuple[int, str]]:
    """Due rows of every tenant (or of ``tenants``), each tenant's first ones first: the
    delivery loop's poll, a multi-shard read on Citus (server.sharding.MAINTENANCE)."""
    only = f" AND tenant_id IN ({_ids(5, len(tenants))})" if tenants else ""
    due = await db.fetch(_DUE.format(tenant=only), now, MAX_ATTEMPTS, policy.per_tenant,
                         policy.concurrency, *tenants)  # fmt: skip
    return [(int(r[0]), str(r[1])) for r in due]


def pick_fairly(
    due: Sequence[tuple[int, str]], free: int, in_flight: Counter[str], per_tenant: int
) -> list[int]:
    """Ids to claim from ``due`` (``(id, tenant)`` in round-robin order: every tenant's first
    row, then every tenant's second, ...): at most ``free``, a tenant at most ``per_tenant``
    counting what it already has in flight."""
    taken: Counter[str] = Counter()
    chosen: list[int] = []
    for row_id, tenant in due:
        if len(chosen) >= free:
            break
        if in_flight[tenant] + taken[tenant] < per_tenant:
            taken[tenant] += 1
            chosen.append(row_id)
    return chosen


async def claim(
    db: Database,
    now: int,
    policy: DeliveryPolicy,
    free: int,
    in_flight: Counter[str],
    tenants: Sequence[str] = (),
) -> list[Claimed]:
    """Claim up to ``free`` due rows (of ``tenants`` if given), fairly between tenants
    (module docstring), and return them (url and secret ``None`` for an endpoint that no
    longer exists)."""
    if free <= 0:
        return []
    ranked = await _due_rows(db, now, policy, tenants)
    chosen = pick_fairly(ranked, free, in_flight, policy.per_tenant)
    if not chosen:
        return []
    lease = now + policy.lease_us
    # Claimed per tenant: each statement stays on one tenant's shard (Citus).
    tenant_of = dict(ranked)
    by_tenant: dict[str, list[int]] = {}
    for row_id in chosen:
        by_tenant.setdefault(tenant_of[row_id], []).append(row_id)
    claimed: list[Any] = []
    for tenant, ids in by_tenant.items():
        claimed.extend(await db.fetch(
            "UPDATE webhook_outbox SET next_attempt_at_us = $2, lease_until_us = $2,"
            " attempts = attempts + 1 WHERE tenant_id = $3 AND delivered_at_us IS NULL"
            f" AND next_attempt_at_us <= $1 AND id IN ({_ids(4, len(ids))})"
            " RETURNING id, tenant_id, endpoint_id, payload, attempts",
            now, lease, tenant, *ids,
        ))  # fmt: skip
    return await with_targets(db, claimed, lease)


async def with_targets(db: Database, claimed: Sequence[Any], lease: int) -> list[Claimed]:
    """Claimed rows (id, tenant, endpoint, payload, attempts) with their endpoint's url and
    secret (``None`` for an endpoint that no longer exists)."""
    if not claimed:
        return []
    by_tenant: dict[str, list[int]] = {}
    for c in claimed:
        by_tenant.setdefault(str(c[1]), []).append(int(c[0]))
    targets: dict[int, tuple[Any, Any]] = {}
    for tenant, ids in by_tenant.items():  # one tenant's shard per statement (Citus)
        for r in await db.fetch(
            "SELECT o.id, e.url, e.secret FROM webhook_outbox o JOIN webhook_endpoints e"
            " ON e.tenant_id = o.tenant_id AND e.endpoint_id = o.endpoint_id"
            f" WHERE o.tenant_id = $1 AND o.id IN ({_ids(2, len(ids))})",
            tenant, *ids,
        ):  # fmt: skip
            targets[int(r[0])] = (r[1], r[2])
    return [
        Claimed(
            int(c[0]), c[1], c[2], c[3], int(c[4]), *targets.get(int(c[0]), (None, None)), lease
        )
        for c in claimed
    ]


async def deliver_row(
    db: Database, client: httpx.AsyncClient, row: Claimed, policy: DeliveryPolicy
) -> bool:
    """Attempt one claimed row and record the outcome on it; True if delivered."""
    row_id, attempts, url, secret = row.id, row.attempts, row.url, row.secret
    if url is None or secret is None:
        error: str | None = "endpoint was deleted"
    else:
        error = await attempt(client, url, secret, row.payload.encode(), policy)
    try:
        if error is None:
            await db.execute(
                "UPDATE webhook_outbox SET delivered_at_us = $3, last_error = '',"
                " lease_until_us = NULL WHERE tenant_id = $4 AND id = $1 AND lease_until_us = $2",
                row_id, row.lease_until_us, now_us(), row.tenant_id,
            )  # fmt: skip
            return True
        give_up = url is None or int(attempts) >= MAX_ATTEMPTS
        await db.execute(
            "UPDATE webhook_outbox SET next_attempt_at_us = $3, last_error = $4,"
            " lease_until_us = NULL WHERE tenant_id = $5 AND id = $1 AND lease_until_us = $2",
            row_id, row.lease_until_us,
            NEVER_US if give_up else now_us() + backoff_us(int(attempts)), error[:500],
            row.tenant_id,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - the lease brings the row back; others carry on
        _log.exception("recording webhook delivery %s failed", row_id)
    return False


async def deliver_due(
    db: Database,
    client: httpx.AsyncClient,
    *,
    at_us: int | None = None,
    tenant_id: str | None = None,
    policy: DeliveryPolicy | None = None,
) -> int:
    """One round: claim what is due at ``at_us`` (of one tenant if given) within the policy's
    bounds, attempt it all, and return how many were delivered. Each row is recorded as soon
    as its own attempt ends. The background :class:`~server.webhooks.worker.WebhookWorker`
    does the same continuously, refilling slots as attempts end."""
    policy = policy or DeliveryPolicy()
    now = now_us() if at_us is None else at_us
    await give_up_abandoned(db, now)
    tenants = (tenant_id,) if tenant_id else ()
    rows = await claim(db, now, policy, policy.concurrency, Counter(), tenants)
    results = await asyncio.gather(*(deliver_row(db, client, row, policy) for row in rows))
    return sum(results)
