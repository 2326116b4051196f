"""``/v1/poster-templates``, ``/v1/posters`` and the public signed ``/p/{token}``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, put
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter

from server.common import from_us
from server.db import Connection, Database
from server.dependencies import AppSettings, CurrentProgram, Db, TenantId, Write
from server.program.service import get_program
from server.public_urls import public_base_url
from server.responses import encoded_response, json_response
from server.share_posters.failures import PosterUnavailable
from server.share_posters.service import (
    Fmt,
    PosterRequest,
    checked_template,
    render_for,
    store_template,
    template_json,
)
from server.share_posters.signing import PosterClaim, sign_poster, verify_poster

__all__ = ["PosterController", "PosterTemplateController", "public_poster"]

NamePath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
IdPath = Annotated[str, PathParameter(min_length=1, max_length=64)]
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
FORMATS: dict[str, Fmt] = {"png": "png", "jpeg": "jpeg", "webp": "webp"}


class PosterUrl(msgspec.Struct):
    url: str
    expires_at: str


class PosterTemplateController(Controller):
    path = "/v1/poster-templates"
    tags = ["posters"]

    @put("/{name:str}", opt={"scope": "admin"}, summary="Store a Painter-style poster template")
    async def store(
        self, request: Request[Any, Any, Any], write: Write, name: NamePath
    ) -> Response[dict[str, Any]]:
        document = checked_template(await request.body())

        async def work(tx: Connection) -> Response[dict[str, Any]]:
            await store_template(tx, write.tenant_id, name, document)
            return encoded_response(document.encode(), dict[str, Any])

        return await write.once(work)

    @get(
        "/{name:str}", opt={"scope": "sdk"}, summary="A stored poster template ('default' built in)"
    )
    async def read(self, db: Db, tenant_id: TenantId, name: NamePath) -> Response[dict[str, Any]]:
        document = await template_json(db, tenant_id, name)
        return encoded_response(document.encode(), dict[str, Any])


async def _serve(
    request: Request[Any, Any, Any],
    db: Database,
    tenant_id: str,
    distributor_id: str,
    campaign_id: str | None,
    template: str | None,
    fmt: Fmt,
) -> Response[bytes]:
    state = request.app.state
    base_url = public_base_url(state.settings, await get_program(db, tenant_id))
    poster = PosterRequest(tenant_id, distributor_id, campaign_id, template, fmt, base_url)
    digest, image, notes = await render_for(
        db, state.board, state.posters, poster, state.wechat.poster_code
    )
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=60", **dict(notes)}
    if etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(image, media_type=MEDIA[fmt], headers=headers)


class PosterController(Controller):
    path = "/v1/posters"
    tags = ["posters"]
    opt = {"scope": "sdk"}

    @get(
        "/{distributor_id:str}",
        summary="The distributor's share poster (image bytes, ETag)",
        media_type="image/png",
    )
    async def poster(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        tenant_id: TenantId,
        distributor_id: IdPath,
        campaign_id: FromQuery[str | None] = None,
        template: FromQuery[str | None] = None,
        format: FromQuery[Fmt] = "png",  # noqa: A002 - the API's parameter name
    ) -> Response[bytes]:
        return await _serve(request, db, tenant_id, distributor_id, campaign_id, template, format)

    @get("/{distributor_id:str}/url", summary="A signed public URL of the poster (no key needed)")
    async def signed_url(
        self,
        tenant_id: TenantId,
        program: CurrentProgram,
        settings: AppSettings,
        distributor_id: IdPath,
        campaign_id: FromQuery[str | None] = None,
        template: FromQuery[str | None] = None,
        format: FromQuery[Fmt] = "jpeg",  # noqa: A002
        ttl: Annotated[int, QueryParameter(ge=60, le=30 * 86400)] = 7 * 86400,
    ) -> Response[PosterUrl]:
        expires = int(time.time()) + ttl
        token = sign_poster(
            settings.secret_key,
            PosterClaim(tenant_id, distributor_id, campaign_id, template, format, expires),
        )
        base = public_base_url(settings, program)
        expires_at = from_us(expires * 1_000_000).isoformat()
        return json_response(PosterUrl(f"{base}/p/{token}", expires_at))


@get(
    "/p/{token:str}",
    tags=["posters"],
    summary="Public poster by signed URL",
    security=[],
    media_type="image/jpeg",
)
async def public_poster(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings, token: FromPath[str]
) -> Response[bytes]:
    await request.app.state.rate_limits.check_public(request.scope)
    claim = verify_poster(settings.secret_key, token, int(time.time()))
    fmt = FORMATS.get(claim.format, "jpeg")
    try:
        return await _serve(
            request,
            db,
            claim.tenant_id,
            claim.distributor_id,
            claim.campaign_id,
            claim.template,
            fmt,
        )
    except PosterUnavailable as exc:  # the public never sees the template's internals
        if exc.status == 503:
            raise PosterUnavailable(
                503, "Poster temporarily unavailable", "try this poster again in a few minutes"
            ) from None
        raise PosterUnavailable(
            422, "Poster unavailable", "this poster cannot be drawn; ask for a new one"
        ) from None
