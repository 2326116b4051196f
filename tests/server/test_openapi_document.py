"""The OpenAPI document tells what is served: problem+json errors with the statuses each route
returns, the idempotency headers on writes, every image and export media type.

The rules are read off each route (method, key scope, path parameters), so a route added later
is documented without anyone listing it; the last test proves that on an app of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar import Controller, Litestar, Request, get, post
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, JSONBody

PROBLEM = "application/problem+json"
WRITES = {"post", "put", "patch", "delete"}
METHODS = WRITES | {"get", "head"}
PUBLIC = {("get", "/health"), ("get", "/s/{code}"), ("get", "/p/{token}")}
IMAGES = {"image/png", "image/jpeg", "image/webp"}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _document(client: Any) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_every_error_response_is_a_problem_document(client):
    document = _document(client)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "errors"}
    assert problem["properties"]["errors"]["items"]["$ref"] == "#/components/schemas/FieldError"
    seen = 0
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            seen += 1
            assert set(response["content"]) == {PROBLEM}, (method, path, status)
            schema = response["content"][PROBLEM]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    assert seen > 100


def test_each_operation_lists_the_statuses_its_route_returns(client):
    document = _document(client)
    for method, path, operation in _operations(document):
        where = f"{method.upper()} {path}"
        statuses = set(operation["responses"])
        assert "429" in statuses, where  # rate limits apply to every route
        public = (method, path) in PUBLIC
        assert (operation.get("security") == []) == public, where
        assert {"401", "403"} <= statuses or public, where
        assert not public or not {"401", "403"} & statuses, where
        if "{" in path:
            assert "404" in statuses, where
        if method in WRITES:
            assert {"409", "413", "422"} <= statuses, where
        else:  # bodies are only read on writes; invalid parameters are a 422
            assert not {"409", "413"} & statuses, where
        assert ("400" in statuses) == ("requestBody" in operation), where
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in statuses, where
    health = document["paths"]["/health"]["get"]["responses"]
    assert "503" in health and set(health["503"]["content"]) == {PROBLEM}


def test_error_responses_carry_their_headers(client):
    for method, path, operation in _operations(_document(client)):
        responses = operation["responses"]
        assert "Retry-After" in responses["429"]["headers"], (method, path)
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)


def test_writes_document_the_idempotency_headers(client):
    for method, path, operation in _operations(_document(client)):
        keys = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
        successes = [r for s, r in operation["responses"].items() if s.startswith("2")]
        if method in WRITES:
            assert len(keys) == 1, (method, path)
            assert keys[0]["in"] == "header" and keys[0]["required"] is False
            assert keys[0]["schema"]["maxLength"] == 255
            for response in successes:
                header = response["headers"]["Idempotent-Replayed"]
                assert header["schema"]["enum"] == ["true"], (method, path)
        else:
            assert not keys, (method, path)
            assert all("Idempotent-Replayed" not in r.get("headers", {}) for r in successes)


def test_poster_and_export_routes_list_every_media_type_they_serve(client):
    paths = _document(client)["paths"]
    for path in ("/v1/posters/{distributor_id}", "/p/{token}"):
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == IMAGES, path
    csv = paths["/v1/settlements/{settlement_id}/export.csv"]["get"]["responses"]["200"]
    assert {media.split(";")[0] for media in csv["content"]} == {"text/csv"}
    xlsx = paths["/v1/settlements/{settlement_id}/export.xlsx"]["get"]["responses"]["200"]
    assert set(xlsx["content"]) == {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    }


def _served(tenant: Any, case: str) -> tuple[str, str, Any]:
    big = b'{"nickname": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    key = {"Idempotency-Key": "doc-409"}
    if case == "401":
        return "get", "/v1/program", tenant.client.get("/v1/program")
    if case == "403":
        return "put", "/v1/program", tenant.put("/v1/program", {}, scope="sdk")
    if case == "400":
        bad = tenant.client.post("/v1/orders", content=b"{not json", headers=tenant.headers("sdk"))
        return "post", "/v1/orders", bad
    if case == "413":
        response = tenant.client.put(
            "/v1/distributors/big", content=big, headers=tenant.headers("sdk")
        )
        return "put", "/v1/distributors/{distributor_id}", response
    if case == "409":
        tenant.put("/v1/distributors/first", {"nickname": "a"}, headers=key)
        response = tenant.put("/v1/distributors/first", {"nickname": "b"}, headers=key)
        return "put", "/v1/distributors/{distributor_id}", response
    if case == "404":
        return "get", "/v1/orders/{order_id}/explain", tenant.get("/v1/orders/nope/explain")
    if case == "429":
        assert tenant.put("/v1/program", {"rate_limit_per_minute": 2}).status_code == 200
        for _ in range(10):  # a window may turn over once in between
            response = tenant.get("/v1/program")
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 0
                break
        return "get", "/v1/program", response
    response = tenant.get("/v1/settlements?limit=0")
    return "get", "/v1/settlements", response


@pytest.mark.parametrize("case", ["400", "401", "403", "404", "409", "413", "422", "429"])
def test_the_documented_errors_are_served_as_problem_documents(client, tenant, case):
    """One request per error status the rules promise (generated requests all carry a key)."""
    method, path, response = _served(tenant, case)
    assert response.status_code == int(case), response.text[:200]
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["status"] == int(case)
    documented = _document(client)["paths"][path][method]["responses"]
    assert case in documented, (method, path)


class _GadgetIn(msgspec.Struct):
    name: str


class _GadgetController(Controller):
    path = "/v1/gadgets"
    opt = {"scope": "admin"}

    @post("/{gadget_id:str}/spin", status_code=201)
    async def spin(
        self, request: Request[Any, Any, Any], gadget_id: FromPath[str], data: JSONBody[_GadgetIn]
    ) -> dict[str, str]:
        return {"gadget_id": gadget_id}

    @get()
    async def list_all(self) -> list[str]:
        return []


@get("/public/ping", sync_to_thread=False)
def _ping() -> str:
    return "pong"


def test_a_route_added_later_is_documented_by_the_same_rules():
    from server.apidocs import describe_api
    from server.auth import ApiKeyMiddleware

    public = ["^/public/"]
    app = Litestar(
        route_handlers=[_GadgetController, _ping],
        middleware=[DefineMiddleware(ApiKeyMiddleware, exclude=public)],
        openapi_config=OpenAPIConfig(title="t", version="1"),
    )
    describe_api(app, public_paths=public)
    paths = app.openapi_schema.to_schema()["paths"]
    spin = paths["/v1/gadgets/{gadget_id}/spin"]["post"]
    assert set(spin["responses"]) == {"201", "400", "401", "403", "404", "409", "413", "422", "429"}
    assert [p["name"] for p in spin["parameters"]].count("Idempotency-Key") == 1
    assert "Idempotent-Replayed" in spin["responses"]["201"]["headers"]
    listing = paths["/v1/gadgets"]["get"]
    assert set(listing["responses"]) == {"200", "401", "403", "429"}
    ping = paths["/public/ping"]["get"]
    assert set(ping["responses"]) == {"200", "429"} and ping["security"] == []
