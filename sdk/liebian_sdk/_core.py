"""The request-building core shared by `Client` and `AsyncClient`.

A resource method is written once, as a function that turns its arguments into a `Call` (method,
path, query, encoded body, decoder). The `endpoint` descriptor hands that `Call` to the resource's
runner: the sync runner returns the decoded value, the async runner a coroutine of it. Type
checkers see `Callable[P, T]` on a `Resource[Sync]` and `Callable[P, Coroutine[..., T]]` on a
`Resource[Async]`, with the method's own parameters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, overload
from urllib.parse import quote

import msgspec

P = ParamSpec("P")
T = TypeVar("T")

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: Backoff: full jitter over min(CAP, BASE * 2**attempt) seconds.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
#: A Retry-After longer than this is not waited for: the error is raised with `retry_after` set.
MAX_RETRY_AFTER = 60.0

_encode = msgspec.json.Encoder().encode
_decoders: dict[type[Any], Callable[[bytes], Any]] = {}


def decoder(model: type[T]) -> Callable[[bytes], T]:
    """The JSON decoder for `model`, built once per model."""
    try:
        return _decoders[model]
    except KeyError:
        decode = _decoders[model] = msgspec.json.Decoder(model).decode
        return decode


def raw(content: bytes) -> bytes:
    """The 'decoder' of binary responses (posters, exports)."""
    return content


_UNITS = {
    "_fen": "an int number of fen (分), e.g. 19900 for ¥199.00",
    "_bps": ("an int number of basis points (1 bp = 0.01%), e.g. 1000 for 10%"),
}


def check_integers(value: Any, path: str = "") -> None:
    """Refuse anything but an `int` for money (`*_fen`) and rates (`*_bps`), before sending.

    A float, a string, a bool or a Decimal there is a caller bug: yuan passed as fen is off by
    100x, and the server refuses them anyway (422). Raises TypeError naming the argument.
    """
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, msgspec.Struct):
        items = ((name, getattr(value, name)) for name in value.__struct_fields__)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_integers(item, f"{path}[{index}]")
        return
    else:
        return
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        unit = _UNITS.get(str(key)[-4:])
        if unit is None:
            check_integers(item, here)
        elif isinstance(item, list | tuple):
            for index, element in enumerate(item):
                _check_int(element, f"{here}[{index}]", unit)
        elif item is not None:
            _check_int(item, here, unit)


def _check_int(value: Any, path: str, unit: str) -> None:
    if type(value) is not int:  # bool is an int subclass, and True is not 1 fen
        raise TypeError(f"{path} must be {unit}; got {type(value).__name__} {value!r}")


class Call(Generic[T]):
    """One logical API call, before it is sent (and possibly retried)."""

    __slots__ = ("body", "content_type", "decode", "idempotency_key", "method", "params", "path")

    def __init__(
        self,
        method: str,
        path: str,
        decode: Callable[[bytes], T],
        *,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        idempotency_key: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.decode = decode
        self.params = params
        if json is not None:
            check_integers(json)
        self.body = content if json is None else _encode(json)
        self.content_type = content_type
        self.idempotency_key = idempotency_key

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS


class Runner(Protocol):
    """What a resource needs from its client: run a `Call` (sync: its value; async: a coroutine)."""

    def run(self, call: Call[T], /) -> Any: ...


class Sync:
    """Marker: resources of a `Client` return values."""


class Async:
    """Marker: resources of an `AsyncClient` return coroutines."""


M = TypeVar("M", Sync, Async)


class Resource(Generic[M]):
    """A group of endpoints (`client.orders`, `client.links`...) bound to one client's runner."""

    __slots__ = ("_runner",)

    def __init__(self, runner: Runner) -> None:
        self._runner = runner


class endpoint(Generic[P, T]):  # lower case: it is used as a decorator, like `property`
    """Turn a `Call` builder into a method of both sync and async resources."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type[Any] | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: Resource[Async], owner: type[Any] | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        build, run = self._build, obj._runner.run  # pyright: ignore[reportPrivateUsage]

        def method(*args: Any, **kwargs: Any) -> Any:
            return run(build(obj, *args, **kwargs))

        method.__doc__ = self.__doc__
        return method


def segment(value: str | int) -> str:
    """One path segment, percent-encoded ('/' included); empty ids are a caller bug."""
    text = str(value)
    if not text:
        raise ValueError("an id in the path may not be empty")
    return quote(text, safe="")


def rfc3339(value: datetime | str) -> str:
    """An aware datetime or an RFC 3339 string, as RFC 3339 with an offset.

    Naive datetimes are refused: the server would have to guess the zone, and the program's
    zone (Asia/Shanghai by default) is rarely the one the caller meant.
    """
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware (RFC 3339 with an offset): {value!r}")
    return parsed.isoformat()


def compact(**fields: Any) -> dict[str, Any]:
    """The fields that were given (None means: leave it to the server)."""
    return {key: value for key, value in fields.items() if value is not None}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    current = now or datetime.now(when.tzinfo)
    return max(0.0, (when - current).total_seconds())


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff before retry number `attempt + 1`."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    return random.uniform(0.0, ceiling)  # noqa: S311 - jitter, not a secret
