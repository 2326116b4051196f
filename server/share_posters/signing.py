"""Signed, expiring public poster URLs (``/p/{token}``): shareable, carrying no API key."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec

from server.errors import NotFound

__all__ = ["sign_poster", "verify_poster"]


class PosterClaim(msgspec.Struct, array_like=True):
    tenant_id: str
    distributor_id: str
    campaign_id: str | None
    template: str | None
    format: str
    expires: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_poster(secret: str, claim: PosterClaim) -> str:
    body = _b64(msgspec.json.encode(claim))
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{_b64(mac)}"


def verify_poster(secret: str, token: str, now: int) -> PosterClaim:
    body, _, mac = token.partition(".")
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:18])
    if not mac or not hmac.compare_digest(mac.encode(), expected.encode()):
        raise NotFound("no such poster link")
    try:
        claim = msgspec.json.decode(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), type=PosterClaim
        )
    except (ValueError, msgspec.DecodeError):
        raise NotFound("no such poster link") from None
    if claim.expires < now:
        raise NotFound("this poster link has expired; ask for a new one")
    return claim
