"""Hostile and sloppy input: money and counts are JSON integers only, duplicate keys, crafted
cursors and deep nesting are clear 4xx problems, never a silent coercion or a 500."""

from __future__ import annotations

import base64
import re
from typing import Any

import msgspec
import pytest

from tests.conftest import TenantKeys
from tests.server.test_orders import PAID
from tests.server.test_referrals import register

# Numbers a client might send where the API wants a JSON integer (raw JSON text).
NOT_INTEGERS = ['"199.00"', '"1e4"', '"100"', "100.0", "1e4", "true"]
_BAD = "__not_an_integer__"


def _body_routes(app: Any) -> list[tuple[str, str, type]]:
    """(method, path, body type) of every route that takes a JSON body."""
    routes = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            for method in sorted(handler.http_methods):
                path = re.sub(r"\{[^}]+\}", "x", route.path)
                routes.append((method, path, data.annotation))
    return routes


def _int_paths(tp: Any) -> list[list[str | int]]:
    """Every path to an integer inside a body type: ['prizes', 0, 'amount_fen'], ..."""

    def walk(info: Any, path: list[str | int]) -> list[list[str | int]]:
        if isinstance(info, msgspec.inspect.IntType):
            return [path]
        if isinstance(info, msgspec.inspect.UnionType):
            return [p for t in info.types for p in walk(t, path)]
        if isinstance(info, msgspec.inspect.ListType):
            return walk(info.item_type, [*path, 0])
        if isinstance(info, msgspec.inspect.StructType):
            return [p for f in info.fields for p in walk(f.type, [*path, f.encode_name])]
        return []

    return walk(msgspec.inspect.type_info(tp), [])


