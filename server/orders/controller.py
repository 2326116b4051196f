"""``/v1/orders``: paid orders, refunds and explanations."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, PathParameter

from server.common import to_us
from server.db import Connection
from server.dependencies import CurrentProgram, Db, TenantId, Write
from server.idempotency import idempotency_key, request_hash
from server.orders.explain import explain_order
from server.orders.schemas import Explanation, OrderIn, OrderOut, RefundIn, RefundOut
from server.orders.service import record_order, record_refund
from server.responses import json_response

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
        self,
        request: Request[Any, Any, Any],
        db: Db,
        tenant_id: TenantId,
        program: CurrentProgram,
        data: JSONBody[OrderIn],
    ) -> Response[OrderOut]:
        key = idempotency_key(request)
        digest = request_hash(request.method, request.url.path, await request.body()) if key else ""
        result, replayed = await record_order(
            db, tenant_id, program, data, to_us(data.paid_at, "paid_at"), key, digest
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return json_response(result, status_code=201, headers=headers)

    @post(
        "/{order_id:str}/refunds",
        summary="Refund part or all of an order: reverses commission",
        status_code=201,
    )
    async def refund(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        order_id: OrderIdPath,
        data: JSONBody[RefundIn],
    ) -> Response[RefundOut]:
        async def work(tx: Connection) -> Response[RefundOut]:
            refund = await record_refund(tx, tenant_id, program, order_id, data)
            return json_response(refund, status_code=201)

        return await write.once(work)

    @get("/{order_id:str}/explain", summary="The bindings, upline snapshot, rates and arithmetic")
    async def explain(
        self, db: Db, tenant_id: TenantId, order_id: OrderIdPath
    ) -> Response[Explanation]:
        return json_response(await explain_order(db, tenant_id, order_id))
