"""``/v1/webhook-endpoints``: HTTP only; the rules are in :mod:`server.webhooks.endpoints`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from server.common import json_response
from server.db import Connection
from server.idempotency import run_idempotent
from server.webhooks.endpoints import (
    check_endpoint_url,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
    withhold_secret,
)
from server.webhooks.schemas import Endpoint, EndpointIn, EndpointPage

__all__ = ["WebhookController"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]


class WebhookController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]
    opt = {"scope": "admin"}

    @post(status_code=201, summary="Subscribe a URL to events; the signing secret is shown once")
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[EndpointIn]
    ) -> Response[Endpoint]:
        check_endpoint_url(data.url, request.app.state.settings.webhook_allow_private)
        tenant_id = request.auth.tenant_id

        async def work(tx: Connection) -> Response[bytes]:
            return json_response(await create_endpoint(tx, tenant_id, data), 201)

        db = request.app.state.db
        return await run_idempotent(request, db, tenant_id, work, stored=withhold_secret)  # type: ignore[return-value]

    @get(summary="The tenant's webhook endpoints, oldest first (without secrets)")
    async def list_all(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[EndpointPage]:
        page = await list_endpoints(request.app.state.db, request.auth.tenant_id, limit, cursor)
        return json_response(page)  # type: ignore[return-value]

    @get("/{endpoint_id:str}", summary="A webhook endpoint (without its secret)")
    async def read(
        self, request: Request[Any, Any, Any], endpoint_id: IdPath
    ) -> Response[Endpoint]:
        endpoint = await get_endpoint(request.app.state.db, request.auth.tenant_id, endpoint_id)
        return json_response(endpoint)  # type: ignore[return-value]

    @post(
        "/{endpoint_id:str}/rotate-secret",
        status_code=200,
        summary="Replace the signing secret; the new one is shown once",
    )
    async def rotate(
        self, request: Request[Any, Any, Any], endpoint_id: IdPath
    ) -> Response[Endpoint]:
        tenant_id = request.auth.tenant_id

        async def work(tx: Connection) -> Response[bytes]:
            return json_response(await rotate_secret(tx, tenant_id, endpoint_id))

        db = request.app.state.db
        return await run_idempotent(request, db, tenant_id, work, stored=withhold_secret)  # type: ignore[return-value]

    @delete("/{endpoint_id:str}", status_code=204, summary="Delete; its pending deliveries stop")
    async def remove(self, request: Request[Any, Any, Any], endpoint_id: IdPath) -> None:
        tenant_id = request.auth.tenant_id
        async with request.app.state.db.transaction() as tx:
            await delete_endpoint(tx, tenant_id, endpoint_id)
