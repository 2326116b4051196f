"""What Litestar injects into handlers by name (``dependencies=`` on the app).

A handler asks for a dependency by naming a parameter with one of these types:

- ``db: Db``: the store (:class:`server.db.Database`) the app opened at start-up;
- ``tenant_id: TenantId``: the tenant of the API key that authenticated the request;
- ``program: CurrentProgram``: that tenant's program (from the program cache, no query);
- ``settings: AppSettings``: the process's :class:`server.settings.Settings`;
- ``distributor: KnownDistributor``: on routes under ``/v1/distributors/{distributor_id}``
  that register :data:`DISTRIBUTOR`, the tenant's distributor of that id (404 otherwise);
- ``write: Write``: a :class:`server.responses.TenantWrite`, which runs a client write in a
  transaction once per ``Idempotency-Key``.

The values come from the app itself, not from the client, so they skip Litestar's validation.

They are chained (db, settings, tenant_id, program, write, distributor: each provider names the
one before it, used or not) so that Litestar resolves them one at a time: dependencies that do
not depend on each other form a batch, and Litestar resolves a batch of two or more in an anyio
task group, two tasks per request. Profiled on ``GET /v1/program``, that task group tripled the
request's CPU (82 -> 272 us in process); a provider of the chain costs about a microsecond.

The first two providers close over the app's state instead of naming Litestar's ``state``
parameter: a provider that names it is handed the app state's dict, which Litestar's signature
model turns into a new ``State`` (a copy) on every request: ``GET /v1/program`` took 61-71 us
in process with it and 45-55 us without (min of 6 runs each, ``server.responses`` and the
header read of ``server.auth`` trimmed at the same time).
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, SkipValidation

from server.db import Database
from server.program.schemas import Program
from server.program.service import get_program
from server.referrals.service import get_distributor_row
from server.responses import TenantWrite
from server.settings import Settings

__all__ = [
    "DISTRIBUTOR",
    "DistributorIdPath",
    "DistributorRef",
    "KnownDistributor",
    "AppState",
    "dependencies",
    "AppSettings",
    "CurrentProgram",
    "Db",
    "TenantId",
    "Write",
]

Db = NamedDependency[SkipValidation[Database]]
TenantId = NamedDependency[SkipValidation[str]]
CurrentProgram = NamedDependency[SkipValidation[Program]]
AppSettings = NamedDependency[SkipValidation[Settings]]
Write = NamedDependency[SkipValidation[TenantWrite]]


def provide_tenant_id(request: Request[Any, Any, Any], settings: AppSettings) -> str:  # noqa: ARG001
    # request.auth is the Principal that server.auth.ApiKeyMiddleware resolved.
    tenant_id: str = request.auth.tenant_id
    return tenant_id


def provide_write(
    request: Request[Any, Any, Any],
    db: Db,
    tenant_id: TenantId,
    program: CurrentProgram,  # noqa: ARG001 - the chain's order (see above)
) -> TenantWrite:
    return TenantWrite(request, db, tenant_id)


DistributorIdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]


class DistributorRef(NamedTuple):
    """A distributor known to exist, for reading what belongs to it."""

    db: Database
    tenant_id: str
    distributor_id: str


KnownDistributor = NamedDependency[SkipValidation[DistributorRef]]


async def provide_distributor(
    db: Db,
    tenant_id: TenantId,
    distributor_id: DistributorIdPath,
    write: Write,  # noqa: ARG001 - the chain's order (see above)
) -> DistributorRef:
    await get_distributor_row(db, tenant_id, distributor_id)
    return DistributorRef(db, tenant_id, distributor_id)


DISTRIBUTOR = {"distributor": Provide(provide_distributor)}


async def provide_program(db: Db, tenant_id: TenantId) -> Program:
    return await get_program(db, tenant_id)


class AppState:
    """The app's state, set once the app exists (the providers are made before it)."""

    state: State


def dependencies(app: AppState) -> dict[str, Provide]:
    """The providers of one app, closed over its state: the chain's first two take no value
    from Litestar (db none, settings the db), so it has less to validate per request."""

    def provide_db() -> Database:
        db: Database = app.state.db
        return db

    def provide_settings(db: Db) -> Settings:  # noqa: ARG001 - db: the chain's order
        settings: Settings = app.state.settings
        return settings

    return {
        "db": Provide(provide_db, sync_to_thread=False),
        "settings": Provide(provide_settings, sync_to_thread=False),
        "tenant_id": Provide(provide_tenant_id, sync_to_thread=False),
        "program": Provide(provide_program),
        "write": Provide(provide_write, sync_to_thread=False),
    }
