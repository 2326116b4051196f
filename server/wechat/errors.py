"""WeChat's errcodes, and the client's failures, as problem documents: one table.

WeChat answers HTTP 200 with ``{"errcode": n, "errmsg": ...}``; :func:`problem_for` turns
that into a :class:`~server.errors.ServiceError` naming the field to fix. Token errcodes
(40001, 42001, 40014) never get here on the first try: the service refreshes and retries once.
"""

from __future__ import annotations

import re

from server.errors import FieldError, InvalidInput, ServiceError
from server.wechat.client import WeChatError, WeChatUnavailable

__all__ = [
    "NoWxacode",
    "NotConfigured",
    "PayloadTooLarge",
    "RateLimited",
    "TOKEN_ERRCODES",
    "WeChatUpstream",
    "problem_for",
    "unavailable",
]

TOKEN_ERRCODES = frozenset({40001, 42001, 40014})  # invalid / expired / malformed token
QUOTA_RETRY_AFTER_S = 3600  # 45009 is a daily quota; an hour is a polite first retry


class RateLimited(ServiceError):
    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class WeChatUpstream(ServiceError):
    status = 502
    title = "WeChat API error"
    slug = "wechat-upstream"

    def __init__(self, detail: str, status: int = 502) -> None:
        super().__init__(detail)
        self.status = status


class NoWxacode(ServiceError):
    status = 409
    title = "No mini-program code"
    slug = "no-wxacode"


class NotConfigured(ServiceError):
    status = 503
    title = "Server not configured"
    slug = "not-configured"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [FieldError(field, message)])


_PARAMS = ("scene", "page", "width", "env_version", "check_path", "is_hyaline", "line_color")
_FIX = "PUT /v1/wechat with the mini-program's appid and AppSecret (mp.weixin.qq.com → 开发管理)"


def _bad_parameter(errmsg: str) -> ServiceError:
    """40097: name the parameter WeChat's message mentions (else the request as a whole)."""
    named = [p for p in _PARAMS if re.search(rf"\b{p}\b", errmsg)]
    field = named[0] if named else "body"
    return InvalidInput(field, f"WeChat refused it as an invalid parameter ({errmsg})")


def problem_for(exc: WeChatError) -> ServiceError:
    """The problem document of one WeChat errcode."""
    code, msg = exc.errcode, exc.errmsg
    if code == 41030:
        return InvalidInput(
            "page",
            "is not a page of the published mini-program; publish it, pass an existing page "
            "(no leading '/', no query) or use check_path=false with a trial/develop env_version",
        )
    if code == 45009:
        return RateLimited(
            f"WeChat's daily quota of mini-program codes is used up ({msg}); stored codes "
            "are still served", QUOTA_RETRY_AFTER_S,
        )  # fmt: skip
    if code == 45011:
        return RateLimited(f"WeChat's API is rate limiting this appid ({msg})", 60)
    if code == 40097:
        return _bad_parameter(msg)
    if code in (40013, 40163):
        return InvalidInput("appid", f"WeChat does not know this appid ({msg}); {_FIX}")
    if code in (40125, 41004):
        return InvalidInput("secret", f"WeChat refused the AppSecret ({msg}); {_FIX}")
    if code == -1:
        return WeChatUpstream(f"WeChat is busy ({msg}); retry shortly", 503)
    return WeChatUpstream(f"WeChat answered errcode {code}: {msg}")


def unavailable(exc: WeChatUnavailable) -> ServiceError:
    if exc.timeout:
        return WeChatUpstream(f"the WeChat API did not answer in time ({exc.detail})", 504)
    return WeChatUpstream(f"the WeChat API gave no usable answer ({exc.detail})")
