"""``/v1/webhook-endpoints``: HTTP only; the rules are in :mod:`server.webhooks.service`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from server.db import Connection
from server.dependencies import AppSettings, Db, TenantId, Write
from server.responses import json_response
from server.webhooks.deliveries import Delivery, DeliveryPage, list_deliveries
from server.webhooks.retry import retry_delivery
from server.webhooks.schemas import Endpoint, EndpointIn, EndpointPage
from server.webhooks.service import (
    check_endpoint_url,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
    withhold_secret,
)

__all__ = ["WebhookController"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
DeliveryIdPath = Annotated[int, PathParameter(ge=1, le=2**62)]


class WebhookController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["webhooks"]
    opt = {"scope": "admin"}

    @post(status_code=201, summary="Subscribe a URL to events; the signing secret is shown once")
    async def create(
        self,
        write: Write,
        tenant_id: TenantId,
        settings: AppSettings,
        data: JSONBody[EndpointIn],
    ) -> Response[Endpoint]:
        check_endpoint_url(data.url, settings.webhook_allow_private)

        async def work(tx: Connection) -> Response[Endpoint]:
            return json_response(await create_endpoint(tx, tenant_id, data), 201)

        return await write.once(work, stored=withhold_secret)

    @get(summary="The tenant's webhook endpoints, oldest first (without secrets)")
    async def list_all(
        self,
        db: Db,
        tenant_id: TenantId,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[EndpointPage]:
        return json_response(await list_endpoints(db, tenant_id, limit, cursor))

    @get("/{endpoint_id:str}", summary="A webhook endpoint (without its secret)")
    async def read(self, db: Db, tenant_id: TenantId, endpoint_id: IdPath) -> Response[Endpoint]:
        return json_response(await get_endpoint(db, tenant_id, endpoint_id))

    @post(
        "/{endpoint_id:str}/rotate-secret",
        status_code=200,
        summary="Replace the signing secret; the new one is shown once",
    )
    async def rotate(
        self, write: Write, tenant_id: TenantId, endpoint_id: IdPath
    ) -> Response[Endpoint]:
        async def work(tx: Connection) -> Response[Endpoint]:
            return json_response(await rotate_secret(tx, tenant_id, endpoint_id))

        return await write.once(work, stored=withhold_secret)

    @delete("/{endpoint_id:str}", status_code=204, summary="Delete; its pending deliveries stop")
    async def remove(self, db: Db, tenant_id: TenantId, endpoint_id: IdPath) -> None:
        await delete_endpoint(db, tenant_id, endpoint_id)

    @get("/{endpoint_id:str}/deliveries", summary="The endpoint's deliveries, newest first")
    async def deliveries(
        self,
        db: Db,
        tenant_id: TenantId,
        endpoint_id: IdPath,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[DeliveryPage]:
        return json_response(await list_deliveries(db, tenant_id, endpoint_id, limit, cursor))

    @post(
        "/{endpoint_id:str}/deliveries/{delivery_id:int}/retry",
        status_code=200,
        summary="Send a waiting or failed delivery now (409 if delivered or being sent)",
    )
    async def retry(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        tenant_id: TenantId,
        endpoint_id: IdPath,
        delivery_id: DeliveryIdPath,
    ) -> Response[Delivery]:
        worker = request.app.state.webhook_worker  # its HTTP client and delivery policy
        delivery = await retry_delivery(
            db, worker.client, worker.policy, tenant_id, endpoint_id, delivery_id
        )
        return json_response(delivery)