def _dotted(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _minimal_body(path: list[str | int], raw_value: str) -> bytes:
    """Only the path to the field: msgspec reports a wrong type before a missing field."""
    value: Any = _BAD
    for part in reversed(path):
        value = [value] if isinstance(part, int) else {part: value}
    return msgspec.json.encode(value).replace(f'"{_BAD}"'.encode(), raw_value.encode())


def _cases() -> list[Any]:
    from server.app import create_app
    from server.settings import load_settings

    app = create_app(load_settings({"LIEBIAN_DATABASE_URL": "sqlite:///tmp/unused.db"}))
    cases = []
    for method, path, body_type in _body_routes(app):
        for int_path in _int_paths(body_type):
            field = _dotted(int_path)
            cases.append(pytest.param(method, path, int_path, id=f"{method} {path} {field}"))
    return cases


INT_FIELDS = _cases()


def send(tenant: TenantKeys, method: str, path: str, content: bytes, **headers: str) -> Any:
    return tenant.client.request(
        method,
        path,
        content=content,
        headers=tenant.headers("admin", **{"content-type": "application/json", **headers}),
    )


def test_the_cases_cover_every_money_field():
    covered = {case.id.split(" ")[-1] for case in INT_FIELDS}
    for field in ("amount_fen", "payout_threshold_fen", "prizes[0].amount_fen",
                  "red_packet.budget_fen", "red_packet.min_fen", "red_packet.max_fen",
                  "red_packet.amount_fen", "commission_bps[0]", "freeze_days"):
        assert field in covered


@pytest.mark.parametrize("raw", NOT_INTEGERS)
@pytest.mark.parametrize(("method", "path", "int_path"), INT_FIELDS)
def test_every_integer_body_field_takes_only_a_json_integer(tenant, method, path, int_path, raw):
    response = send(tenant, method, path, _minimal_body(int_path, raw))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    error = response.json()["errors"][0]
    assert error["field"] == _dotted(int_path), response.text
    if str(int_path[-1]).endswith("_fen"):
        assert "integer number of fen" in error["message"], response.text
    else:
        assert "integer" in error["message"], response.text


@pytest.mark.parametrize("raw", NOT_INTEGERS)
def test_an_order_in_yuan_text_is_refused_and_nothing_is_written(tenant, raw):
    body = (
        f'{{"order_id": "yuan-1", "user_id": "u1", "amount_fen": {raw},'
        f' "paid_at": "{PAID.isoformat()}"}}'
    )
    response = send(tenant, "POST", "/v1/orders", body.encode())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "amount_fen"
    assert "19900 for ¥199.00" in problem["errors"][0]["message"]
    assert tenant.get("/v1/orders/yuan-1/explain", scope="sdk").status_code == 404


def test_integers_and_datetimes_still_decode(tenant):
    body = f'{{"order_id":"ok-1","user_id":"u1","amount_fen":19900,"paid_at":"{PAID.isoformat()}"}}'
    response = send(tenant, "POST", "/v1/orders", body.encode())
    assert response.status_code == 201, response.text
    assert tenant.get("/v1/orders/ok-1/explain").json()["amount_fen"] == 19900


# ------------------------------------------------------------------ query integers

QUERY_INT_ROUTES = [
    ("/v1/distributors", "limit"),
    ("/v1/distributors/d1/ledger", "limit"),
    ("/v1/distributors/d1/team", "limit"),
    ("/v1/distributors/d1/team", "level"),
    ("/v1/campaigns", "limit"),
    ("/v1/campaigns/x/leaderboard", "limit"),
    ("/v1/campaigns/x/leaderboard/d1", "around"),
    ("/v1/settlements", "limit"),
    ("/v1/settlements/x", "limit"),
    ("/v1/posters/d1/url", "ttl"),
    ("/v1/webhook-endpoints", "limit"),
    ("/v1/webhook-endpoints/x/deliveries", "limit"),
    ("/v1/distributors/d1/withdrawals", "limit"),
    ("/v1/withdrawals", "limit"),
    ("/v1/links/x/wxacode", "width"),
]


@pytest.mark.parametrize("value", ["1.5", "1e2", "2.0", "0x10", "", " 1", "1_0"])
@pytest.mark.parametrize(("path", "param"), QUERY_INT_ROUTES)
def test_integer_query_parameters_refuse_decimals_and_exponents(tenant, path, param, value):
    response = tenant.get(path, params={param: value})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == param, response.text


def test_integer_query_parameters_parse_from_digits(tenant):
    register(tenant, "d1")
    assert tenant.get("/v1/distributors", params={"limit": "2"}).status_code == 200
    assert tenant.get("/v1/distributors/d1/team", params={"level": "2"}).status_code == 200


def test_every_integer_query_parameter_is_tested(client):
    found = set()
    for route in client.app.routes:
        if route.path.startswith("/console"):
            continue  # HTML pages: tests/server/test_console.py checks their query integers
        for handler in getattr(route, "route_handlers", []):
            for name, field in handler.parsed_fn_signature.parameters.items():
                kind = getattr(field.kwarg_definition, "param_type", None)
                if field.annotation is int and getattr(kind, "value", "query") == "query":
                    found.add((re.sub(r"\{[^}]+\}", "x", route.path), name))
    tested = {(re.sub(r"/d1(?=/|$)", "/x", p), n) for p, n in QUERY_INT_ROUTES}
    assert found == tested


# ------------------------------------------------------------------ duplicate keys


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"order_id":"dup-1","user_id":"u","amount_fen":1,"amount_fen":100000,"paid_at":"%s"}',
         "amount_fen"),
        ('{"order_id":"dup-1","user_id":"u","amount_fen":1,"amount\\u005ffen":100000,'
         '"paid_at":"%s"}', "amount_fen"),
        ('{"order_id":"dup-1","order_id":"dup-2","user_id":"u","amount_fen":1,"paid_at":"%s"}',
         "order_id"),
    ],
)
def test_duplicate_keys_on_an_order_are_400(tenant, body, key):
    response = send(tenant, "POST", "/v1/orders", (body % PAID.isoformat()).encode())
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == key
    assert "more than once" in problem["detail"]
    assert tenant.get("/v1/orders/dup-1/explain").status_code == 404


def test_duplicate_keys_are_400_on_every_json_body(tenant):
    prizes = '[{"rank_from":1,"rank_to":1,"amount_fen":100,"amount_fen":10000}]'
    body = (
        '{"name":"c","starts_at":"2026-06-01T00:00:00+00:00","ends_at":"2026-07-01T00:00:00+00:00",'
        f'"metric":"invites","prizes":{prizes}}}'
    )
    response = send(tenant, "POST", "/v1/campaigns", body.encode())
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "prizes[0].amount_fen"
    response = send(tenant, "PUT", "/v1/program", b'{"freeze_days":1,"freeze_days":2}')
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "freeze_days"


