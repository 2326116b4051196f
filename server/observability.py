"""Request ids and one structured access-log line per request.

The response side is an app-level ``before_send`` hook, so it also sees the responses
Litestar's exception handling sends after a middleware raised (401, 403 ...); the start time is
stamped by the outermost route middleware (:class:`server.auth.ApiKeyMiddleware`)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

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


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger("liebian")
    if any(getattr(h, "_liebian", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    handler._liebian = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


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
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id.decode(),
                        "method": scope.get("method", ""),
                        "path": scope["path"],
                        "status": message["status"],
                        "ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
                        "tenant_id": getattr(auth, "tenant_id", None),
                    }
                },
            )

    return before_send
