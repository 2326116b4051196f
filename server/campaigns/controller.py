"""``/v1/campaigns``: campaigns, leaderboards and closing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from server.campaigns.leaderboard import own_rank, top_entries
from server.campaigns.schemas import (
    Campaign,
    CampaignIn,
    CampaignPage,
    CloseOut,
    Leaderboard,
    OwnRank,
    Period,
)
from server.campaigns.service import (
    close_campaign,
    create_campaign,
    get_campaign,
    list_campaigns,
)
from server.common import AwareDatetime, json_response
from server.db import Connection
from server.idempotency import run_idempotent
from server.program.service import get_program

__all__ = ["CampaignController"]

CampaignIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
DistributorIdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]

    @post(
        opt={"scope": "admin"},
        summary="Create a campaign (leaderboard, TOP-N prizes, red packets)",
        status_code=201,
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[CampaignIn]
    ) -> Response[Campaign]:
        tenant_id = request.auth.tenant_id

        async def work(tx: Connection) -> Response[bytes]:
            return json_response(await create_campaign(tx, tenant_id, data), status_code=201)

        return await run_idempotent(request, request.app.state.db, tenant_id, work)  # type: ignore[return-value]

    @get(opt={"scope": "sdk"}, summary="Campaigns, newest first, optionally by status")
    async def list_all(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[Literal["open", "closed"] | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[CampaignPage]:
        page = await list_campaigns(
            request.app.state.db, request.auth.tenant_id, status, limit, cursor
        )
        return json_response(page)  # type: ignore[return-value]

    @get(
        "/{campaign_id:str}",
        opt={"scope": "sdk"},
        summary="A campaign, its red-packet budget and awards",
    )
    async def read(
        self, request: Request[Any, Any, Any], campaign_id: CampaignIdPath
    ) -> Response[Campaign]:
        campaign = await get_campaign(request.app.state.db, request.auth.tenant_id, campaign_id)
        return json_response(campaign)  # type: ignore[return-value]

    @get("/{campaign_id:str}/leaderboard", opt={"scope": "sdk"}, summary="Top K of a period")
    async def leaderboard(
        self,
        request: Request[Any, Any, Any],
        campaign_id: CampaignIdPath,
        period: FromQuery[Period] = "campaign",
        at: FromQuery[AwareDatetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> Response[Leaderboard]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        program = await get_program(db, tenant_id)
        board = await top_entries(
            db, request.app.state.board, tenant_id, program, campaign_id, period, at, limit
        )
        return json_response(board)  # type: ignore[return-value]

    @get(
        "/{campaign_id:str}/leaderboard/{distributor_id:str}",
        opt={"scope": "sdk"},
        summary="A distributor's rank and the neighbours above and below",
    )
    async def rank(
        self,
        request: Request[Any, Any, Any],
        campaign_id: CampaignIdPath,
        distributor_id: DistributorIdPath,
        period: FromQuery[Period] = "campaign",
        at: FromQuery[AwareDatetime | None] = None,
        around: Annotated[int, QueryParameter(ge=0, le=50)] = 3,
    ) -> Response[OwnRank]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        program = await get_program(db, tenant_id)
        result = await own_rank(
            db,
            request.app.state.board,
            tenant_id,
            program,
            campaign_id,
            distributor_id,
            period,
            at,
            around,
        )
        return json_response(result)  # type: ignore[return-value]

    @post(
        "/{campaign_id:str}/close",
        opt={"scope": "admin"},
        status_code=200,
        summary="Close: award TOP-N prizes and pool splits, exactly once",
    )
    async def close(
        self, request: Request[Any, Any, Any], campaign_id: CampaignIdPath
    ) -> Response[CloseOut]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        program = await get_program(db, tenant_id)

        async def work(tx: Connection) -> Response[bytes]:
            awards = await close_campaign(tx, tenant_id, program, campaign_id)
            return json_response(CloseOut(campaign_id=campaign_id, awards=awards))

        return await run_idempotent(request, db, tenant_id, work)  # type: ignore[return-value]
