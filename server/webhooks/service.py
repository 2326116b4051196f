"""Webhook endpoints: create (URL checked by the outbound guard), read, page, rotate, delete.

The signing secret is returned by :func:`create_endpoint` and :func:`rotate_secret` only;
reads never carry it. Deleting an endpoint gives up its pending deliveries at once.
"""

from __future__ import annotations

import secrets

import msgspec

from server.coherence import publish_invalidation
from server.common import decode_cursor, encode_cursor, from_us, new_id, now_us
from server.db import Connection, Database, Row
from server.errors import InvalidInput, NotFound
from server.outbound import OutboundRefused, host_refusal, parse_url
from server.webhooks.schemas import Endpoint, EndpointIn, EndpointPage

__all__ = [
    "REPLAY_NOTE",
    "check_endpoint_url",
    "create_endpoint",
    "delete_endpoint",
    "get_endpoint",
    "list_endpoints",
    "rotate_secret",
    "withhold_secret",
]

NEVER_US = 2**62
REPLAY_NOTE = (
    "replayed response: the signing secret is shown only in the first response; "
    "POST /v1/webhook-endpoints/{id}/rotate-secret issues a new one"
)
_COLUMNS = "endpoint_id, url, events, created_at_us"


def check_endpoint_url(url: str, allow_private: bool) -> None:
    """Raise a 422 naming ``url`` unless the sender can parse it and may reach its host."""
    try:
        host = parse_url(url).raw_host.decode("ascii")
    except OutboundRefused as exc:
        raise InvalidInput("url", f"must be an absolute http(s) URL ({exc.detail})") from None
    refusal = host_refusal(host, allow_private)
    if refusal is not None:
        raise InvalidInput(
            "url",
            f"{refusal}; use a public host name or address "
            "(LIEBIAN_WEBHOOK_ALLOW_PRIVATE=1 allows internal ones for development)",
        )


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def _endpoint(row: Row, secret: str | None = None) -> Endpoint:
    events = msgspec.json.decode(row[2], type=list[str])
    return Endpoint(row[0], row[1], events, from_us(int(row[3])).isoformat(), secret)


async def create_endpoint(tx: Connection, tenant_id: str, data: EndpointIn) -> Endpoint:
    endpoint_id, secret, now = new_id("whe"), _new_secret(), now_us()
    events = sorted(set(data.events))
    await tx.execute(
        "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, events, secret,"
        " created_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
        tenant_id, endpoint_id, data.url, msgspec.json.encode(events).decode(), secret, now,
    )  # fmt: skip
    await publish_invalidation("webhook_endpoints", tenant_id, tx=tx)
    return Endpoint(endpoint_id, data.url, list(events), from_us(now).isoformat(), secret)


async def get_endpoint(db: Connection, tenant_id: str, endpoint_id: str) -> Endpoint:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2",
        tenant_id, endpoint_id,
    )  # fmt: skip
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
    return _endpoint(row)


async def list_endpoints(
    db: Connection, tenant_id: str, limit: int, cursor: str | None
) -> EndpointPage:
    """Oldest first (creation time, then id)."""
    after = decode_cursor(cursor, int, str) or [-1, ""]
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND"
        " (created_at_us > $2 OR (created_at_us = $2 AND endpoint_id > $3))"
        " ORDER BY created_at_us, endpoint_id LIMIT $4",
        tenant_id, int(after[0]), str(after[1]), limit + 1,
    )  # fmt: skip
    last = rows[limit - 1] if len(rows) > limit else None
    return EndpointPage(
        [_endpoint(r) for r in rows[:limit]],
        encode_cursor(int(last[3]), last[0]) if last is not None else None,
    )


async def rotate_secret(tx: Connection, tenant_id: str, endpoint_id: str) -> Endpoint:
    """A new signing secret, effective for every delivery sent from now on."""
    secret = _new_secret()
    row = await tx.fetchrow(
        "UPDATE webhook_endpoints SET secret = $3 WHERE tenant_id = $1 AND endpoint_id = $2"
        f" RETURNING {_COLUMNS}",
        tenant_id, endpoint_id, secret,
    )  # fmt: skip
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
    return _endpoint(row, secret)


async def delete_endpoint(db: Database, tenant_id: str, endpoint_id: str) -> None:
    """Delete the endpoint and give up its pending deliveries (an attempt in flight ends), in
    one transaction."""
    async with db.transaction() as tx:
        row = await tx.fetchrow(
            "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND endpoint_id = $2"
            " RETURNING endpoint_id",
            tenant_id, endpoint_id,
        )  # fmt: skip
        if row is None:
            raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
        await tx.execute(
            "UPDATE webhook_outbox SET next_attempt_at_us = $3,"
            " last_error = 'endpoint was deleted'"
            " WHERE tenant_id = $1 AND endpoint_id = $2 AND delivered_at_us IS NULL",
            tenant_id, endpoint_id, NEVER_US,
        )  # fmt: skip
        await publish_invalidation("webhook_endpoints", tenant_id, tx=tx)


def withhold_secret(body: bytes) -> bytes:
    """What the idempotency store keeps of a response carrying a secret: the endpoint without
    it and a note saying how to get a new one (the secret is never stored in clear)."""
    endpoint = msgspec.json.decode(body, type=Endpoint)
    if endpoint.secret is None:
        return body
    return msgspec.json.encode(msgspec.structs.replace(endpoint, secret=None, note=REPLAY_NOTE))
