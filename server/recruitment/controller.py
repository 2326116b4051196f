"""``/v1/distributors/{id}/application|approve|reject``: recruitment in the approval mode."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.params import JSONBody, PathParameter

from server.db import Connection
from server.dependencies import CurrentProgram, TenantId, Write
from server.recruitment import service
from server.recruitment.schemas import ApplicationIn, DecisionIn
from server.referrals.schemas import Distributor
from server.referrals.service import get_distributor
from server.responses import TenantWrite, json_response

__all__ = ["RecruitmentController"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class RecruitmentController(Controller):
    path = "/v1/distributors"
    tags = ["distributors"]

    @post(
        "/{distributor_id:str}/application",
        summary="A user applies to become a distributor (approval mode), with the form's fields",
        status_code=200,
        opt={"scope": "sdk"},
    )
    async def apply(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        distributor_id: IdPath,
        data: JSONBody[ApplicationIn],
    ) -> Response[Distributor]:
        async def work(tx: Connection) -> Response[Distributor]:
            await service.apply(tx, tenant_id, program, distributor_id, data)
            return json_response(await get_distributor(tx, tenant_id, distributor_id))

        return await write.once(work)

    @post(
        "/{distributor_id:str}/approve",
        summary="An operator approves a distributor (webhook distributor.approved)",
        status_code=200,
        opt={"scope": "admin"},
    )
    async def approve(self, write: Write, distributor_id: IdPath) -> Response[Distributor]:
        return await _decide(write, distributor_id, True, None)

    @post(
        "/{distributor_id:str}/reject",
        summary="An operator rejects an application with a reason (webhook distributor.rejected)",
        status_code=200,
        opt={"scope": "admin"},
    )
    async def reject(
        self, write: Write, distributor_id: IdPath, data: JSONBody[DecisionIn]
    ) -> Response[Distributor]:
        return await _decide(write, distributor_id, False, data)


async def _decide(
    write: TenantWrite, distributor_id: str, approve: bool, data: DecisionIn | None
) -> Response[Distributor]:
    tenant_id = write.tenant_id
    reason = None if data is None else data.reason

    async def work(tx: Connection) -> Response[Distributor]:
        await service.decide(tx, tenant_id, distributor_id, approve, reason)
        return json_response(await get_distributor(tx, tenant_id, distributor_id))

    return await write.once(work)
