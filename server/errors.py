"""Domain errors and the one place that turns any error into ``application/problem+json``.

Hierarchy::

    ServiceError                 a request the service refuses, with a status and a reason
    ├── DuplicateKey (400)       a JSON object names the same key twice
    ├── NestedTooDeep (400)      JSON nested deeper than the decoder's recursion limit
    ├── InvalidInput (422)       names the field(s) and the fix
    ├── NotFound (404)           also what another tenant's object looks like
    ├── Conflict (409)           idempotency-key reuse, replay with another body, state races
    ├── Unprocessable (422)      valid shape, impossible in the current state (over-refund ...)
    └── RateLimited (429)        over a rate limit; ``Retry-After`` says when to come back

Handlers raise these; :func:`exception_handlers` maps them, Litestar's own HTTP exceptions and
msgspec validation errors to problem documents ``{type, title, status, detail, errors}``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)

__all__ = [
    "FEN_MESSAGE",
    "Conflict",
    "DuplicateKey",
    "FieldError",
    "InvalidInput",
    "NestedTooDeep",
    "NotFound",
    "Problem",
    "RateLimited",
    "ServiceError",
    "Unprocessable",
    "exception_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("liebian.errors")


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = msgspec.field(default_factory=list)


class ServiceError(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(ServiceError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [FieldError(field, message)])


class DuplicateKey(ServiceError):
    title = "Duplicate key"
    slug = "duplicate-key"

    def __init__(self, field: str) -> None:
        key = field.rsplit(".", 1)[-1]
        super().__init__(
            f"the key {key!r} appears more than once in the same JSON object ({field}); "
            "send each field once",
            [FieldError(field, "appears more than once in the same object; send it once")],
        )


class NestedTooDeep(ServiceError):
    title = "JSON nested too deeply"
    slug = "nested-too-deep"

    def __init__(self) -> None:
        message = "is nested too deeply (several hundred levels); no request needs that"
        super().__init__(f"body: {message}", [FieldError("body", message)])


class NotFound(ServiceError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Unprocessable(ServiceError):
    status = 422
    title = "Unprocessable"
    slug = "unprocessable"


class RateLimited(ServiceError):
    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after_s)}


_encoder = msgspec.json.Encoder()


def problem_response(
    status: int,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    problem = Problem(
        type=f"https://liebian.dev/problems/{slug or re.sub(r'[^a-z]+', '-', title.lower())}",
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
    )
    return Response(
        _encoder.encode(problem), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[bytes]:
    return problem_response(
        exc.status, exc.title, exc.detail, exc.errors, exc.slug, headers=exc.headers
    )


_MSGSPEC_PATH = re.compile(r" - at `\$\.?(.*)`$")
_NOT_AN_INT = re.compile(r"^Expected `int(?: \| null)?`, got `(\w+)`$")
_INT_BOUND = re.compile(r"^Expected `int(?: \| null)?` ([<>]=? -?\d+)$")
FEN_MESSAGE = "must be an integer number of fen (分), e.g. 19900 for ¥199.00"
_JSON_TYPES = {"str": "string", "float": "decimal number", "bool": "boolean"}


def _integer_message(key: str, message: str) -> str:
    """Say "integer fen" for money and "JSON integer" for counts, instead of msgspec's terms."""
    fen = key.endswith("_fen")
    not_int = _NOT_AN_INT.match(message)
    if not_int:
        got = _JSON_TYPES.get(not_int.group(1), not_int.group(1))
        if fen:
            return f"{FEN_MESSAGE}; got a {got}"
        return f"must be a JSON integer such as 7, not a {got} (no quotes, decimals or exponents)"
    bound = _INT_BOUND.match(message)
    if bound and fen:
        return f"must be an integer number of fen (分) {bound.group(1)}, e.g. 19900 for ¥199.00"
    return message


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")


def _field_of(item: dict[str, Any]) -> tuple[str, str]:
    """The field a Litestar/msgspec validation message is about, and the message itself."""
    message = str(item.get("message", "invalid value"))
    key = str(item.get("key") or "")
    match = _MSGSPEC_PATH.search(message)
    if match:
        message = message[: match.start()]
        key = match.group(1) or key
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        prefix = "" if key in ("", "data", "body") else key + "."
        key = prefix + unknown.group(1)
        message = "is not a field of this request; remove it (field names are snake_case)"
    missing = _MISSING_FIELD.search(message)
    if missing:
        prefix = "" if key in ("", "data", "body") else key + "."
        key = prefix + missing.group(1)
        message = "is required"
    if key == "data":
        key = "body"
    return key or "body", _integer_message(key, message)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [FieldError(*_field_of(item)) for item in extra if isinstance(item, dict)]
    if not errors:
        detail = str(exc.detail)
        match = _MSGSPEC_PATH.search(detail)
        field = match.group(1) if match else "body"
        errors = [FieldError(field or "body", detail)]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem_response(422, "Invalid input", detail, errors, "invalid-input")


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    detail = str(exc.detail)
    errors = None
    if status == 400 and "malformed" in detail.lower():
        errors = [FieldError("body", detail + "; send a JSON object")]
        return problem_response(400, "Malformed JSON", detail, errors, "malformed-json")
    return problem_response(
        status, titles.get(status, "HTTP error"), detail, errors, headers=headers
    )


def _text_encoding(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # PostgreSQL text cannot hold NUL (\u0000); nothing was written (the transaction rolled back).
    detail = "a text value contains a NUL character (\\u0000); remove it"
    return problem_response(
        422, "Invalid input", detail, [FieldError("body", detail)], "invalid-input"
    )


def _recursion(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    if "deserializ" not in str(exc):  # not msgspec decoding a request: a bug, logged
        return _unexpected(request, exc)
    return _service_error(request, NestedTooDeep())


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    _log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "Internal server error",
        "An unexpected error occurred; it has been logged.",
    )


def exception_handlers() -> dict[type[Exception] | int, Any]:
    return {
        ServiceError: _service_error,
        ValidationException: _validation_error,
        NotAuthorizedException: _http_error,
        PermissionDeniedException: _http_error,
        HTTPException: _http_error,
        asyncpg.CharacterNotInRepertoireError: _text_encoding,
        asyncpg.UntranslatableCharacterError: _text_encoding,
        RecursionError: _recursion,
        Exception: _unexpected,
    }
