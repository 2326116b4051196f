"""Look-ups for support questions: a user's attribution history, the ``explain`` of an order."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from server.common import now_us
from server.console.web import Session, page
from server.dependencies import Db
from server.orders.explain import explain_order
from server.referrals.graph import upline_of
from server.referrals.history import attribution_history

__all__ = ["OrderPages", "UserPages"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]
Query = Annotated[str | None, QueryParameter(max_length=64)]
PAGE = 50


def _go(prefix: str, q: str) -> Response[Any]:
    return Redirect(f"{prefix}/{quote(q.strip(), safe='')}", status_code=303)


class UserPages(Controller):
    path = "/console/users"
    include_in_schema = False

    @get()
    async def find(
        self, request: Request[Any, Any, Any], session: Session, q: Query = None
    ) -> Response[Any]:
        if q and q.strip():
            return _go("/console/users", q)
        return page(request, "lookup.html", session)

    @get("/{user_id:str}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        session: Session,
        db: Db,
        user_id: IdPath,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        history = await attribution_history(db, session.tenant_id, user_id, PAGE, cursor)
        upline, _ = await upline_of(db, session.tenant_id, user_id, now_us(), depth=3)
        return page(request, "user.html", session, history=history, upline=upline)


class OrderPages(Controller):
    path = "/console/orders"
    include_in_schema = False

    @get()
    async def find(
        self, request: Request[Any, Any, Any], session: Session, q: Query = None
    ) -> Response[Any]:
        if q and q.strip():
            return _go("/console/orders", q)
        return page(request, "lookup.html", session)

    @get("/{order_id:str}")
    async def show(
        self, request: Request[Any, Any, Any], session: Session, db: Db, order_id: IdPath
    ) -> Template:
        explanation = await explain_order(db, session.tenant_id, order_id)
        return page(request, "order.html", session, x=explanation)
