"""Typed JSON responses for handlers annotated ``Response[Model]``.

A handler's return annotation (``Response[Distributor]``) is what the OpenAPI document shows;
the body is encoded once here with msgspec rather than by Litestar, so the object the handler
returns holds bytes. These helpers keep the two views agreeing for mypy: ``json_response(x)``
is a ``Response[type of x]``, so a handler that returns the wrong model fails type checking.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from litestar import Request, Response

from server.common import JsonBytes
from server.common import json_response as _encoded
from server.db import Connection, Database
from server.idempotency import run_idempotent

__all__ = ["TenantWrite", "encoded_response", "idempotent", "json_response"]

T = TypeVar("T")


def json_response(
    payload: T, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response[T]:
    """``payload`` as JSON (encoded now), typed as the model it carries."""
    return cast("Response[T]", _encoded(payload, status_code, headers))


def encoded_response(
    body: bytes, model: type[T], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response[T]:
    """A JSON document already encoded (a cached program, a stored template) of ``model``."""
    del model  # names the type for mypy and the reader; the bytes are sent as they are
    return cast("Response[T]", JsonBytes(body, status_code, headers))


async def idempotent(
    request: Request[Any, Any, Any],
    db: Database,
    tenant_id: str,
    work: Callable[[Connection], Awaitable[Response[T]]],
    *,
    stored: Callable[[bytes], bytes] | None = None,
) -> Response[T]:
    """:func:`server.idempotency.run_idempotent`, keeping the model ``work`` answers with
    (a replay answers with the stored bytes of the same model)."""
    response = await run_idempotent(request, db, tenant_id, cast(Any, work), stored=stored)
    return cast("Response[T]", response)


class TenantWrite:
    """One client write for the authenticated tenant (the ``write`` dependency): ``once(work)``
    runs ``work`` in a transaction of ``db``, once per ``Idempotency-Key`` when one was sent."""

    __slots__ = ("_request", "db", "tenant_id")

    def __init__(self, request: Request[Any, Any, Any], db: Database, tenant_id: str) -> None:
        self._request = request
        self.db = db
        self.tenant_id = tenant_id

    @property
    def keyed(self) -> bool:
        """Whether the client sent an ``Idempotency-Key`` (a replay-safe write)."""
        return "idempotency-key" in self._request.headers

    async def once(
        self,
        work: Callable[[Connection], Awaitable[Response[T]]],
        *,
        stored: Callable[[bytes], bytes] | None = None,
    ) -> Response[T]:
        return await idempotent(self._request, self.db, self.tenant_id, work, stored=stored)