def test_the_same_key_in_different_objects_is_fine(tenant):
    prizes = (
        '[{"rank_from":1,"rank_to":1,"amount_fen":8800},'
        '{"rank_from":2,"rank_to":3,"amount_fen":3800}]'
    )
    body = (
        '{"name":"c \\"x\\": y","starts_at":"2026-06-01T00:00:00+00:00",'
        '"ends_at":"2026-07-01T00:00:00+00:00","metric":"invites","prizes":' + prizes + "}"
    )
    response = send(tenant, "POST", "/v1/campaigns", body.encode())
    assert response.status_code == 201, response.text
    assert [p["amount_fen"] for p in response.json()["prizes"]] == [8800, 3800]


# ------------------------------------------------------------------ cursors and nesting

LIST_ROUTES = [
    "/v1/distributors",
    "/v1/distributors/d1/ledger",
    "/v1/distributors/d1/team",
    "/v1/campaigns",
    "/v1/settlements",
    "/v1/settlements/{settlement}",
    "/v1/webhook-endpoints",
    "/v1/webhook-endpoints/{endpoint}/deliveries",
    "/v1/distributors/d1/withdrawals",
    "/v1/withdrawals",
]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


CRAFTED_CURSORS = [
    _b64('["x","y"]'),
    _b64("[1e30]"),
    _b64("[1e400]"),
    _b64("[99999999999999999999999999]"),
    _b64("[1.5]"),
    _b64("[null]"),
    _b64("[true]"),
    _b64('[1, "a", 2]'),
    _b64("[]"),
    _b64('{"a": 1}'),
    _b64('"text"'),
    _b64("12"),
    _b64("[" * 1000 + "]" * 1000),
    _b64('["' + "x" * 5000 + '"]'),
    _b64('[1, "\\u0000"]'),
    "garbage!!",
    "%%%",
    "a",
]


@pytest.fixture
def list_paths(tenant: TenantKeys) -> dict[str, str]:
    register(tenant, "d1")
    response = tenant.post("/v1/settlements", {"cutoff": PAID.isoformat()})
    assert response.status_code == 201, response.text
    hook = tenant.post("/v1/webhook-endpoints", {"url": "https://hooks.example.com/strict",
                                                 "events": ["settlement.paid"]})  # fmt: skip
    assert hook.status_code == 201, hook.text
    ids = {"settlement": response.json()["id"], "endpoint": hook.json()["id"]}
    return {route: route.format(**ids) for route in LIST_ROUTES}


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_crafted_cursors_are_422_on_every_list(tenant, list_paths, route):
    for cursor in CRAFTED_CURSORS:
        response = tenant.get(list_paths[route], params={"cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_a_real_cursor_still_pages(tenant, list_paths, route):
    response = tenant.get(list_paths[route], params={"limit": 1})
    assert response.status_code == 200, response.text


def test_every_list_route_is_tested(client):
    found = set()
    for route in client.app.routes:
        if route.path.startswith("/console"):
            continue  # HTML pages: tests/server/test_console.py checks their cursors
        for handler in getattr(route, "route_handlers", []):
            if "cursor" in handler.parsed_fn_signature.parameters:
                found.add(re.sub(r"\{[^}]+\}", "x", route.path))
    tested = {re.sub(r"/(d1|\{settlement\}|\{endpoint\})(?=/|$)", "/x", r) for r in LIST_ROUTES}
    assert found == tested


DEEP = 1000


@pytest.mark.parametrize(
    "body",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        '{"order_id":' + "[" * DEEP + "]" * DEEP + "}",
        '{"references":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
    ],
    ids=["array", "object", "in-field", "in-map"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/orders"),
        ("POST", "/v1/referrals"),
        ("PUT", "/v1/program"),
        ("POST", "/v1/campaigns"),
        ("POST", "/v1/settlements/x/paid"),
        ("PUT", "/v1/poster-templates/deep"),
    ],
)
def test_json_nested_1000_deep_is_a_4xx(tenant, method, path, body):
    response = send(tenant, method, path, body.encode())
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
