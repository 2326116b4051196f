"""Request ids and one structured access-log line per request.

The response side is an app-level ``before_send`` hook, so it also sees the responses
Litestar's exception handling sends after a middleware raised (401, 403 ...); the start time is
stamped by the outermost route middleware (:class:`server.auth.ApiKeyMiddleware`).

The access line is written straight to the JSON handler's stream when that handler is the only
one the ``liebian.access`` logger reaches: going through :mod:`logging` (a ``LogRecord``, the
caller's frame looked up through the whole ASGI stack, ``json.dumps``) cost 85-90 us of a
request whose handler takes 70 (``GET /v1/program``). The line is the same either way; with any
other handler attached (an operator's configuration, a test's capture) it goes through
:mod:`logging` as before. Direct lines are written together at the end of the event loop's
turn that produced them (:func:`_queue_line`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar.types import Message, Scope

__all__ = ["configure_logging", "make_before_send", "stamp"]

access_log = logging.getLogger("liebian.access")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs: one JSON object per line."""


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger("liebian")
    if any(isinstance(h, _JsonHandler) for h in root.handlers):
        return
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


_encode = msgspec.json.Encoder().encode


def _direct_stream() -> Any:
    """The stream to write an access line to directly, or None to go through :mod:`logging`:
    only when our JSON handler is the one handler the access logger reaches, at INFO."""
    if access_log.handlers or access_log.disabled or not access_log.isEnabledFor(logging.INFO):
        return None
    parent = access_log.parent
    if parent is None or parent.name != "liebian" or parent.disabled or parent.propagate:
        return None
    handlers = parent.handlers
    if len(handlers) != 1 or not isinstance(handlers[0], _JsonHandler):
        return None
    handler = handlers[0]
    return handler.stream if handler.level <= logging.INFO and not handler.filters else None


def _log_access(fields: dict[str, Any]) -> None:
    stream = _direct_stream()
    if stream is None:
        if access_log.isEnabledFor(logging.INFO):
            access_log.info("request", extra={"fields": fields})
        return
    line = {"ts": round(time.time(), 3), "level": "info", "logger": access_log.name,
            "msg": "request", **fields}  # fmt: skip
    _queue_line(stream, _encode(line).decode() + "\n")


# Lines waiting for the end of the current event-loop turn, per loop: (stream, lines).
_pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _queue_line(stream: Any, line: str) -> None:
    """Write ``line`` with the other access lines of this turn of the event loop: one
    ``write`` for all the responses a turn starts (a group commit wakes 16 at once). A write
    is a system call of about 8 us on this project's benchmark machine, a sixth of an
    authenticated ``GET``'s own time in process; the lines are out before the loop waits for
    anything, so none waits for later traffic."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on a loop: at once
        _write(stream, [line])
        return
    queued = _pending.get(loop)
    if queued is not None and queued[0] is stream:
        queued[1].append(line)
        return
    if queued is not None:  # the handler's stream changed: the older lines first
        _write_pending(loop)
    _pending[loop] = (stream, [line])
    loop.call_soon(_write_pending, loop)


def _write_pending(loop: asyncio.AbstractEventLoop) -> None:
    queued = _pending.pop(loop, None)
    if queued is not None:
        _write(*queued)


def _write(stream: Any, lines: list[str]) -> None:
    try:
        stream.write("".join(lines))
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stream: as logging.Handler.handleError
        pass


def _valid_request_id(value: bytes) -> bool:
    return 8 <= len(value) <= 128 and all(33 <= b < 127 for b in value)


_PROCESS = os.urandom(6).hex()
_counter = itertools.count(1)


def _request_id(scope: Scope) -> bytes:
    """The client's ``X-Request-ID`` if sane, else a new id (random per process + a counter:
    unique without a syscall per request)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _valid_request_id(value):
            return bytes(value)
    return f"{_PROCESS}{next(_counter):010x}".encode()


def stamp(scope: Scope) -> None:
    """Record when the request started (called by the outermost middleware of a route)."""
    scope.setdefault("state", {})["started"] = time.perf_counter()


def make_before_send(log_requests: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """Adds ``X-Request-ID`` to every response and logs one line per request."""

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        state = scope.setdefault("state", {})
        request_id = _request_id(scope)
        headers = list(message.get("headers") or [])
        headers.append((b"x-request-id", request_id))
        message["headers"] = headers
        if log_requests:
            started = state.get("started")
            auth = scope.get("auth")
            _log_access(
                {
                    "request_id": request_id.decode(),
                    "method": scope.get("method", ""),
                    "path": scope["path"],
                    "status": message["status"],
                    "ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
                    "tenant_id": getattr(auth, "tenant_id", None),
                }
            )

    return before_send
