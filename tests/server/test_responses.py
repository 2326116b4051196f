"""API answers (server.common.JsonBytes): sent directly, with the same status, headers and
body as Litestar's generic response would send; anything unusual takes the generic path."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar.response.base import ASGIResponse

from server.common import JsonBytes, json_response


def _sent(response: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def send(event: dict[str, Any]) -> None:
        events.append(event)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(response({"type": "http"}, receive, send))
    return events


def _generic(body: bytes, status: int, headers: dict[str, str] | None) -> list[dict[str, Any]]:
    return _sent(ASGIResponse(body=body, status_code=status, headers=headers,
                              media_type="application/json"))  # fmt: skip


def test_the_direct_answer_equals_the_generic_one():
    for status, headers in ((200, None), (201, {"Idempotent-Replayed": "true"}), (409, {})):
        body = msgspec.json.encode({"a": [1, 2], "text": "中文"})
        direct = _sent(JsonBytes(body, status, headers).to_asgi_response(None, None))
        generic = _generic(body, status, headers)
        assert direct[0]["status"] == generic[0]["status"] == status
        assert sorted(direct[0]["headers"]) == sorted(generic[0]["headers"])
        assert direct[1] == generic[1]


def test_unusual_answers_take_the_generic_path():
    answer = JsonBytes(b"{}", 200)
    head = JsonBytes(b"", 200).to_asgi_response(None, None, is_head_response=True)
    assert isinstance(head, ASGIResponse)
    assert isinstance(answer.to_asgi_response(None, None, headers={"X-Route": "1"}), ASGIResponse)
    assert isinstance(JsonBytes(b"", 204).to_asgi_response(None, None), ASGIResponse)


def test_an_api_answer_over_http(tenant):
    response = tenant.get("/v1/program", scope="sdk")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-request-id"]
    assert json_response({"x": 1}).status_code == 200
