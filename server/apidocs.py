"""The OpenAPI document, told what Litestar cannot read off a handler's signature.

Litestar documents each operation from its handler (parameters, body, success type). What the
app adds around the handlers (the API-key middleware, problem+json errors, Idempotency-Key
replay, the request size limit, rate limits) is added here, in one pass over every route, by
rules read off the route itself, so a route added later is documented without being listed:

==========  ==========================================================================
status      documented on
==========  ==========================================================================
400         operations with a JSON body (a body that is not a JSON object)
401, 403    every route behind the API-key middleware (not ``public_paths``)
404         routes with a path parameter (the id is looked up; other tenants' ids too)
409         writes behind the key (Idempotency-Key reused with another request)
413         writes (the request body is over the size limit)
422         writes and routes with any parameter (the fields that are wrong, and why)
429         every route (rate limits; ``Retry-After`` says when to come back)
==========  ==========================================================================

Every status >= 400, these and any a handler lists in its own ``responses``, is an
``application/problem+json`` :class:`~server.errors.Problem`. Writes behind the key take an
``Idempotency-Key`` header and their successes may carry ``Idempotent-Replayed: true``. A route
serving images lists every image type the poster routes serve, with ``ETag`` and ``304``.

The browsable UI at ``/schema`` (and ``/schema/swagger``) is Swagger UI whose scripts, styles
and icon come from the ``swagger-ui-py`` wheel and are served by the app under
``/schema/assets/``: the page works without internet.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from server.errors import PROBLEM_JSON
from server.share_posters.controller import MEDIA as IMAGE_MEDIA

__all__ = ["describe_api", "openapi_config"]

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TITLES = {
    400: "Malformed request: the body is not a JSON object (or repeats a key)",
    401: "No API key, or an unknown or revoked one (send 'Authorization: Bearer <key>')",
    403: "The key's scope does not allow this request (an admin-scoped key is needed)",
    404: "No such object for this tenant (another tenant's objects are not found either)",
    409: "The Idempotency-Key was used with a different request, or the object's state moved",
    413: "The request body is larger than the server accepts",
    422: "Invalid input: the problem's errors name each field and the fix",
    429: "Too many requests: retry after the number of seconds in Retry-After",
}
_STRING = Schema(type=OpenAPIType.STRING)


def _problem_schemas() -> dict[str, Schema]:
    field_error = Schema(
        type=OpenAPIType.OBJECT,
        required=["field", "message"],
        properties={"field": _STRING, "message": _STRING},
        description="One field at fault: its dotted path in the request and what to do.",
    )
    problem = Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "title", "status", "detail", "errors"],
        properties={
            "type": _STRING,
            "title": _STRING,
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": _STRING,
            "errors": Schema(
                type=OpenAPIType.ARRAY, items=Reference("#/components/schemas/FieldError")
            ),
        },
        description="An RFC 9457 problem document; errors is empty when no field is at fault.",
    )
    return {"Problem": problem, "FieldError": field_error}


def _problem_response(status: int, description: str | None) -> OpenAPIResponse:
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if status == 401:
        headers = {"WWW-Authenticate": OpenAPIHeader(schema=_STRING, description="Bearer")}
    elif status == 429:
        headers = {
            "Retry-After": OpenAPIHeader(
                schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
                description="Seconds to wait before the next request.",
            )
        }
    return OpenAPIResponse(
        description=description or _TITLES.get(status) or "Error",
        headers=headers,
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))},
    )


def _error_statuses(method: str, route: HTTPRoute, operation: Operation, authed: bool) -> set[int]:
    write = method in WRITES
    statuses = {429}
    if authed:
        statuses |= {401, 403}
    if route.path_parameters:
        statuses.add(404)
    if write:
        statuses |= {413, 422}
        if authed:
            statuses.add(409)
    if operation.request_body:
        statuses.add(400)
    if operation.parameters or operation.request_body:
        statuses.add(422)
    return statuses


_IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
    description="Any unique string (a UUID is ideal): a retry with the same key and body "
    "returns the first response; the same key with another body is a 409. Kept 24 hours.",
)
_REPLAYED = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING, enum=["true"]),
    description="Present when this is the stored response of an earlier request with the "
    "same Idempotency-Key.",
)


def _document_idempotency(operation: Operation) -> None:
    others = [p for p in operation.parameters or [] if getattr(p, "name", "") != "Idempotency-Key"]
    operation.parameters = [*others, _IDEMPOTENCY_KEY]
    for status, response in (operation.responses or {}).items():
        if status.startswith("2") and isinstance(response, OpenAPIResponse):
            response.headers = {**(response.headers or {}), "Idempotent-Replayed": _REPLAYED}


def _document_images(operation: Operation) -> None:
    responses = operation.responses or {}
    ok = responses.get("200")
    if not isinstance(ok, OpenAPIResponse):
        return
    ok.content = {
        media: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, content_media_type=media))
        for media in IMAGE_MEDIA.values()
    }
    etag = OpenAPIHeader(schema=_STRING, description="Send it back in If-None-Match.")
    ok.headers = {**(ok.headers or {}), "ETag": etag}
    responses["304"] = OpenAPIResponse(
        description="Not modified: If-None-Match named the current ETag", headers={"ETag": etag}
    )
    operation.responses = responses
    operation.parameters = [
        *(operation.parameters or []),
        Parameter(
            name="If-None-Match",
            param_in="header",
            required=False,
            schema=_STRING,
            description="The ETag of a copy already held: a 304 without a body if it is current.",
        ),
    ]


def _describe_operation(method: str, route: HTTPRoute, operation: Operation, authed: bool) -> None:
    handler = route.route_handler_map[method][0]  # type: ignore[index]
    # Statuses a handler lists itself (``responses=``, ``raises=``) beside those of the rules.
    # Litestar's automatic 400 (a ValidationException as application/json) is dropped: what
    # is served for invalid input is a 422 problem document.
    listed: dict[int, str | None] = {
        status: spec.description
        for status, spec in (handler.responses or {}).items()
        if status >= 400
    }
    for exc in handler.raises or ():
        listed.setdefault(exc.status_code, None)
    statuses = _error_statuses(method, route, operation, authed) | set(listed)
    responses = {
        s: r for s, r in (operation.responses or {}).items() if not (s.isdigit() and s >= "400")
    }
    for status in statuses:
        responses[str(status)] = _problem_response(status, listed.get(status))
    operation.responses = dict(sorted(responses.items()))
    if not authed:
        operation.security = []
    if method in WRITES and authed:
        _document_idempotency(operation)
    if str(handler.media_type).startswith("image/"):
        _document_images(operation)


def _operations(app: Litestar) -> Iterable[tuple[str, HTTPRoute, Operation]]:
    paths = app.openapi_schema.paths or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = paths.get(route.path_format or "/")
        if item is None:
            continue
        for method in route.route_handler_map:
            operation = getattr(item, method.lower(), None)
            if isinstance(operation, Operation):
                yield method, route, operation


def describe_api(app: Litestar, public_paths: Sequence[str]) -> None:
    """Complete ``app``'s OpenAPI document in place (call once, after the routes are set).

    ``public_paths`` are the regular expressions the API-key middleware excludes.
    """
    public = [re.compile(p) for p in public_paths]
    document = app.openapi_schema
    schemas: dict[str, Any] = dict(document.components.schemas or {})
    schemas.update(_problem_schemas())
    document.components.schemas = dict(sorted(schemas.items()))
    for method, route, operation in _operations(app):
        authed = not any(p.search(route.path) for p in public)
        _describe_operation(method, route, operation, authed)


SCHEMA_PATH = "/schema"
_ASSETS = "/assets"


def _swagger_ui_assets() -> Path:
    """The folder of Swagger UI's built files inside the installed ``swagger-ui-py`` wheel."""
    spec = importlib.util.find_spec("swagger_ui")  # located, not imported (it pulls in jinja2)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class _OfflineSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI from files this app serves (under the schema path), never from a CDN."""

    def __init__(self) -> None:
        base = SCHEMA_PATH + _ASSETS
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
            path=["/", "/swagger"],
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                _ASSETS,
                directories=[_swagger_ui_assets()],
                name="schema-assets",
                cache_control=CacheControlHeader(max_age=86_400),
                include_in_schema=False,
            )
        )


def openapi_config() -> OpenAPIConfig:
    """The document's header (title, security) and its UI; :func:`describe_api` does the rest."""
    return OpenAPIConfig(
        title="Liebian API",
        version="1.0.0",
        description="Referral and distribution (分销) service: bindings, commissions, ledger, "
        "campaigns, posters and settlements. Amounts are integer fen, rates basis points.",
        path=SCHEMA_PATH,
        render_plugins=[_OfflineSwaggerUI()],
        components=Components(
            security_schemes={
                "BearerKey": SecurityScheme(type="http", scheme="bearer", description="API key"),
            }
        ),
        security=[{"BearerKey": []}],
    )
