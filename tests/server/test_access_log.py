"""The access line: one JSON object per request, written straight to the JSON handler's stream
when it is the only handler (the fast path), through :mod:`logging` otherwise (same line)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest

from server import observability
from server.observability import _JsonFormatter, _JsonHandler, make_before_send, stamp


@pytest.fixture
def liebian_logger() -> Any:
    root = logging.getLogger("liebian")
    saved = (root.handlers[:], root.level, root.propagate)
    stream = io.StringIO()
    handler = _JsonHandler(stream)
    handler.setFormatter(_JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    yield root, stream
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


class _Auth:
    tenant_id = "tn_a"


def _respond(status: int = 201) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/orders",
                             "headers": [(b"x-request-id", b"req-12345678")], "auth": _Auth()}
    stamp(scope)
    message: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": []}
    asyncio.run(make_before_send(True)(message, scope))  # type: ignore[arg-type]
    return message


def _fields(line: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(line)
    assert out.pop("ms") >= 0 and isinstance(out.pop("ts"), float)
    return out


EXPECTED = {"level": "info", "logger": "liebian.access", "msg": "request",
            "request_id": "req-12345678", "method": "POST", "path": "/v1/orders", "status": 201,
            "tenant_id": "tn_a"}


def test_the_line_is_written_directly_when_ours_is_the_only_handler(liebian_logger, monkeypatch):
    root, stream = liebian_logger
    # pytest's own capture handlers may have joined since the fixture ran: ours alone here
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if isinstance(h, _JsonHandler)])
    monkeypatch.setattr(observability.access_log, "info", _fail)  # logging is not used
    message = _respond()
    assert (b"x-request-id", b"req-12345678") in message["headers"]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and _fields(lines[0]) == EXPECTED


def _fail(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the access line went through logging")


def test_another_handler_gets_the_same_line_through_logging(liebian_logger):
    root, stream = liebian_logger
    other = io.StringIO()
    extra = logging.StreamHandler(other)
    extra.setFormatter(_JsonFormatter())
    root.addHandler(extra)
    _respond()
    assert _fields(other.getvalue()) == EXPECTED
    assert _fields(stream.getvalue()) == EXPECTED


def test_no_line_when_the_access_logger_is_above_info(liebian_logger):
    _, stream = liebian_logger
    observability.access_log.setLevel(logging.WARNING)
    try:
        _respond()
    finally:
        observability.access_log.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _direct(root: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> _CountingStream:
    stream = _CountingStream()
    handler = _JsonHandler(stream)
    handler.setFormatter(_JsonFormatter())
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(observability.access_log, "info", _fail)
    return stream


def _scope(request_id: bytes) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/orders",
                             "headers": [(b"x-request-id", request_id)], "auth": _Auth()}
    stamp(scope)
    return scope


def test_the_lines_of_one_loop_turn_are_written_together_before_the_loop_waits(
    liebian_logger, monkeypatch
):
    root, _ = liebian_logger
    stream = _direct(root, monkeypatch)
    before_send = make_before_send(True)
    ids = [f"req-{n:08d}".encode() for n in range(3)]

    async def main() -> list[int]:
        for request_id in ids:  # three responses started in one turn
            message = {"type": "http.response.start", "status": 201, "headers": []}
            await before_send(message, _scope(request_id))  # type: ignore[arg-type]
        in_turn = stream.writes
        await asyncio.sleep(0)  # the loop's next turn
        after_turn = stream.writes
        message = {"type": "http.response.start", "status": 201, "headers": []}
        await before_send(message, _scope(b"req-99999999"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return [in_turn, after_turn, stream.writes]

    assert asyncio.run(main()) == [0, 1, 2]
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [
        "req-00000000", "req-00000001", "req-00000002", "req-99999999",
    ]
    assert _fields(lines[0]) == EXPECTED | {"request_id": "req-00000000"}


def test_off_the_event_loop_the_line_is_written_at_once(liebian_logger, monkeypatch):
    root, _ = liebian_logger
    stream = _direct(root, monkeypatch)
    observability._log_access({"request_id": "req-00000001", "method": "GET", "path": "/x",
                               "status": 200, "ms": 0.0, "tenant_id": None})
    assert stream.writes == 1 and json.loads(stream.getvalue())["path"] == "/x"
