"""``/v1/distributors``, ``/v1/links``, ``/v1/referrals`` and the public ``/s/{code}``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import PermissionDeniedException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Redirect

from server.common import DistributorId, now_us, to_us
from server.db import Connection
from server.dependencies import AppSettings, CurrentProgram, Db, TenantId, Write
from server.errors import NotFound
from server.program.service import get_program
from server.public_urls import public_base_url
from server.recruitment.rules import RecruitmentState, initial_state
from server.referrals import binding, service
from server.referrals.schemas import (
    Distributor,
    DistributorIn,
    DistributorPage,
    DistributorStatus,
    Link,
    LinkIn,
    ReferralIn,
    ReferralOut,
    TeamPage,
)
from server.referrals.search import NicknameMatch, search_distributors
from server.responses import json_response

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class DistributorController(Controller):
    path = "/v1/distributors"
    tags = ["distributors"]
    opt = {"scope": "sdk"}

    @put("/{distributor_id:str}", summary="Register or update a distributor (upsert)")
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        distributor_id: IdPath,
        data: JSONBody[DistributorIn],
    ) -> Response[Distributor]:
        if data.status is not None and request.auth.scope != "admin":
            raise PermissionDeniedException(
                "Holding or freezing a distributor (status) needs an admin-scoped key."
            )
        state = initial_state(program.recruitment.mode)

        async def work(tx: Connection) -> Response[Distributor]:
            await service.upsert_distributor(tx, tenant_id, distributor_id, data, state)
            return json_response(await service.get_distributor(tx, tenant_id, distributor_id))

        return await write.once(work)

    @get(summary="Distributors, optionally by status (operators: fraud holds), paged by id")
    async def list_distributors(
        self,
        db: Db,
        tenant_id: TenantId,
        status: FromQuery[DistributorStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
        recruitment: FromQuery[RecruitmentState | None] = None,
        nickname: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
        match: FromQuery[NicknameMatch] = "prefix",
    ) -> Response[DistributorPage]:
        if nickname is not None:
            found = await search_distributors(db, tenant_id, nickname, match, limit, cursor, status)
            return json_response(found)
        page = await service.list_distributors(db, tenant_id, status, limit, cursor, recruitment)
        return json_response(page)

    @get("/{distributor_id:str}", summary="Profile, inviter, team counts and balance")
    async def read(
        self, db: Db, tenant_id: TenantId, distributor_id: IdPath
    ) -> Response[Distributor]:
        return json_response(await service.get_distributor(db, tenant_id, distributor_id))

    @get("/{distributor_id:str}/team", summary="我的团队: members 1-3 levels below, paged")
    async def team(
        self,
        db: Db,
        tenant_id: TenantId,
        distributor_id: IdPath,
        level: Annotated[int, QueryParameter(ge=1, le=3)] = 1,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[TeamPage]:
        page = await service.team_of(db, tenant_id, distributor_id, level, limit, cursor)
        return json_response(page)


class LinkController(Controller):
    path = "/v1/links"
    tags = ["links"]
    opt = {"scope": "sdk"}

    @post(
        summary="The distributor's share link and mini-program scene (stable per input)",
        description="201 when this call created the link, 200 when it already existed.",
        status_code=201,
        responses={
            200: ResponseSpec(Link, description="The link already existed"),
            404: ResponseSpec(None, description="No such distributor or campaign"),
        },
    )
    async def create(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        settings: AppSettings,
        data: JSONBody[LinkIn],
    ) -> Response[Link]:
        base_url = public_base_url(settings, program)

        async def work(tx: Connection) -> Response[Link]:
            link, created = await service.ensure_link(
                tx, tenant_id, data, base_url, program.mini_program_page
            )
            return json_response(link, status_code=201 if created else 200)

        return await write.once(work)

    @get("/{code:str}", summary="A link and its click count")
    async def read(
        self,
        db: Db,
        tenant_id: TenantId,
        program: CurrentProgram,
        settings: AppSettings,
        code: FromPath[str],
    ) -> Response[Link]:
        base_url = public_base_url(settings, program)
        link = await service.get_link(db, tenant_id, code, base_url, program.mini_program_page)
        return json_response(link)


class ReferralController(Controller):
    path = "/v1/referrals"
    tags = ["referrals"]
    opt = {"scope": "sdk"}

    @post(
        summary="Turn a share scene or link code into a binding decision",
        status_code=200,
        responses={404: ResponseSpec(None, description="No link with that code or scene")},
    )
    async def bind(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        data: JSONBody[ReferralIn],
    ) -> Response[ReferralOut]:
        code = binding.referral_code(data)
        link = await service.resolve_code(write.db, tenant_id, code)
        occurred = to_us(data.occurred_at, "occurred_at") if data.occurred_at else now_us()
        arrival = service.Arrival(data.user_id, link, occurred, data.scene)
        if not write.keyed:
            fast = await binding.bind_first_time(write.db, tenant_id, program, arrival)
            if fast is not None:
                return json_response(fast)

        async def work(tx: Connection) -> Response[ReferralOut]:
            return json_response(await binding.bind_in(tx, tenant_id, program, arrival))

        return await write.once(work)


@get(
    "/s/{code:str}",
    tags=["links"],
    summary="Public share link: counts the click, redirects",
    security=[],
    status_code=302,
)
async def follow_link(request: Request[Any, Any, Any], db: Db, code: FromPath[str]) -> Redirect:
    # One click per client address, link and minute, whatever User-Agent the client sends.
    client = await request.app.state.rate_limits.check_public(request.scope)
    found = await service.record_click(db, code, client, now_us())
    if found is None:
        raise NotFound(f"no link with code {code!r}")
    program = await get_program(db, found[0])
    parts = urlsplit(program.landing_url)
    query = (parts.query + "&" if parts.query else "") + urlencode(
        {"scene": service.SCENE_PREFIX + code}
    )
    return Redirect(urlunsplit(parts._replace(query=query)), status_code=302)


__all__ = [
    "DistributorController",
    "DistributorId",
    "LinkController",
    "ReferralController",
    "follow_link",
]
