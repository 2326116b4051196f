"""Small shared helpers: time in microseconds, ids, JSON responses, cursors."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Response

from server.errors import InvalidInput

__all__ = [
    "DistributorId",
    "Limit",
    "decode_cursor",
    "encode_cursor",
    "from_us",
    "json_response",
    "new_id",
    "now_us",
    "to_us",
]

# The tenant's own ids (openid/unionid, order numbers): printable, no spaces, slashes or
# control characters (PostgreSQL text cannot hold NUL).
ExternalId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\s/\x00-\x1f\x7f]+$")
]
DistributorId = ExternalId
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]

_encoder = msgspec.json.Encoder()


def now_us() -> int:
    return time.time_ns() // 1000


_EARLIEST_US = 0  # 1970-01-01
_LATEST_US = 7_258_118_400_000_000  # 2200-01-01


def to_us(moment: datetime, field: str = "datetime") -> int:
    """Epoch microseconds of an aware datetime; outside 1970..2200 is a 422 naming ``field``."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if not _EARLIEST_US <= us < _LATEST_US:
        raise InvalidInput(
            field, "must be between 1970-01-01 and 2200-01-01 (RFC 3339 with offset)"
        )
    return us


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


_ALPHABET = "0123456789abcdefghijkmnpqrstuvwxyz"


def new_id(prefix: str, length: int = 16) -> str:
    """An opaque, unguessable id such as ``cmp_4k2n...``."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class JsonBytes(Response[bytes]):
    """A JSON body already encoded (every API answer): made and sent without Litestar's generic
    steps (header and cookie merging, type encoders, rendering, its header structure), which
    cost about as much as the rest of a ``GET /v1/program`` handler. A route or layer that adds
    headers, cookies or a background task, a HEAD request, or a status without a body takes
    the generic path."""

    __slots__ = ()

    def __init__(
        self, body: bytes, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.content = body
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.headers = headers if headers is not None else {}
        self.media_type = "application/json"
        self.status_code = status_code
        self.response_type_encoders = {}

    def to_asgi_response(self, app: Any, request: Any, **kwargs: Any) -> Any:
        status = self.status_code or 200
        if (
            self.cookies
            or self.background
            or any(kwargs.get(k) for k in _GENERIC)
            or not 200 <= status < 600
            or status in (204, 304)
        ):
            return super().to_asgi_response(app, request, **kwargs)
        headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1"))
                   for k, v in self.headers.items()]  # fmt: skip
        names = {name for name, _ in headers}
        if b"content-type" not in names:
            headers.append((b"content-type", b"application/json"))
        if b"content-length" not in names:
            headers.append((b"content-length", str(len(self.content)).encode()))
        return _Answer(status, headers, self.content)


# to_asgi_response's arguments that only the generic path handles
_GENERIC = ("background", "cookies", "encoded_headers", "headers", "is_head_response")


class _Answer:
    """The ASGI side of a :class:`JsonBytes`: the start event, then the body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return JsonBytes(_encoder.encode(payload), status_code, headers)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(_encoder.encode(list(values))).decode().rstrip("=")


# What a cursor may hold: ids and microsecond times (int64) and keys (text), a few of them.
_CursorInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_CursorStr = Annotated[str, msgspec.Meta(max_length=256, pattern=r"^[^\x00]*$")]
_CURSOR_PART = {int: _CursorInt, str: _CursorStr}
_cursor_decoders: dict[tuple[type, ...], msgspec.json.Decoder[Any]] = {}
MAX_CURSOR_CHARS = 2048


def _bad_cursor() -> InvalidInput:
    return InvalidInput("cursor", "is not a cursor this API returned; omit it to start over")


def decode_cursor(cursor: str | None, *shape: type) -> list[Any] | None:
    """The values of a cursor from :func:`encode_cursor`, exactly of the types in ``shape``.

    ``decode_cursor(c, int, str)`` gives ``[int, str]`` or a 422 naming ``cursor``: a crafted
    cursor (wrong arity or types, floats, ints beyond int64, not base64 or JSON) never reaches SQL.
    """
    if not cursor:
        return None
    decoder = _cursor_decoders.get(shape)
    if decoder is None:
        parts = [_CURSOR_PART[t] for t in shape]
        decoder = _cursor_decoders[shape] = msgspec.json.Decoder(
            tuple.__class_getitem__(tuple(parts)) if parts else list[_CursorInt | _CursorStr],
            strict=True,
        )
    if len(cursor) > MAX_CURSOR_CHARS:
        raise _bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = decoder.decode(raw)
    except (ValueError, msgspec.DecodeError, RecursionError):
        raise _bad_cursor() from None
    if not values:
        raise _bad_cursor()
    return list(values)
