"""Webhook pages: the tenant's endpoints, each one's recent deliveries and "retry now"."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromQuery, PathParameter
from litestar.response import Redirect, Template

from server.console.web import Console
from server.webhooks.deliveries import list_deliveries
from server.webhooks.retry import retry_delivery
from server.webhooks.service import get_endpoint, list_endpoints

__all__ = ["WebhookPages"]

EndpointIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
DeliveryIdPath = Annotated[int, PathParameter(ge=1, le=2**62)]
PAGE = 50


class WebhookPages(Controller):
    path = "/console/webhooks"

    @get()
    async def index(self, console: Console, cursor: FromQuery[str | None] = None) -> Template:
        found = await list_endpoints(console.db, console.tenant_id, PAGE, cursor)
        return console.page("webhooks.html", page_=found)

    @get("/{endpoint_id:str}")
    async def show(
        self, console: Console, endpoint_id: EndpointIdPath, cursor: FromQuery[str | None] = None
    ) -> Template:
        endpoint = await get_endpoint(console.db, console.tenant_id, endpoint_id)
        deliveries = await list_deliveries(console.db, console.tenant_id, endpoint_id, PAGE, cursor)
        return console.page(
            "webhook.html", endpoint=endpoint, endpoint_id=endpoint_id, page_=deliveries
        )

    @post("/{endpoint_id:str}/deliveries/{delivery_id:int}/retry", status_code=200)
    async def retry(
        self, console: Console, endpoint_id: EndpointIdPath, delivery_id: DeliveryIdPath
    ) -> Response[Any]:
        """Send it now (the same service as the API's retry route); htmx gets the row back."""
        await console.form()
        worker = console.request.app.state.webhook_worker  # its HTTP client and policy
        delivery = await retry_delivery(
            console.db, worker.client, worker.policy, console.tenant_id, endpoint_id, delivery_id
        )
        if console.request.headers.get("hx-request"):
            return console.page("_delivery_row.html", d=delivery, endpoint_id=endpoint_id)
        return Redirect(f"/console/webhooks/{endpoint_id}#delivery-{delivery_id}", status_code=303)
