"""``PUT /v1/distributors/{id}/tier``: an operator sets a distributor's tier (the only demotion)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, put
from litestar.params import JSONBody, PathParameter

from server.db import Connection
from server.dependencies import CurrentProgram, TenantId, Write
from server.referrals.schemas import Distributor
from server.referrals.service import get_distributor, get_distributor_row
from server.responses import json_response
from server.tiers.service import set_tier

__all__ = ["TierController", "TierIn"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class TierIn(msgspec.Struct, forbid_unknown_fields=True):
    # A name from the program's tiers.
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class TierController(Controller):
    path = "/v1/distributors"
    tags = ["distributors"]
    opt = {"scope": "admin"}

    @put("/{distributor_id:str}/tier", summary="Set a distributor's tier (up or down), by name")
    async def set(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        distributor_id: IdPath,
        data: JSONBody[TierIn],
    ) -> Response[Distributor]:
        async def work(tx: Connection) -> Response[Distributor]:
            await get_distributor_row(tx, tenant_id, distributor_id)
            await set_tier(tx, tenant_id, program, distributor_id, data.name)
            return json_response(await get_distributor(tx, tenant_id, distributor_id))

        return await write.once(work)
