"""Console sessions, the sign-in throttle and the audit trail.

Signing in with an admin key creates a server-side session: a random 256-bit id goes to the
browser (HttpOnly cookie); only its SHA-256 is stored, with the tenant, the key's prefix, a
CSRF token bound to the session, and the expiry (``SESSION_SECONDS``). A session ends at its
expiry, at logout (the row is deleted) or when its key is revoked (checked on every request).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque

import msgspec

from server.auth import Principal
from server.common import new_id, now_us
from server.db import Connection

__all__ = [
    "SESSION_SECONDS",
    "AuditRecord",
    "ConsoleSession",
    "LoginThrottle",
    "audit_trail",
    "create_session",
    "end_session",
    "find_session",
    "record_audit",
]

SESSION_SECONDS = 8 * 3600
_US = 1_000_000


class ConsoleSession(msgspec.Struct, frozen=True):
    tenant_id: str
    key_prefix: str  # who: the admin key that signed in (its public prefix)
    csrf_token: str
    expires_at_us: int


class AuditRecord(msgspec.Struct, frozen=True):
    action: str
    actor: str
    reason: str
    at_us: int


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def create_session(tx: Connection, principal: Principal) -> tuple[str, ConsoleSession]:
    """A new session for ``principal``; returns the id for the cookie (shown only here)."""
    session_id = secrets.token_urlsafe(32)
    now = now_us()
    session = ConsoleSession(
        principal.tenant_id,
        principal.key_prefix,
        secrets.token_urlsafe(32),
        now + SESSION_SECONDS * _US,
    )
    # Expired rows of anyone are swept here, so the table stays as small as the live sessions.
    await tx.execute("DELETE FROM console_sessions WHERE expires_at_us <= $1", now)
    await tx.execute(
        "INSERT INTO console_sessions (session_hash, tenant_id, key_prefix, csrf_token,"
        " created_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
        _hash(session_id),
        session.tenant_id,
        session.key_prefix,
        session.csrf_token,
        now,
        session.expires_at_us,
    )
    return session_id, session


async def find_session(db: Connection, session_id: str) -> ConsoleSession | None:
    """The live session with this id whose key is still valid, or None."""
    if not 20 <= len(session_id) <= 100:
        return None
    row = await db.fetchrow(
        "SELECT s.tenant_id, s.key_prefix, s.csrf_token, s.expires_at_us FROM console_sessions s"
        " JOIN api_keys k ON k.prefix = s.key_prefix AND k.tenant_id = s.tenant_id"
        " AND k.revoked_at_us IS NULL AND k.scope = 'admin'"
        " WHERE s.session_hash = $1 AND s.expires_at_us > $2",
        _hash(session_id),
        now_us(),
    )
    if row is None:
        return None
    return ConsoleSession(row[0], row[1], row[2], int(row[3]))


async def end_session(tx: Connection, session_id: str) -> None:
    await tx.execute("DELETE FROM console_sessions WHERE session_hash = $1", _hash(session_id))


async def record_audit(
    tx: Connection, session: ConsoleSession, object_id: str, action: str, reason: str = ""
) -> None:
    """Note who (the key prefix) did ``action`` to ``object_id``, when and why."""
    await tx.execute(
        "INSERT INTO console_audit (audit_id, tenant_id, object_id, action, actor, reason, at_us)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        new_id("aud", 24),
        session.tenant_id,
        object_id,
        action,
        session.key_prefix,
        reason[:500],
        now_us(),
    )


async def audit_trail(
    db: Connection, tenant_id: str, object_id: str, limit: int = 20
) -> list[AuditRecord]:
    rows = await db.fetch(
        "SELECT action, actor, reason, at_us FROM console_audit"
        " WHERE tenant_id = $1 AND object_id = $2 ORDER BY at_us DESC LIMIT $3",
        tenant_id,
        object_id,
        limit,
    )
    return [AuditRecord(r[0], r[1], r[2], int(r[3])) for r in rows]


class LoginThrottle:
    """At most ``limit`` failed sign-ins per client address per ``window`` seconds (in-process).

    Keys are 192-bit random tokens, so guessing is hopeless anyway; this keeps a scripted
    guesser from filling logs and CPU. Memory is bounded by ``max_clients``.
    """

    def __init__(self, limit: int = 10, window: float = 300.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str) -> bool:
        failures = self._failures.get(client)
        if not failures:
            return False
        cutoff = time.monotonic() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        return len(failures) >= self.limit

    def failed(self, client: str) -> None:
        if len(self._failures) >= self.max_clients and client not in self._failures:
            self._failures.clear()
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(time.monotonic())
