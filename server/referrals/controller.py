"""``/v1/distributors``, ``/v1/links``, ``/v1/referrals`` and the public ``/s/{code}``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import PermissionDeniedException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Redirect

from server.common import DistributorId, json_response, now_us, to_us
from server.db import Connection
from server.errors import InvalidInput, NotFound
from server.idempotency import run_idempotent
from server.ledger.entries import list_entries
from server.orders.schemas import EntryPage
from server.program.schemas import Program
from server.program.service import get_program
from server.public_urls import public_base_url
from server.recruitment.rules import RecruitmentState, initial_state
from server.referrals import service
from server.referrals.fast import bind_new_user
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
from server.tiers.service import promote, wants_promotion

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class DistributorController(Controller):
    path = "/v1/distributors"
    tags = ["distributors"]
    opt = {"scope": "sdk"}

    @put("/{distributor_id:str}", summary="Register or update a distributor (upsert)")
    async def upsert(
        self,
        request: Request[Any, Any, Any],
        distributor_id: IdPath,
        data: JSONBody[DistributorIn],
    ) -> Response[Distributor]:
        tenant_id = request.auth.tenant_id
        if data.status is not None and request.auth.scope != "admin":
            raise PermissionDeniedException(
                "Holding or freezing a distributor (status) needs an admin-scoped key."
            )

        mode = (await get_program(request.app.state.db, tenant_id)).recruitment.mode

        async def work(tx: Connection) -> Response[bytes]:
            await service.upsert_distributor(
                tx, tenant_id, distributor_id, data, initial_state(mode)
            )
            return json_response(await service.get_distributor(tx, tenant_id, distributor_id))

        return await run_idempotent(request, request.app.state.db, tenant_id, work)  # type: ignore[return-value]

    @get(summary="Distributors, optionally by status (operators: fraud holds), paged by id")
    async def list_distributors(
        self,
        request: Request[Any, Any, Any],
        status: FromQuery[DistributorStatus | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
        recruitment: FromQuery[RecruitmentState | None] = None,
    ) -> Response[DistributorPage]:
        page = await service.list_distributors(
            request.app.state.db, request.auth.tenant_id, status, limit, cursor, recruitment
        )
        return json_response(page)  # type: ignore[return-value]

    @get("/{distributor_id:str}", summary="Profile, inviter, team counts and balance")
    async def read(
        self, request: Request[Any, Any, Any], distributor_id: IdPath
    ) -> Response[Distributor]:
        distributor = await service.get_distributor(
            request.app.state.db, request.auth.tenant_id, distributor_id
        )
        return json_response(distributor)  # type: ignore[return-value]

    @get("/{distributor_id:str}/ledger", summary="Ledger entries, newest first, paged")
    async def ledger(
        self,
        request: Request[Any, Any, Any],
        distributor_id: IdPath,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[EntryPage]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        await service.get_distributor_row(db, tenant_id, distributor_id)
        page = await list_entries(db, tenant_id, distributor_id, limit, cursor)
        return json_response(page)  # type: ignore[return-value]

    @get("/{distributor_id:str}/team", summary="我的团队: members 1-3 levels below, paged")
    async def team(
        self,
        request: Request[Any, Any, Any],
        distributor_id: IdPath,
        level: Annotated[int, QueryParameter(ge=1, le=3)] = 1,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[TeamPage]:
        page = await service.team_of(
            request.app.state.db, request.auth.tenant_id, distributor_id, level, limit, cursor
        )
        return json_response(page)  # type: ignore[return-value]


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
        self, request: Request[Any, Any, Any], data: JSONBody[LinkIn]
    ) -> Response[Link]:
        tenant_id = request.auth.tenant_id
        program = await get_program(request.app.state.db, tenant_id)
        base_url = public_base_url(request.app.state.settings, program)

        async def work(tx: Connection) -> Response[bytes]:
            link, created = await service.ensure_link(
                tx, tenant_id, data, base_url, program.mini_program_page
            )
            return json_response(link, status_code=201 if created else 200)

        return await run_idempotent(request, request.app.state.db, tenant_id, work)  # type: ignore[return-value]

    @get("/{code:str}", summary="A link and its click count")
    async def read(self, request: Request[Any, Any, Any], code: FromPath[str]) -> Response[Link]:
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        row = await service.resolve_code(db, tenant_id, code)
        clicks = await service.link_clicks(db, tenant_id, code)
        program = await get_program(db, tenant_id)
        link = service._link_out(
            row,
            public_base_url(request.app.state.settings, program),
            clicks,
            program.mini_program_page,
        )
        return json_response(link)  # type: ignore[return-value]


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
        self, request: Request[Any, Any, Any], data: JSONBody[ReferralIn]
    ) -> Response[ReferralOut]:
        if (data.scene is None) == (data.code is None):
            raise InvalidInput("scene", "send exactly one of scene or code")
        db = request.app.state.db
        tenant_id = request.auth.tenant_id
        if data.code is not None:
            if not service._CODE_RE.match(data.code):
                raise InvalidInput(
                    "code", f"{data.code!r} is not a link code (4-16 letters/digits)"
                )
            code = data.code
        else:
            if data.scene is None:  # cannot happen: the query above always returns a row
                raise RuntimeError("invariant broken: data.scene is None")
            code = service.parse_scene(data.scene)
        link = await service.resolve_code(db, tenant_id, code)
        program = await get_program(db, tenant_id)
        occurred = to_us(data.occurred_at, "occurred_at") if data.occurred_at else now_us()
        if "idempotency-key" not in request.headers:
            fast = await bind_new_user(
                db, tenant_id, program, data.user_id, link, occurred, data.scene
            )
            if fast is not None:
                await _promote_inviter(db, tenant_id, program, fast)
                return json_response(fast)  # type: ignore[return-value]

        async def work(tx: Connection) -> Response[bytes]:
            result = await service.bind_referral(
                tx, tenant_id, program, data.user_id, link, occurred, data.scene
            )
            await _promote_inviter(tx, tenant_id, program, result)
            return json_response(result)

        return await run_idempotent(request, db, tenant_id, work)  # type: ignore[return-value]


async def _promote_inviter(
    db: Connection, tenant_id: str, program: Program, result: ReferralOut
) -> None:
    """A new binding grows the inviter's level-1 team: evaluate their promotion."""
    if result.outcome == "bound" and result.inviter_id is not None and wants_promotion(program):
        await promote(db, tenant_id, program, [result.inviter_id])


@get(
    "/s/{code:str}",
    tags=["links"],
    summary="Public share link: counts the click, redirects",
    security=[],
    status_code=302,
)
async def follow_link(request: Request[Any, Any, Any], code: FromPath[str]) -> Redirect:
    db = request.app.state.db
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
