"""``/v1/wechat`` (credentials, admin) and ``/v1/links/{code}/wxacode`` (codes, sdk).

HTTP only; the rules are in :mod:`server.wechat.service`."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, put
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter

from server.db import Connection
from server.dependencies import AppSettings, Db, TenantId, Write
from server.responses import json_response
from server.wechat.errors import NotConfigured, PayloadTooLarge
from server.wechat.schemas import (
    EnvVersion,
    WeChatSettings,
    WeChatSettingsIn,
    Wxacode,
    WxacodeOptions,
)
from server.wechat.service import (
    MAX_UPLOAD_BYTES,
    delete_credentials,
    read_credentials,
    store_credentials,
    store_upload,
)

__all__ = ["WeChatController", "WxacodeController"]

CodePath = Annotated[str, PathParameter(pattern=r"^[0-9A-Za-z]{4,16}$")]
# A mini-program page path: no leading '/', no query (WeChat's own rule), 128 chars at most;
# the same shape as the program's mini_program_page, which is the default.
Page = Annotated[
    str | None,
    QueryParameter(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"),
]


def _settings_only(body: bytes) -> bytes:
    """What the idempotency store keeps of a credentials answer: the public fields, re-encoded
    from the schema that has no secret (so nothing else can slip into the store)."""
    return msgspec.json.encode(msgspec.json.decode(body, type=WeChatSettings))


class WeChatController(Controller):
    path = "/v1/wechat"
    tags = ["wechat"]
    opt = {"scope": "admin"}

    @put(summary="Set the mini-program's appid and AppSecret (the secret is sealed, write-only)")
    async def store(
        self,
        request: Request[Any, Any, Any],
        write: Write,
        tenant_id: TenantId,
        settings: AppSettings,
        data: JSONBody[WeChatSettingsIn],
    ) -> Response[WeChatSettings]:
        if not settings.secret_key_configured:
            raise NotConfigured(
                "this server has no LIEBIAN_SECRET_KEY: a secret sealed with a per-process key "
                "would not survive a restart or open in another worker; the operator sets "
                "LIEBIAN_SECRET_KEY (16+ characters) and restarts"
            )

        async def work(tx: Connection) -> Response[WeChatSettings]:
            saved = await store_credentials(tx, settings.secret_key, tenant_id, data)
            return json_response(saved)

        response = await write.once(work, stored=_settings_only)
        await request.app.state.wechat.forget_tokens(tenant_id)
        return response

    @get(summary="The appid and whether a secret is set (never the secret)")
    async def read(self, db: Db, tenant_id: TenantId) -> Response[WeChatSettings]:
        return json_response(await read_credentials(db, tenant_id))

    @delete(status_code=204, summary="Forget the credentials and cached access tokens")
    async def remove(self, request: Request[Any, Any, Any], db: Db, tenant_id: TenantId) -> None:
        await delete_credentials(db, tenant_id)
        await request.app.state.wechat.forget_tokens(tenant_id)


class WxacodeController(Controller):
    path = "/v1/links"
    tags = ["links"]
    opt = {"scope": "sdk"}

    @get(
        "/{code:str}/wxacode",
        summary="The link's mini-program code (小程序码), generated once and stored",
        media_type="image/png",
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        tenant_id: TenantId,
        code: CodePath,
        page: Page = None,
        width: Annotated[int, QueryParameter(ge=280, le=1280)] = 430,
        env_version: FromQuery[EnvVersion] = "release",
        check_path: FromQuery[bool] = True,
        is_hyaline: FromQuery[bool] = False,
    ) -> Response[bytes]:
        options = WxacodeOptions(page=page, width=width, env_version=env_version,
                                 check_path=check_path, is_hyaline=is_hyaline)  # fmt: skip
        media, image, source = await request.app.state.wechat.wxacode(tenant_id, code, options)
        headers = {"Liebian-Wxacode-Source": source, "Cache-Control": "private, max-age=86400"}
        return Response(image, media_type=media, headers=headers)

    @put(
        "/{code:str}/wxacode",
        summary="Upload the link's mini-program code (PNG/JPEG ≤ 2 MB, ≤ 1280x1280 px)",
        request_max_body_size=MAX_UPLOAD_BYTES,
    )
    async def upload(
        self, request: Request[Any, Any, Any], write: Write, tenant_id: TenantId, code: CodePath
    ) -> Response[Wxacode]:
        try:
            body = await request.body()
        except RequestEntityTooLarge:
            raise PayloadTooLarge(
                "body", f"is over {MAX_UPLOAD_BYTES} bytes; send a PNG or JPEG of at most 2 MB"
            ) from None

        async def work(tx: Connection) -> Response[Wxacode]:
            return json_response(await store_upload(tx, tenant_id, code, body))

        response = await write.once(work)
        request.app.state.posters.forget_tenant(tenant_id)
        return response
