"""``/v1/campaigns``: campaigns, leaderboards and closing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter, SkipValidation

from server.campaigns.leaderboard import Leaderboards
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
from server.common import AwareDatetime
from server.db import Connection
from server.dependencies import CurrentProgram, Db, TenantId, Write
from server.responses import json_response

__all__ = ["CampaignController"]


def provide_boards(
    request: Request[Any, Any, Any], db: Db, tenant_id: TenantId, program: CurrentProgram
) -> Leaderboards:
    # Not Litestar's ``state`` parameter: that builds a copy of the app state per request.
    return Leaderboards(db, request.app.state.board, tenant_id, program)


# ``boards: Boards``: the tenant's leaderboards (CampaignController's own dependency).
Boards = NamedDependency[SkipValidation[Leaderboards]]

CampaignIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
DistributorIdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @post(
        opt={"scope": "admin"},
        summary="Create a campaign (leaderboard, TOP-N prizes, red packets)",
        status_code=201,
    )
    async def create(
        self,
        write: Write,
        tenant_id: TenantId,
        data: JSONBody[CampaignIn],
    ) -> Response[Campaign]:
        async def work(tx: Connection) -> Response[Campaign]:
            return json_response(await create_campaign(tx, tenant_id, data), status_code=201)

        return await write.once(work)

    @get(opt={"scope": "sdk"}, summary="Campaigns, newest first, optionally by status")
    async def list_all(
        self,
        db: Db,
        tenant_id: TenantId,
        status: FromQuery[Literal["open", "closed"] | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[CampaignPage]:
        return json_response(await list_campaigns(db, tenant_id, status, limit, cursor))

    @get(
        "/{campaign_id:str}",
        opt={"scope": "sdk"},
        summary="A campaign, its red-packet budget and awards",
    )
    async def read(
        self, db: Db, tenant_id: TenantId, campaign_id: CampaignIdPath
    ) -> Response[Campaign]:
        return json_response(await get_campaign(db, tenant_id, campaign_id))

    @get("/{campaign_id:str}/leaderboard", opt={"scope": "sdk"}, summary="Top K of a period")
    async def leaderboard(
        self,
        boards: Boards,
        campaign_id: CampaignIdPath,
        period: FromQuery[Period] = "campaign",
        at: FromQuery[AwareDatetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> Response[Leaderboard]:
        return json_response(await boards.top(campaign_id, period, at, limit))

    @get(
        "/{campaign_id:str}/leaderboard/{distributor_id:str}",
        opt={"scope": "sdk"},
        summary="A distributor's rank and the neighbours above and below",
    )
    async def rank(
        self,
        boards: Boards,
        campaign_id: CampaignIdPath,
        distributor_id: DistributorIdPath,
        period: FromQuery[Period] = "campaign",
        at: FromQuery[AwareDatetime | None] = None,
        around: Annotated[int, QueryParameter(ge=0, le=50)] = 3,
    ) -> Response[OwnRank]:
        return json_response(await boards.rank(campaign_id, distributor_id, period, at, around))

    @post(
        "/{campaign_id:str}/close",
        opt={"scope": "admin"},
        status_code=200,
        summary="Close: award TOP-N prizes and pool splits, exactly once",
    )
    async def close(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        campaign_id: CampaignIdPath,
    ) -> Response[CloseOut]:
        async def work(tx: Connection) -> Response[CloseOut]:
            awards = await close_campaign(tx, tenant_id, program, campaign_id)
            return json_response(CloseOut(campaign_id=campaign_id, awards=awards))

        return await write.once(work)
