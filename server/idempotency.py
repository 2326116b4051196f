"""``Idempotency-Key`` for writes: the same key and body replay the first response.

The key is claimed with an insert (``ON CONFLICT DO NOTHING``) before the work, inside the
write's own transaction, and the work runs only under a claim this request won. On
PostgreSQL a concurrent request with the same key blocks on the unique index until the first
commits, then finds the stored response (same body: a replay) or a different body (409); on
SQLite transactions are serialised by the store. A write that fails rolls back its claim, so
a retry runs again. Orders claim the key the same way inside their one write statement
(:mod:`server.orders.store`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response

from server.common import now_us
from server.db import Connection, Database
from server.errors import Conflict, InvalidInput
from server.queries import CLAIM_KEY_SQL

__all__ = ["request_hash", "run_idempotent"]

Work = Callable[[Connection], Awaitable[Response[bytes]]]


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key", "must be 1-255 characters (a UUID is ideal)")
    return key


async def run_idempotent(
    request: Request[Any, Any, Any],
    db: Database,
    tenant_id: str,
    work: Work,
    *,
    stored: Callable[[bytes], bytes] | None = None,
) -> Response[bytes]:
    """Run ``work`` in a transaction, once per ``Idempotency-Key`` (if the client sent one).

    ``stored`` maps the response body to what a replay returns (it withholds a secret that
    must not be kept in clear); by default the body is kept as sent."""
    key = idempotency_key(request)
    async with db.transaction() as tx:
        if key is None:
            return await work(tx)
        digest = request_hash(request.method, request.url.path, await request.body())
        claimed = await tx.fetchval(CLAIM_KEY_SQL, tenant_id, key, digest, 0, "", now_us())
        if claimed is None:
            return await _replay(tx, tenant_id, key, digest)
        response = await work(tx)
        await tx.execute(
            "UPDATE idempotency_keys SET status_code = $3, response_body = $4"
            " WHERE tenant_id = $1 AND key = $2",
            tenant_id,
            key,
            response.status_code,
            (stored or bytes)(bytes(response.content)).decode(),
        )
        return response


async def _replay(tx: Connection, tenant_id: str, key: str, digest: str) -> Response[bytes]:
    row = await tx.fetchrow(
        "SELECT request_hash, status_code, response_body FROM idempotency_keys"
        " WHERE tenant_id = $1 AND key = $2",
        tenant_id,
        key,
    )
    if row is None or row["request_hash"] != digest:
        raise Conflict(
            "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request."
        )
    return Response(
        row["response_body"].encode(),
        status_code=row["status_code"],
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )
