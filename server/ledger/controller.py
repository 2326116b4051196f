"""``GET /v1/distributors/{id}/ledger``: a distributor's ledger entries, newest first."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import FromQuery, PathParameter, QueryParameter

from server.dependencies import Db, TenantId
from server.ledger.schemas import EntryPage
from server.ledger.service import list_entries
from server.referrals.service import get_distributor_row
from server.responses import json_response

__all__ = ["LedgerController"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class LedgerController(Controller):
    path = "/v1/distributors"
    tags = ["distributors"]
    opt = {"scope": "sdk"}

    @get("/{distributor_id:str}/ledger", summary="Ledger entries, newest first, paged")
    async def ledger(
        self,
        db: Db,
        tenant_id: TenantId,
        distributor_id: IdPath,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[EntryPage]:
        await get_distributor_row(db, tenant_id, distributor_id)
        return json_response(await list_entries(db, tenant_id, distributor_id, limit, cursor))
