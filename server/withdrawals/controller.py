"""``/v1/distributors/{id}/withdrawals`` (sdk) and ``/v1/withdrawals`` (finance, admin)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from server.db import Connection
from server.dependencies import DISTRIBUTOR, CurrentProgram, Db, KnownDistributor, TenantId, Write
from server.errors import InvalidInput
from server.responses import json_response
from server.withdrawals import service
from server.withdrawals.export import Status, export_csv
from server.withdrawals.schemas import Decision, PaidIn, Withdrawal, WithdrawalIn, WithdrawalPage

__all__ = ["DistributorWithdrawalController", "WithdrawalController"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class DistributorWithdrawalController(Controller):
    path = "/v1/distributors"
    tags = ["withdrawals"]
    opt = {"scope": "sdk"}
    dependencies = DISTRIBUTOR

    @post(
        "/{distributor_id:str}/withdrawals",
        summary="提现: ask for an amount of the available balance (locks the entries at once)",
        status_code=201,
    )
    async def request(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        distributor_id: IdPath,
        data: JSONBody[WithdrawalIn],
    ) -> Response[Withdrawal]:
        async def work(tx: Connection) -> Response[Withdrawal]:
            result = await service.request_withdrawal(
                tx, tenant_id, program, distributor_id, data.amount_fen
            )
            return json_response(result, status_code=201)

        return await write.once(work)

    @get("/{distributor_id:str}/withdrawals", summary="A distributor's withdrawals, oldest first")
    async def list_own(
        self,
        distributor: KnownDistributor,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[WithdrawalPage]:
        db, tenant_id, distributor_id = distributor
        page = await service.list_withdrawals(db, tenant_id, None, distributor_id, limit, cursor)
        return json_response(page)


class WithdrawalController(Controller):
    path = "/v1/withdrawals"
    tags = ["withdrawals"]
    opt = {"scope": "admin"}

    @get(summary="Withdrawals, by status, oldest first (finance's queue)")
    async def list_all(
        self,
        db: Db,
        tenant_id: TenantId,
        status: FromQuery[Status | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[WithdrawalPage]:
        page = await service.list_withdrawals(db, tenant_id, status, None, limit, cursor)
        return json_response(page)

    @post("/approve", summary="Approve a batch of withdrawals (all or nothing)", status_code=200)
    async def approve(
        self, write: Write, tenant_id: TenantId, data: JSONBody[Decision]
    ) -> Response[WithdrawalPage]:

        async def work(tx: Connection) -> Response[WithdrawalPage]:
            done = await service.approve(tx, tenant_id, data.ids)
            return json_response(WithdrawalPage(withdrawals=done))

        return await write.once(work)

    @post("/reject", summary="Reject a batch with a reason: entries unlocked, fee returned",
          status_code=200)  # fmt: skip
    async def reject(
        self, write: Write, tenant_id: TenantId, data: JSONBody[Decision]
    ) -> Response[WithdrawalPage]:
        if data.reason is None:
            raise InvalidInput("reason", "say why the withdrawals are rejected (1-200 chars)")
        reason = data.reason

        async def work(tx: Connection) -> Response[WithdrawalPage]:
            done = await service.reject(tx, tenant_id, data.ids, reason)
            return json_response(WithdrawalPage(withdrawals=done))

        return await write.once(work)

    @post("/paid", summary="Mark approved withdrawals paid, with transfer references",
          status_code=200)  # fmt: skip
    async def paid(
        self, write: Write, tenant_id: TenantId, data: JSONBody[PaidIn]
    ) -> Response[WithdrawalPage]:

        async def work(tx: Connection) -> Response[WithdrawalPage]:
            done = await service.mark_paid(tx, tenant_id, data.references)
            return json_response(WithdrawalPage(withdrawals=done))

        return await write.once(work)

    @get(
        "/export.csv",
        summary="The withdrawals of a status as CSV (UTF-8 with BOM), for the payout rail",
        media_type="text/csv; charset=utf-8",
    )
    async def export(
        self, db: Db, tenant_id: TenantId, status: FromQuery[Status] = "approved"
    ) -> Stream:
        return Stream(
            export_csv(db, tenant_id, status),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="withdrawals-{status}.csv"'},
        )
