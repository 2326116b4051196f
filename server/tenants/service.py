"""Tenants and their API keys."""

from __future__ import annotations

import msgspec

from server.auth import Scope, issue_key
from server.coherence import publish_invalidation
from server.common import new_id, now_us
from server.db import Database
from server.errors import NotFound

__all__ = ["CreatedTenant", "create_tenant", "rotate_keys"]


class CreatedTenant(msgspec.Struct):
    tenant_id: str
    admin_key: str
    sdk_key: str


async def create_tenant(db: Database, name: str, tenant_id: str | None = None) -> CreatedTenant:
    """Create a tenant with one admin and one sdk key (shown once, stored hashed)."""
    tenant_id = tenant_id or new_id("tn")
    now = now_us()
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO tenants (tenant_id, name, created_at_us) VALUES ($1, $2, $3)",
            tenant_id,
            name,
            now,
        )
        admin = await issue_key(tx, tenant_id, "admin", now)
        sdk = await issue_key(tx, tenant_id, "sdk", now)
    return CreatedTenant(tenant_id=tenant_id, admin_key=admin, sdk_key=sdk)


async def find_tenant(db: Database, name_or_id: str) -> str | None:
    row = await db.fetchrow(
        "SELECT tenant_id FROM tenants WHERE tenant_id = $1 OR name = $1 ORDER BY id LIMIT 1",
        name_or_id,
    )
    return None if row is None else str(row["tenant_id"])


async def rotate_keys(db: Database, tenant_id: str, scopes: tuple[Scope, ...]) -> dict[str, str]:
    """Revoke the tenant's keys of ``scopes`` and issue one new key per scope."""
    now = now_us()
    keys: dict[str, str] = {}
    async with db.transaction() as tx:
        if await tx.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id) is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        for scope in scopes:
            await tx.execute(
                "UPDATE api_keys SET revoked_at_us = $3 WHERE tenant_id = $1 AND scope = $2"
                " AND revoked_at_us IS NULL",
                tenant_id,
                scope,
                now,
            )
            keys[f"{scope}_key"] = await issue_key(tx, tenant_id, scope, now)
    await publish_invalidation("api_key", tenant_id)
    return keys
