"""Tenants' WeChat credentials, shared access tokens and mini-program codes (小程序码).

- Credentials: the appid in clear, the AppSecret sealed (:mod:`server.wechat.sealing`); reads
  say only whether a secret is set.
- Access tokens come from ``cgi-bin/stable_token`` and are kept until ``REFRESH_BEFORE_S``
  before they expire, in Redis when configured (every worker reads the same key), else in the
  ``wechat_tokens`` table. A token WeChat calls invalid or expired (40001/42001/40014) is
  replaced once with ``force_refresh`` and the call retried. Stable tokens make concurrent
  workers safe: without force_refresh they all receive the same token, and a forced refresh
  leaves the previous token valid for five minutes.
- A code is generated once per (tenant, link code, options) and stored in ``wechat_codes``
  forever (a link's scene never changes), so each distributor costs one WeChat call. Calls
  to WeChat are bounded per tenant and process by a token bucket (``RATE_PER_S``, burst
  ``BURST``): a call waits up to ``MAX_PACE_WAIT_S`` for its turn, beyond that the request
  gets a 429 with ``Retry-After``. Concurrent requests for the
  same code in one process wait for the first one's answer.
- A brand that keeps its secret to itself uploads the image per link (``upload``); an
  uploaded code is served for that link whatever the options.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
import time
import weakref
from typing import Any

import msgspec
from PIL import Image

from server.common import from_us, now_us
from server.db import Connection, Database
from server.errors import Conflict, InvalidInput
from server.program.service import get_program
from server.referrals.service import SCENE_PREFIX, resolve_code
from server.wechat.client import WeChatClient, WeChatError, WeChatUnavailable
from server.wechat.errors import (
    TOKEN_ERRCODES,
    NoWxacode,
    RateLimited,
    problem_for,
    unavailable,
)
from server.wechat.schemas import WeChatSettings, WeChatSettingsIn, Wxacode, WxacodeOptions
from server.wechat.sealing import SecretUnreadable, open_secret, seal_secret

__all__ = [
    "BURST",
    "MAX_PACE_WAIT_S",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_SIDE",
    "RATE_PER_S",
    "REFRESH_BEFORE_S",
    "UPLOAD_OPTIONS",
    "WeChatService",
    "check_scene",
    "check_upload",
    "store_upload",
    "delete_credentials",
    "read_credentials",
    "store_credentials",
]

REFRESH_BEFORE_S = 300  # a cached token is replaced this long before WeChat expires it
RATE_PER_S = 20.0  # getwxacodeunlimit calls per second per tenant and process (sustained)
BURST = 40
MAX_PACE_WAIT_S = 1.0  # a call waits this long at most for its turn, else 429 + Retry-After
MAX_UPLOAD_BYTES = 2 << 20  # an uploaded code image, as sent
MAX_UPLOAD_SIDE = 1280  # px per side: WeChat's own codes are at most 1280 px wide
UPLOAD_OPTIONS = "upload"
SCENE_RE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
_MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg"}


def check_scene(scene: str) -> str:
    if not SCENE_RE.match(scene):
        raise InvalidInput("scene", "must be 1-32 characters of 0-9A-Za-z!#$&'()*+,/:;=?@-._~")
    return scene


# ------------------------------------------------------------------ credentials


async def store_credentials(
    tx: Connection, secret_key: str, tenant_id: str, data: WeChatSettingsIn
) -> WeChatSettings:
    now = now_us()
    sealed = seal_secret(secret_key, tenant_id, data.appid, data.secret)
    await tx.execute(
        "INSERT INTO wechat_credentials (tenant_id, appid, sealed_secret, updated_at_us)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET appid = excluded.appid,"
        " sealed_secret = excluded.sealed_secret, updated_at_us = excluded.updated_at_us",
        tenant_id, data.appid, sealed, now,
    )  # fmt: skip
    # Cached tokens were granted to the old credentials: the next call fetches a new one.
    await tx.execute("DELETE FROM wechat_tokens WHERE tenant_id = $1", tenant_id)
    return WeChatSettings(data.appid, True, from_us(now).isoformat())


async def read_credentials(db: Connection, tenant_id: str) -> WeChatSettings:
    row = await db.fetchrow(
        "SELECT appid, updated_at_us FROM wechat_credentials WHERE tenant_id = $1", tenant_id
    )
    if row is None:
        return WeChatSettings(None, False, None)
    return WeChatSettings(row[0], True, from_us(int(row[1])).isoformat())


async def delete_credentials(db: Database, tenant_id: str) -> None:
    """Forget the credentials and the stored access tokens, in one transaction."""
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM wechat_credentials WHERE tenant_id = $1", tenant_id)
        await tx.execute("DELETE FROM wechat_tokens WHERE tenant_id = $1", tenant_id)


# ------------------------------------------------------------------ tokens


class _TokenStore:
    """Access tokens shared by every worker: Redis when configured, else the database."""

    def __init__(self, db: Database, redis: Any | None) -> None:
        self._db = db
        self._redis = redis

    @staticmethod
    def _key(tenant_id: str, appid: str) -> str:
        return f"liebian:wechat:token:{tenant_id}:{appid}"

    async def get(self, tenant_id: str, appid: str) -> str | None:
        if self._redis is not None:
            value = await self._redis.get(self._key(tenant_id, appid))
            return None if value is None else bytes(value).decode()
        row = await self._db.fetchrow(
            "SELECT access_token, expires_at_us FROM wechat_tokens"
            " WHERE tenant_id = $1 AND appid = $2",
            tenant_id, appid,
        )  # fmt: skip
        if row is None or int(row[1]) - REFRESH_BEFORE_S * 1_000_000 <= now_us():
            return None
        return str(row[0])

    async def put(self, tenant_id: str, appid: str, token: str, expires_in: int) -> None:
        keep_s = expires_in - REFRESH_BEFORE_S
        if keep_s <= 0:
            return  # too close to expiry to share: used once, fetched again next time
        if self._redis is not None:
            await self._redis.set(self._key(tenant_id, appid), token, ex=keep_s)
            return
        await self._db.execute(
            "INSERT INTO wechat_tokens (tenant_id, appid, access_token, expires_at_us)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, appid) DO UPDATE"
            " SET access_token = excluded.access_token, expires_at_us = excluded.expires_at_us",
            tenant_id, appid, token, now_us() + expires_in * 1_000_000,
        )  # fmt: skip

    async def drop(self, tenant_id: str) -> None:
        if self._redis is not None:
            keys = [k async for k in self._redis.scan_iter(self._key(tenant_id, "*"))]
            if keys:
                await self._redis.delete(*keys)


class _Bucket:
    """A token bucket: ``rate`` calls a second sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self, max_wait: float) -> tuple[bool, float]:
        """(taken, seconds to wait): a call may go after the wait if it is at most
        ``max_wait`` (the call is counted now, so waiters queue up in order); otherwise it is
        not counted and the wait says when to retry."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        wait = max(0.0, (1 - self.tokens) / self.rate)
        if wait <= max_wait:
            self.tokens -= 1
            return True, wait
        return False, wait


# ------------------------------------------------------------------ codes


class WeChatService:
    """Per process: the WeChat client, the token store, rate buckets and in-flight locks."""

    def __init__(self, db: Database, client: WeChatClient, secret_key: str,
                 redis: Any | None = None) -> None:  # fmt: skip
        self.db = db
        self.client = client
        self._secret_key = secret_key
        self.tokens = _TokenStore(db, redis)
        self._buckets: dict[str, _Bucket] = {}
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def forget_tokens(self, tenant_id: str) -> None:
        await self.tokens.drop(tenant_id)

    async def _credentials(self, tenant_id: str) -> tuple[str, str] | None:
        row = await self.db.fetchrow(
            "SELECT appid, sealed_secret FROM wechat_credentials WHERE tenant_id = $1", tenant_id
        )
        if row is None:
            return None
        try:
            return row[0], open_secret(self._secret_key, tenant_id, row[0], row[1])
        except SecretUnreadable:
            raise InvalidInput(
                "secret",
                "the stored AppSecret does not open with this server's LIEBIAN_SECRET_KEY "
                "(changed or unset); PUT /v1/wechat again",
            ) from None

    async def _token(self, tenant_id: str, appid: str, secret: str, force: bool) -> str:
        if not force:
            cached = await self.tokens.get(tenant_id, appid)
            if cached is not None:
                return cached
        try:
            fresh = await self.client.stable_token(appid, secret, force)
        except WeChatError as exc:
            raise problem_for(exc) from None
        except WeChatUnavailable as exc:
            raise unavailable(exc) from None
        await self.tokens.put(tenant_id, appid, fresh.access_token, fresh.expires_in)
        return fresh.access_token

    async def _pace(self, tenant_id: str) -> None:
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(RATE_PER_S, BURST)
        taken, wait = bucket.take(MAX_PACE_WAIT_S)
        if not taken:
            raise RateLimited(
                f"at most {RATE_PER_S:g} new mini-program codes a second are requested from "
                "WeChat per tenant; stored codes are served at once", math.ceil(wait),
            )  # fmt: skip
        if wait > 0:
            await asyncio.sleep(wait)

    async def _generate(self, tenant_id: str, scene: str, options: WxacodeOptions,
                        credentials: tuple[str, str]) -> tuple[str, bytes]:  # fmt: skip
        appid, secret = credentials
        body: dict[str, Any] = {
            "scene": check_scene(scene), "width": options.width,
            "env_version": options.env_version, "check_path": options.check_path,
            "is_hyaline": options.is_hyaline,
        }  # fmt: skip
        if options.page:
            body["page"] = options.page
        await self._pace(tenant_id)
        force = False
        for attempt in (1, 2):
            token = await self._token(tenant_id, appid, secret, force)
            try:
                return await self.client.wxacode_unlimited(token, body)
            except WeChatError as exc:
                if exc.errcode in TOKEN_ERRCODES and attempt == 1:
                    force = True
                    continue
                raise problem_for(exc) from None
            except WeChatUnavailable as exc:
                raise unavailable(exc) from None
        raise AssertionError("unreachable")

    async def _stored(self, tenant_id: str, code: str, options: str) -> tuple[str, bytes] | None:
        row = await self.db.fetchrow(
            "SELECT media_type, image FROM wechat_codes"
            " WHERE tenant_id = $1 AND code = $2 AND options = $3",
            tenant_id, code, options,
        )  # fmt: skip
        return None if row is None else (str(row[0]), bytes(row[1]))

    async def wxacode(
        self, tenant_id: str, code: str, options: WxacodeOptions
    ) -> tuple[str, bytes, str]:
        """(media type, image, source "upload"|"wechat") of the link's mini-program code.

        404 for another tenant's or an unknown link; 409 when the tenant has neither
        credentials nor an uploaded code for the link."""
        await resolve_code(self.db, tenant_id, code)
        if options.page is None:  # the link's page: the program's mini_program_page, else home
            program = await get_program(self.db, tenant_id)
            options = msgspec.structs.replace(options, page=program.mini_program_page or "")
        uploaded = await self._stored(tenant_id, code, UPLOAD_OPTIONS)
        if uploaded is not None:
            return (*uploaded, "upload")
        appid = await self.db.fetchval(
            "SELECT appid FROM wechat_credentials WHERE tenant_id = $1", tenant_id
        )
        if appid is None:
            raise NoWxacode(
                "this tenant has no WeChat credentials (PUT /v1/wechat) and no uploaded "
                f"code for link {code!r} (PUT /v1/links/{code}/wxacode)"
            )
        # A generated code opens its appid's mini-program: stored per appid as well.
        key = (tenant_id, code, f"{appid}|{options.key()}")
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            stored = await self._stored(*key)
            if stored is not None:
                return (*stored, "wechat")
            credentials = await self._credentials(tenant_id)
            if credentials is None or credentials[0] != appid:
                raise Conflict("the WeChat credentials changed during this request; retry")
            media, image = await self._generate(
                tenant_id, SCENE_PREFIX + code, options, credentials
            )
            await self.db.execute(
                "INSERT INTO wechat_codes (tenant_id, code, options, media_type, image,"
                " created_at_us) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                *key, media, image, now_us(),
            )  # fmt: skip
            return media, image, "wechat"

    async def poster_code(self, tenant_id: str, code: str) -> bytes | None:
        """The code a poster's ``{wxacode}`` view shows (default options, the program's
        page); None: fall back to the link's QR code."""
        try:
            return (await self.wxacode(tenant_id, code, WxacodeOptions()))[1]
        except NoWxacode:
            return None


