"""Webhook pages: the tenant's endpoints and each one's recent deliveries with their status."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromQuery, PathParameter
from litestar.response import Template

from server.console.web import Console
from server.webhooks.deliveries import list_deliveries
from server.webhooks.service import get_endpoint, list_endpoints

__all__ = ["WebhookPages"]

EndpointIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
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
        return console.page("webhook.html", endpoint=endpoint, page_=deliveries)
