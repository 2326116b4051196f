"""``GET /v1/distributors/{id}/ledger``: a distributor's ledger entries, newest first."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import FromQuery, QueryParameter

from server.dependencies import DISTRIBUTOR, KnownDistributor
from server.ledger.schemas import EntryPage
from server.ledger.service import list_entries
from server.responses import json_response

__all__ = ["LedgerController"]


class LedgerController(Controller):
    path = "/v1/distributors"
    tags = ["distributors"]
    opt = {"scope": "sdk"}
    dependencies = DISTRIBUTOR

    @get("/{distributor_id:str}/ledger", summary="Ledger entries, newest first, paged")
    async def ledger(
        self,
        distributor: KnownDistributor,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[EntryPage]:
        return json_response(await list_entries(*distributor, limit, cursor))
