"""``/v1/webhook-endpoints``."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody

from server.common import from_us, json_response, new_id, now_us
from server.db import Connection
from server.errors import InvalidInput
from server.idempotency import run_idempotent
from server.webhooks.outbox import invalidate_endpoints

__all__ = ["WebhookController"]

EventType = Literal[
    "commission.created",
    "refund.reversed",
    "campaign.closed",
    "settlement.approved",
    "settlement.paid",
]


def _internal(host: str) -> bool:
    """Whether ``host`` names this machine or a private network (an IP literal or localhost).

    Names are checked as written: resolving them here would not stop DNS rebinding anyway.
    """
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global or ip.is_multicast


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]
    events: Annotated[list[EventType], msgspec.Meta(min_length=1)]


class Endpoint(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    created_at: str
    secret: str | None = None  # shown once, at creation


class EndpointList(msgspec.Struct):
    endpoints: list[Endpoint]


class WebhookController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]
    opt = {"scope": "admin"}

    @post(status_code=201, summary="Subscribe a URL to events; the signing secret is shown once")
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[EndpointIn]
    ) -> Response[Endpoint]:
        parts = urlsplit(data.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("url", "must be an absolute http(s) URL")
        if not request.app.state.settings.webhook_allow_private and _internal(parts.hostname):
            raise InvalidInput(
                "url",
                "points at a loopback, private or link-local address; use a public URL "
                "(LIEBIAN_WEBHOOK_ALLOW_PRIVATE=1 allows it for development)",
            )
        tenant_id = request.auth.tenant_id

        async def work(tx: Connection) -> Response[bytes]:
            endpoint_id = new_id("whe")
            secret = "whsec_" + secrets.token_urlsafe(24)
            now = now_us()
            events: list[str] = sorted(set(data.events))
            await tx.execute(
                "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, events, secret,"
                " created_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
                tenant_id,
                endpoint_id,
                data.url,
                msgspec.json.encode(events).decode(),
                secret,
                now,
            )
            invalidate_endpoints(tenant_id)
            return json_response(
                Endpoint(endpoint_id, data.url, events, from_us(now).isoformat(), secret), 201
            )

        return await run_idempotent(request, request.app.state.db, tenant_id, work)  # type: ignore[return-value]

    @get(summary="The tenant's webhook endpoints (without secrets)")
    async def list_endpoints(self, request: Request[Any, Any, Any]) -> Response[EndpointList]:
        rows = await request.app.state.db.fetch(
            "SELECT endpoint_id, url, events, created_at_us FROM webhook_endpoints"
            " WHERE tenant_id = $1 ORDER BY created_at_us",
            request.auth.tenant_id,
        )
        return json_response(
            EndpointList(
                [  # type: ignore[return-value]
                    Endpoint(r[0], r[1], msgspec.json.decode(r[2]), from_us(int(r[3])).isoformat())
                    for r in rows
                ]
            )
        )
