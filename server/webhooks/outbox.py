"""The webhook outbox: events are written in the transaction that causes them.

A row per (endpoint, event) is inserted next to the business write, so a crash or restart
between the write and the delivery loses nothing; :mod:`server.webhooks.delivery` sends them.
Event ids derive from what happened (``dedupe``), so a replayed write enqueues nothing new.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any, get_args

import msgspec

from server.coherence import ALL, register
from server.common import from_us, now_us
from server.db import Connection
from server.webhooks.schemas import EventType

__all__ = [
    "EVENT_TYPES",
    "endpoints_for",
    "enqueue_event",
    "event_envelope",
    "invalidate_endpoints",
]

# One list of event types: the schema's (endpoints may subscribe to exactly these).
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
ENDPOINT_CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, list[tuple[str, frozenset[str]]]]] = {}
_encoder = msgspec.json.Encoder()


def invalidate_endpoints(tenant_id: str, key: str = "") -> None:
    """This process's copy only; writers call ``publish_invalidation("webhook_endpoints", ...)``."""
    _cache.clear() if tenant_id == ALL else _cache.pop(tenant_id, None)


register("webhook_endpoints", invalidate_endpoints)


async def endpoints_for(db: Connection, tenant_id: str, event_type: str) -> list[str]:
    """Ids of the tenant's endpoints subscribed to ``event_type`` (cached briefly)."""
    hit = _cache.get(tenant_id)
    if hit is None or hit[0] < time.monotonic():
        rows = await db.fetch(
            "SELECT endpoint_id, events FROM webhook_endpoints WHERE tenant_id = $1", tenant_id
        )
        hit = (
            time.monotonic() + ENDPOINT_CACHE_SECONDS,
            [(r[0], frozenset(msgspec.json.decode(r[1]))) for r in rows],
        )
        _cache[tenant_id] = hit
    return [endpoint for endpoint, events in hit[1] if event_type in events]


def event_envelope(tenant_id: str, event_type: str, dedupe: str, data: Any) -> tuple[str, str]:
    """(event id, JSON payload) of an event."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{event_type}\x1f{dedupe}".encode()).hexdigest()
    event_id = f"evt_{digest[:24]}"
    payload = _encoder.encode(
        {
            "id": event_id,
            "type": event_type,
            "created_at": from_us(now_us()).isoformat(),
            "tenant_id": tenant_id,
            "data": data,
        }
    ).decode()
    return event_id, payload


async def enqueue_event(
    tx: Connection, tenant_id: str, event_type: str, dedupe: str, data: Any
) -> None:
    endpoints = await endpoints_for(tx, tenant_id, event_type)
    if not endpoints:
        return
    event_id, payload = event_envelope(tenant_id, event_type, dedupe, data)
    await write_outbox(tx, tenant_id, endpoints, event_id, event_type, payload, now_us())


async def write_outbox(
    tx: Connection,
    tenant_id: str,
    endpoints: Sequence[str],
    event_id: str,
    event_type: str,
    payload: str,
    now: int,
) -> None:
    """One outbox row per endpoint; a replayed event (same id) adds nothing."""
    await tx.executemany(
        "INSERT INTO webhook_outbox (tenant_id, endpoint_id, event_id, event_type, payload,"
        " attempts, next_attempt_at_us, last_error, created_at_us)"
        " VALUES ($1, $2, $3, $4, $5, 0, $6, '', $6)"
        " ON CONFLICT (tenant_id, endpoint_id, event_id) DO NOTHING",
        [(tenant_id, endpoint, event_id, event_type, payload, now) for endpoint in endpoints],
    )
