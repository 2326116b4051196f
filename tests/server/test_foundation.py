"""Foundation: auth rules, problem documents, idempotency, health, settings, layering."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.settings import SettingsError, load_settings


def test_health_pings_the_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"]


def test_request_id_is_echoed_when_sane(client):
    response = client.get("/health", headers={"X-Request-ID": "req-1234567890"})
    assert response.headers["x-request-id"] == "req-1234567890"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer lb_sdk_notarealkeynotarealkey00"}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer garbage"}, 401),
    ],
)
def test_missing_or_wrong_key_is_401(client, headers, status):
    response = client.get("/v1/program", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]


def test_key_with_a_tampered_secret_is_401(tenant, client):
    tampered = tenant.sdk_key[:-4] + ("AAAA" if not tenant.sdk_key.endswith("AAAA") else "BBBB")
    response = client.get("/v1/program", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401


def test_sdk_key_cannot_write_admin_resources(tenant):
    assert tenant.get("/v1/program", scope="sdk").status_code == 200
    response = tenant.put("/v1/program", {"freeze_days": 3}, scope="sdk")
    assert response.status_code == 403
    assert response.json()["status"] == 403


def test_admin_key_reads_and_writes_program(tenant):
    response = tenant.put("/v1/program", {"freeze_days": 3, "commission_bps": [1500]})
    assert response.status_code == 200, response.text
    program = tenant.get("/v1/program").json()
    assert program["freeze_days"] == 3
    assert program["commission_bps"] == [1500]
    assert program["timezone"] == "Asia/Shanghai"


def test_program_is_per_tenant(tenant, other_tenant):
    tenant.put("/v1/program", {"freeze_days": 11})
    assert other_tenant.get("/v1/program").json()["freeze_days"] == 7


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"commission_bps": [1000, 500, 200, 100]}, "commission_bps"),
        ({"commission_bps": [6000, 5000]}, "commission_bps"),
        ({"commission_bps": []}, "commission_bps"),
        ({"commission_bps": [1000, "x"]}, "commission_bps[1]"),
        ({"bind_mode": "sometimes"}, "bind_mode"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"landing_url": "ftp://x"}, "landing_url"),
        ({"freeze_days": -1}, "freeze_days"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_program_is_422_naming_the_field(tenant, body, field):
    response = tenant.put("/v1/program", body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == [field]
    assert tenant.get("/v1/program").json()["commission_bps"] == [1000, 500]  # nothing written


def test_four_levels_are_refused_with_the_reason(tenant):
    problem = tenant.put("/v1/program", {"commission_bps": [100, 100, 100, 100]}).json()
    assert "传销" in problem["errors"][0]["message"]


def test_malformed_json_is_400_problem(tenant):
    response = tenant.client.put(
        "/v1/program",
        content=b"{nope",
        headers=tenant.headers("admin", **{"content-type": "application/json"}),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


def test_idempotency_key_replays_and_conflicts(tenant):
    headers = {"Idempotency-Key": "idem-1"}
    first = tenant.put("/v1/program", {"freeze_days": 5}, headers=headers)
    again = tenant.put("/v1/program", {"freeze_days": 5}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    clash = tenant.put("/v1/program", {"freeze_days": 6}, headers=headers)
    assert clash.status_code == 409
    assert tenant.get("/v1/program").json()["freeze_days"] == 5


def test_idempotency_keys_are_per_tenant(tenant, other_tenant):
    headers = {"Idempotency-Key": "shared-key"}
    assert tenant.put("/v1/program", {"freeze_days": 5}, headers=headers).status_code == 200
    response = other_tenant.put("/v1/program", {"freeze_days": 9}, headers=headers)
    assert response.status_code == 200
    assert response.json()["freeze_days"] == 9


def test_failed_write_releases_its_idempotency_key(tenant):
    headers = {"Idempotency-Key": "idem-fail"}
    assert tenant.put("/v1/program", {"timezone": "Nope/Nope"}, headers=headers).status_code == 422
    assert tenant.put("/v1/program", {"freeze_days": 2}, headers=headers).status_code == 200


def test_keys_rotate_revokes_old_keys(tenant):
    from server.tenants.service import rotate_keys

    new = tenant.call(rotate_keys, tenant.tenant_id, ("sdk",))
    assert tenant.get("/v1/program", scope="sdk").status_code == 401
    ok = tenant.client.get("/v1/program", headers={"Authorization": f"Bearer {new['sdk_key']}"})
    assert ok.status_code == 200
    assert tenant.get("/v1/program", scope="admin").status_code == 200


def test_keys_are_stored_hashed(tenant):
    async def stored(db, tenant_id):
        return await db.fetch(
            "SELECT prefix, secret_hash FROM api_keys WHERE tenant_id = $1", tenant_id
        )

    rows = tenant.call(stored, tenant.tenant_id)
    assert len(rows) == 2
    for row in rows:
        assert tenant.admin_key not in (row["prefix"], row["secret_hash"])
        assert tenant.sdk_key not in (row["prefix"], row["secret_hash"])
        assert len(row["secret_hash"]) == 64


def test_openapi_document_is_served(client):
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/v1/program" in paths
    assert client.get("/schema").status_code == 200


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LIEBIAN_DATABASE_URL": "mysql://x"}, "LIEBIAN_DATABASE_URL"),
        ({"LIEBIAN_DATABASE_URL": "sqlite:/relative"}, "LIEBIAN_DATABASE_URL"),
        ({"LIEBIAN_REDIS_URL": "http://x"}, "LIEBIAN_REDIS_URL"),
        ({"LIEBIAN_SECRET_KEY": "short"}, "LIEBIAN_SECRET_KEY"),
        ({"LIEBIAN_DB_POOL_SIZE": "many"}, "LIEBIAN_DB_POOL_SIZE"),
    ],
)
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert info.value.variable == variable


def test_cli_reports_a_bad_setting_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        env={"LIEBIAN_DATABASE_URL": "mysql://nope", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "LIEBIAN_DATABASE_URL" in result.stderr


@pytest.mark.parametrize("package", ["rewards", "posters"])
def test_pure_packages_load_no_web_or_orm(package):
    code = (
        f"import sys, {package}; bad = [m for m in sys.modules "
        "if m.split('.')[0] in ('litestar', 'piccolo', 'asyncpg', 'server')]; print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_private_route_names_the_scope_it_needs(client):
    """Scopes are declared in route opt and enforced by the auth middleware (default admin)."""
    import re

    from server.app import PUBLIC_PATHS

    public = [re.compile(p) for p in PUBLIC_PATHS]
    for route in client.app.routes:
        if any(p.search(route.path) for p in public):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"}:  # Litestar's own, answered unauthenticated
                continue
            assert handler.opt.get("scope") in ("sdk", "admin"), (route.path, handler)


def test_old_idempotency_keys_are_purged(tenant):
    from server.maintenance import IDEMPOTENCY_RETENTION_US, purge_idempotency_keys

    tenant.put("/v1/program", {"freeze_days": 4}, headers={"Idempotency-Key": "old-key"})

    async def count(db, tenant_id):
        return await db.fetchval("SELECT COUNT(*) FROM idempotency_keys WHERE tenant_id = $1"
                                 " AND key = 'old-key'", tenant_id)

    async def purge(db, at_us):
        return await purge_idempotency_keys(db, at_us)

    import time

    now = time.time_ns() // 1000
    tenant.call(purge, now)  # a fresh key survives a purge
    assert tenant.call(count, tenant.tenant_id) == 1
    assert tenant.call(purge, now + IDEMPOTENCY_RETENTION_US + 10_000_000) >= 1
    assert tenant.call(count, tenant.tenant_id) == 0
    # the key can now be used for a new request
    assert tenant.put("/v1/program", {"freeze_days": 5},
                      headers={"Idempotency-Key": "old-key"}).status_code == 200


def test_every_problem_document_has_the_same_shape(tenant, client):
    for response in (client.get("/v1/program"), tenant.get("/v1/distributors/nobody"),
                     tenant.put("/v1/program", {"freeze_days": -1})):
        body = response.json()
        assert set(body) == {"type", "title", "status", "detail", "errors"}
        assert body["status"] == response.status_code
