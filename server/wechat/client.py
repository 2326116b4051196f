"""The WeChat API over httpx: ``cgi-bin/stable_token`` and ``wxa/getwxacodeunlimit``.

The base URL is configured (``LIEBIAN_WECHAT_API_BASE``), never chosen by a tenant, so the
outbound-address guard does not apply; the other bounds of an outside call do: one deadline
for the whole exchange (``DEADLINE_S``) and at most ``MAX_JSON_BYTES`` of a JSON answer or
``MAX_IMAGE_BYTES`` of an image are read (a larger answer is refused, not buffered).

Errors::

    WeChatError                 WeChat answered with a non-zero ``errcode`` (kept with errmsg)
    WeChatUnavailable           no usable answer: network error, timeout, HTTP status, oversize
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
import msgspec

__all__ = [
    "DEADLINE_S",
    "MAX_IMAGE_BYTES",
    "MAX_JSON_BYTES",
    "StableToken",
    "WeChatClient",
    "WeChatError",
    "WeChatUnavailable",
]

DEADLINE_S = 10.0  # one call: connect + send + read
MAX_JSON_BYTES = 64 << 10  # token and error answers are a few hundred bytes
MAX_IMAGE_BYTES = 4 << 20  # a 1280 px code is ~0.3 MB


class _RedactAccessToken(logging.Filter):
    """httpx logs each request's URL at INFO; WeChat wants the token in the query string."""

    _TOKEN = re.compile(r"access_token=[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and any("access_token=" in str(a) for a in record.args):
            record.msg = self._TOKEN.sub("access_token=<withheld>", record.getMessage())
            record.args = ()
        return True


logging.getLogger("httpx").addFilter(_RedactAccessToken())


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(Exception):
    """The WeChat API could not be reached or gave no usable answer."""

    def __init__(self, detail: str, timeout: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.timeout = timeout


class StableToken(msgspec.Struct):
    access_token: str
    expires_in: int  # seconds


class _Answer(msgspec.Struct):
    errcode: int = 0
    errmsg: str = ""
    access_token: str | None = None
    expires_in: int | None = None


_answer = msgspec.json.Decoder(_Answer)


class WeChatClient:
    """Calls one configured WeChat API base; ``http`` is owned by the caller."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self._http = http
        self._base = base.rstrip("/")

    async def _post(self, path: str, body: dict[str, Any], params: dict[str, str] | None,
                    limit: int) -> tuple[str, bytes]:  # fmt: skip
        try:
            async with asyncio.timeout(DEADLINE_S):
                request = self._http.build_request(
                    "POST", self._base + path, params=params, content=msgspec.json.encode(body),
                    headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
                )  # fmt: skip
                response = await self._http.send(request, stream=True)
                try:
                    return await _read(response, limit)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise WeChatUnavailable(f"no answer within {DEADLINE_S:g} s", timeout=True) from None
        except httpx.HTTPError as exc:
            raise WeChatUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def stable_token(self, appid: str, secret: str, force_refresh: bool) -> StableToken:
        """A stable access token; ``force_refresh`` asks for a new one (WeChat rate-limits it)."""
        body = {"grant_type": "client_credential", "appid": appid, "secret": secret,
                "force_refresh": force_refresh}  # fmt: skip
        _, raw = await self._post("/cgi-bin/stable_token", body, None, MAX_JSON_BYTES)
        answer = _decode(raw)
        if answer.access_token is None or answer.expires_in is None:
            raise WeChatUnavailable("stable_token answered without access_token/expires_in")
        return StableToken(answer.access_token, answer.expires_in)

    async def wxacode_unlimited(self, access_token: str, body: dict[str, Any]) -> tuple[str, bytes]:
        """(media type, image bytes) of ``wxa/getwxacodeunlimit``; a JSON answer is an error."""
        params = {"access_token": access_token}
        media, raw = await self._post("/wxa/getwxacodeunlimit", body, params, MAX_IMAGE_BYTES)
        if media.startswith("image/"):
            # WeChat's Content-Type has said image/jpeg for PNG bytes: the bytes decide.
            if raw.startswith(b"\x89PNG\r\n\x1a\n"):
                return "image/png", raw
            if raw.startswith(b"\xff\xd8\xff"):
                return "image/jpeg", raw
            return media, raw
        _decode(raw)  # raises the WeChatError it carries
        raise WeChatUnavailable(f"getwxacodeunlimit answered {media or 'no content type'}")


async def _read(response: httpx.Response, limit: int) -> tuple[str, bytes]:
    if response.status_code != 200:
        raise WeChatUnavailable(f"HTTP {response.status_code}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise WeChatUnavailable(f"answer of {declared} bytes is over the {limit} byte bound")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body.extend(chunk)
        if len(body) > limit:
            raise WeChatUnavailable(f"answer is over the {limit} byte bound")
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media, bytes(body)


def _decode(raw: bytes) -> _Answer:
    try:
        answer = _answer.decode(raw)
    except msgspec.DecodeError:
        raise WeChatUnavailable("the answer is not the JSON WeChat sends") from None
    if answer.errcode != 0:
        raise WeChatError(answer.errcode, answer.errmsg)
    return answer
