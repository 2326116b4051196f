"""Webhook pages: the tenant's endpoints and each one's recent deliveries with their status."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromQuery, PathParameter
from litestar.response import Template

from server.console.web import Session, page
from server.dependencies import Db
from server.webhooks.deliveries import list_deliveries
from server.webhooks.service import get_endpoint, list_endpoints

__all__ = ["WebhookPages"]

EndpointIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
PAGE = 50


class WebhookPages(Controller):
    path = "/console/webhooks"
    include_in_schema = False

    @get()
    async def index(
        self,
        request: Request[Any, Any, Any],
        session: Session,
        db: Db,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        found = await list_endpoints(db, session.tenant_id, PAGE, cursor)
        return page(request, "webhooks.html", session, page_=found)

    @get("/{endpoint_id:str}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        session: Session,
        db: Db,
        endpoint_id: EndpointIdPath,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        endpoint = await get_endpoint(db, session.tenant_id, endpoint_id)
        deliveries = await list_deliveries(db, session.tenant_id, endpoint_id, PAGE, cursor)
        return page(request, "webhook.html", session, endpoint=endpoint, page_=deliveries)
