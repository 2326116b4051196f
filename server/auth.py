"""API keys: generation, hashed storage, the authentication middleware and scope guards.

A key looks like ``lb_sdk_3Fq9...`` (``lb_<scope>_<32 url-safe chars>``). Only its first 12
secret characters (the *prefix*, indexed and unique) and a SHA-256 of the whole key are
stored; the key itself is shown once. Keys are 192-bit random tokens, so a fast hash is
enough (a slow KDF protects low-entropy passwords, not these) and the comparison is constant
time. Verified keys are cached in-process for ``KEY_CACHE_SECONDS``: a revoked key stops
working in this process at once, on every node within milliseconds when Redis carries the
invalidation (:mod:`server.coherence`), and in any case within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, Literal

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Send
from litestar.types import Scope as ASGIScope

from server.coherence import ALL, register
from server.db import Connection, Database
from server.observability import stamp
from server.program.service import get_program
from server.ratelimit import RateLimits

__all__ = ["ApiKeyMiddleware", "Principal", "Scope", "issue_key"]

Scope = Literal["admin", "sdk"]
KEY_CACHE_SECONDS = 5.0
_PREFIX_LEN = 12


class Principal(msgspec.Struct, frozen=True):
    tenant_id: str
    scope: Scope
    key_prefix: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _prefix_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "lb" or parts[1] not in ("admin", "sdk"):
        return None
    if len(parts[2]) < _PREFIX_LEN + 8:
        return None
    return f"lb_{parts[1]}_{parts[2][:_PREFIX_LEN]}"


async def issue_key(tx: Connection, tenant_id: str, scope: Scope, now_us: int) -> str:
    """Create a key for ``tenant_id``; return it (the only time it is visible)."""
    secret = secrets.token_urlsafe(24)  # 32 characters: longer than _prefix_of requires
    key = f"lb_{scope}_{secret}"
    prefix = f"lb_{scope}_{secret[:_PREFIX_LEN]}"  # what _prefix_of(key) finds again
    await tx.execute(
        "INSERT INTO api_keys (tenant_id, prefix, secret_hash, scope, created_at_us)"
        " VALUES ($1, $2, $3, $4, $5)",
        tenant_id,
        prefix,
        _hash(key),
        scope,
        now_us,
    )
    return key


class _KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, str, Principal]] = {}

    def get(self, prefix: str) -> tuple[str, Principal] | None:
        hit = self._entries.get(prefix)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, prefix: str, secret_hash: str, principal: Principal) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[prefix] = (time.monotonic() + KEY_CACHE_SECONDS, secret_hash, principal)

    def clear(self) -> None:
        self._entries.clear()

    def forget(self, tenant_id: str, prefix: str = "") -> None:
        """Drop one key (``prefix``), or every key of ``tenant_id`` (``"*"``: of every tenant)."""
        if tenant_id == ALL:
            self._entries.clear()
        elif prefix:
            self._entries.pop(prefix, None)
        else:
            for stale in [p for p, e in self._entries.items() if e[2].tenant_id == tenant_id]:
                del self._entries[stale]


key_cache = _KeyCache()
register("api_key", key_cache.forget)


async def authenticate(db: Database, key: str) -> Principal | None:
    prefix = _prefix_of(key)
    if prefix is None:
        return None
    cached = key_cache.get(prefix)
    if cached is None:
        row = await db.fetchrow(
            "SELECT tenant_id, scope, secret_hash FROM api_keys"
            " WHERE prefix = $1 AND revoked_at_us IS NULL",
            prefix,
        )
        if row is None:
            return None
        principal = Principal(row["tenant_id"], row["scope"], prefix)
        key_cache.put(prefix, row["secret_hash"], principal)
        cached = (row["secret_hash"], principal)
    secret_hash, principal = cached
    if not hmac.compare_digest(secret_hash, _hash(key)):
        return None
    return principal


def _authorization(scope: ASGIScope) -> str:
    """The ``Authorization`` header, read from the scope's raw headers (whose names the server
    lowers) without building a Headers object for it."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer <key>`` to a :class:`Principal` (``request.auth``).

    Being every route's outermost middleware, it also stamps the request's start time for the
    access log (one layer less than a separate middleware on the hot path), and counts the
    request against the key's rate limit (:mod:`server.ratelimit`; 429 past it).
    """

    def __init__(
        self, app: ASGIApp, exclude: list[str] | None = None, rate_limits: RateLimits | None = None
    ) -> None:
        super().__init__(app, exclude=exclude)
        # Held here rather than read from app.state per request (a State lookup costs ~2 us).
        self.rate_limits = rate_limits

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        stamp(scope)
        await super().__call__(scope, receive, send)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = _authorization(connection.scope)
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise NotAuthorizedException("Send 'Authorization: Bearer <api key>'.")
        db = connection.app.state.db
        principal = await authenticate(db, key.strip())
        if principal is None:
            raise NotAuthorizedException("The API key is unknown or revoked.")
        limits = self.rate_limits
        if limits is not None and limits.enabled:  # the limit: from the program cache, no query
            program = await get_program(db, principal.tenant_id)
            await limits.check_key(
                principal.tenant_id, principal.key_prefix, program.rate_limit_per_minute
            )
        # The scope a route needs is in its opt (set on controllers and handlers); a route that
        # names none needs admin. Checked here rather than with guards: Litestar runs a sync
        # guard in a thread and copies the handler per call, a third of a light request's time.
        needed = connection.route_handler.opt.get("scope", "admin")
        if needed == "admin" and principal.scope != "admin":
            raise PermissionDeniedException("This endpoint needs an admin-scoped key.")
        return AuthenticationResult(user=principal, auth=principal)