def check_upload(body: bytes) -> tuple[str, int, int]:
    """(media type, width, height) of an uploaded code, or a 413/422 naming ``body``.

    The header is read first: the pixel bound is checked before any pixel is decoded."""
    if not body:
        raise InvalidInput("body", "is empty; send the PNG or JPEG bytes of the code")
    try:
        with Image.open(io.BytesIO(body)) as img:
            media = _MEDIA.get(img.format or "")
            if media is None:
                raise InvalidInput("body", f"is {img.format or 'not an image'}; send PNG or JPEG")
            width, height = img.size
            if width > MAX_UPLOAD_SIDE or height > MAX_UPLOAD_SIDE:
                raise InvalidInput(
                    "body",
                    f"is {width}x{height} px; at most {MAX_UPLOAD_SIDE}x{MAX_UPLOAD_SIDE} "
                    "(a mini-program code needs no more)",
                )
            img.load()
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput(
            "body", f"declares far more pixels than {MAX_UPLOAD_SIDE}x{MAX_UPLOAD_SIDE}"
        ) from None
    except (OSError, ValueError, SyntaxError):
        raise InvalidInput("body", "is not a PNG or JPEG image that decodes") from None
    return media, width, height


async def store_upload(tx: Connection, tenant_id: str, code: str, body: bytes) -> Wxacode:
    media, width, height = check_upload(body)
    await resolve_code(tx, tenant_id, code)
    await tx.execute(
        "INSERT INTO wechat_codes (tenant_id, code, options, media_type, image, created_at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, code, options) DO UPDATE"
        " SET media_type = excluded.media_type, image = excluded.image,"
        " created_at_us = excluded.created_at_us",
        tenant_id, code, UPLOAD_OPTIONS, media, body, now_us(),
    )  # fmt: skip
    return Wxacode(code, "upload", media, width, height, len(body))
