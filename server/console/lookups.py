"""Look-ups for support questions: a user's attribution history, the ``explain`` of an order."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Response, get
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from server.common import now_us
from server.console.web import Console, ConsoleCall
from server.orders.explain import explain_order
from server.referrals.graph import upline_of
from server.referrals.history import attribution_history

__all__ = ["OrderPages", "UserPages"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]
Query = Annotated[str | None, QueryParameter(max_length=64)]
PAGE = 50


def _find(console: ConsoleCall, prefix: str, q: str | None) -> Response[Any]:
    """The search box: an id goes straight to its page (``prefix/id``), none shows the box."""
    if q and q.strip():
        return Redirect(f"{prefix}/{quote(q.strip(), safe='')}", status_code=303)
    return console.page("lookup.html")


class UserPages(Controller):
    path = "/console/users"

    @get()
    async def find(self, console: Console, q: Query = None) -> Response[Any]:
        return _find(console, "/console/users", q)

    @get("/{user_id:str}")
    async def show(
        self, console: Console, user_id: IdPath, cursor: FromQuery[str | None] = None
    ) -> Template:
        history = await attribution_history(console.db, console.tenant_id, user_id, PAGE, cursor)
        upline, _ = await upline_of(console.db, console.tenant_id, user_id, now_us(), depth=3)
        return console.page("user.html", history=history, upline=upline)


class OrderPages(Controller):
    path = "/console/orders"

    @get()
    async def find(self, console: Console, q: Query = None) -> Response[Any]:
        return _find(console, "/console/orders", q)

    @get("/{order_id:str}")
    async def show(self, console: Console, order_id: IdPath) -> Template:
        explanation = await explain_order(console.db, console.tenant_id, order_id)
        return console.page("order.html", x=explanation)
