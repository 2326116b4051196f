"""``/v1/orders``: paid orders, refunds and explanations."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, PathParameter

from server.common import json_response, to_us
from server.db import Connection
from server.idempotency import idempotency_key, request_hash, run_idempotent
from server.orders.explain import explain_order
from server.orders.schemas import Explanation, OrderIn, OrderOut, RefundIn, RefundOut
from server.orders.service import record_order, record_refund
from server.program.service import get_program

__all__ = ["OrderController"]

OrderIdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]


class OrderController(Controller):
    path = "/v1/orders"
    tags = ["orders"]
    opt = {"scope": "sdk"}

    @post(
        summary="Report a paid order: credits the upline (replay-safe by order_id)", status_code=201
    )
    async def paid(
        self, request: Request[Any, Any, Any], data: JSONBody[OrderIn]
    ) -> Response[OrderOut]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        key = idempotency_key(request)
        digest = request_hash(request.method, request.url.path, await request.body()) if key else ""
        program = await get_program(db, tenant_id)
        result, replayed = await record_order(
            db, tenant_id, program, data, to_us(data.paid_at, "paid_at"), key, digest
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return json_response(result, status_code=201, headers=headers)  # type: ignore[return-value]

    @post(
        "/{order_id:str}/refunds",
        summary="Refund part or all of an order: reverses commission",
        status_code=201,
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        order_id: OrderIdPath,
        data: JSONBody[RefundIn],
    ) -> Response[RefundOut]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        program = await get_program(db, tenant_id)

        async def work(tx: Connection) -> Response[bytes]:
            return json_response(
                await record_refund(tx, tenant_id, program, order_id, data), status_code=201
            )

        return await run_idempotent(request, db, tenant_id, work)  # type: ignore[return-value]

    @get("/{order_id:str}/explain", summary="The bindings, upline snapshot, rates and arithmetic")
    async def explain(
        self, request: Request[Any, Any, Any], order_id: OrderIdPath
    ) -> Response[Explanation]:
        explanation = await explain_order(request.app.state.db, request.auth.tenant_id, order_id)
        return json_response(explanation)  # type: ignore[return-value]
