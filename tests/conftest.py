"""Test harness shared by every package's tests.

The server tests run on the engine named by ``LIEBIAN_TEST_ENGINE`` (``sqlite`` default, or
``postgres`` at ``LIEBIAN_TEST_DATABASE_URL``); ``make test`` runs them once per engine.
The schema is migrated once per session and every test works in tenants of its own, so tests
never see each other's rows (which is also what tenant isolation promises).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENGINE = os.environ.get("LIEBIAN_TEST_ENGINE", "sqlite")
PG_URL = os.environ.get("LIEBIAN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LIEBIAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_report_header() -> str:
    return f"liebian: engine={ENGINE}" + (f" ({PG_URL})" if ENGINE == "postgres" else "")


def pytest_configure(config: pytest.Config) -> None:
    if ENGINE == "postgres":
        # Every statement of the PostgreSQL pass is recorded for the shard-routing check
        # (tests/server/test_shard_routing.py, run last).
        from tests.shard_routing import record_statements

        record_statements()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if ENGINE == "postgres":
        import tests.shard_routing

        tests.shard_routing.current_test = item.nodeid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests marked run_last see every statement the others ran.
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)
    for item in items:
        if item.get_closest_marker("postgres_only") and ENGINE != "postgres":
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL pass"))
        if item.get_closest_marker("sqlite_only") and ENGINE != "sqlite":
            item.add_marker(pytest.mark.skip(reason="runs in the SQLite pass"))


def _reset_postgres(url: str) -> None:
    import asyncio

    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(reset())


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if ENGINE == "postgres":
        _reset_postgres(PG_URL)
        return PG_URL
    path: Path = tmp_path_factory.mktemp("db") / "liebian.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def settings(database_url: str) -> Any:
    import asyncio

    from server.migrate import migrate
    from server.settings import load_settings

    settings = load_settings(
        {
            "LIEBIAN_DATABASE_URL": database_url,
            "LIEBIAN_SECRET_KEY": "test-secret-key-0123456789",
            "LIEBIAN_LOG_REQUESTS": "0",
            "LIEBIAN_DELIVER_WEBHOOKS": "0",
            "LIEBIAN_DB_POOL_SIZE": "40",
        }
    )
    asyncio.run(migrate(settings))
    return settings


@pytest.fixture(scope="session")
def client(settings: Any) -> Iterator[Any]:
    from litestar.testing import TestClient

    from server.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def redis_client(settings: Any) -> Iterator[Any]:
    """A second app on the same database whose leaderboards live in Redis (db 15, flushed)."""
    import msgspec
    import redis
    from litestar.testing import TestClient

    from server.app import create_app

    plain = redis.Redis.from_url(REDIS_URL)
    try:
        plain.ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    plain.flushdb()
    plain.close()
    with TestClient(
        create_app(msgspec.structs.replace(settings, redis_url=REDIS_URL)),
        raise_server_exceptions=False,
    ) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def redis_cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """A real three-master Redis Cluster on loopback ports, from the installed redis-server
    (skipped with a warning where it is missing; failing under CI=true); torn down after."""
    from tests.redis_servers import cluster

    with cluster(tmp_path_factory.mktemp("redis-cluster")) as ports:
        yield ports


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster_ports: list[int]) -> str:
    return f"redis+cluster://127.0.0.1:{redis_cluster_ports[0]}"


@pytest.fixture(scope="session")
def redis_cluster_client(settings: Any, redis_cluster_url: str) -> Iterator[Any]:
    """An app on the same database whose leaderboards and rate limits live in a Redis Cluster."""
    import msgspec
    from litestar.testing import TestClient

    from server.app import create_app

    clustered = msgspec.structs.replace(settings, redis_url=redis_cluster_url, redis_cluster=True)
    with TestClient(create_app(clustered), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class TenantKeys:
    tenant_id: str
    admin_key: str
    sdk_key: str
    client: Any

    def headers(self, scope: str = "admin", **extra: str) -> dict[str, str]:
        key = self.admin_key if scope == "admin" else self.sdk_key
        return {"Authorization": f"Bearer {key}", **extra}

    def get(self, path: str, scope: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(scope, **kw.pop("headers", {})), **kw)

    def post(self, path: str, json: Any = None, scope: str = "admin", **kw: Any) -> Any:
        headers = self.headers(scope, **kw.pop("headers", {}))
        return self.client.post(path, json=json, headers=headers, **kw)

    def put(self, path: str, json: Any = None, scope: str = "admin", **kw: Any) -> Any:
        headers = self.headers(scope, **kw.pop("headers", {}))
        return self.client.put(path, json=json, headers=headers, **kw)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run an async service function on the app's loop with the app's store."""
        with self.client.portal() as portal:
            return portal.call(fn, self.client.app.state.db, *args)


def make_tenant(client: Any, name: str = "test") -> TenantKeys:
    from server.tenants.service import create_tenant

    with client.portal() as portal:
        created = portal.call(create_tenant, client.app.state.db, name)
    return TenantKeys(created.tenant_id, created.admin_key, created.sdk_key, client)


@pytest.fixture
def tenant(client: Any) -> TenantKeys:
    return make_tenant(client, "tenant-a")


@pytest.fixture
def other_tenant(client: Any) -> TenantKeys:
    return make_tenant(client, "tenant-b")
