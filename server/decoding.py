"""Strict request input for every route: JSON bodies and integer query parameters.

Litestar converts a handler's arguments with ``msgspec.convert(..., strict=False)``, which is
right for query strings but wrong for JSON: it turned ``"199.00"`` into 199 fen, ``"1e4"``
into 10000, ``100.0`` and ``"100"`` into 100. The app therefore uses :class:`StrictRequest`
(``request_class``), whose ``json()`` decodes the raw body straight into the handler's
``data`` type with ``strict=True``: a number is a JSON integer or a 422 naming the field (one
decode, as before; Litestar passes the decoded Struct through its own conversion unchanged).
The same step refuses an object that names a key twice (400), which JSON parsers otherwise
settle silently as "last one wins".

Integer query parameters (``limit``, ``level``...) arrive as text and are parsed from it, but
only from digits: :func:`check_query_integers` (the app's ``before_request``) refuses ``1.5``,
``1e3`` or ``2.0``, which msgspec's lax conversion would accept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import UnionType
from typing import Any, Union, get_args, get_origin

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException, ValidationException
from litestar.handlers import HTTPRouteHandler

from server.errors import DuplicateKey, InvalidInput, NestedTooDeep

__all__ = ["StrictRequest", "check_query_integers", "duplicate_key"]


class _BodyDecoder(msgspec.Struct, frozen=True):
    decode: Callable[[bytes], Any]
    # '"name"' of every key the body type knows: a duplicated key repeats one of them
    keys: tuple[bytes, ...]
    # free-form maps (any key): the duplicate check cannot be narrowed to known names
    any_keys: bool


_decoders: dict[HTTPRouteHandler, _BodyDecoder | None] = {}
_query_ints: dict[HTTPRouteHandler, tuple[str, ...]] = {}


_SEQUENCES = (
    msgspec.inspect.ListType,
    msgspec.inspect.SetType,
    msgspec.inspect.FrozenSetType,
    msgspec.inspect.VarTupleType,
)
_LEAVES = (
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.StrType,
    msgspec.inspect.BoolType,
    msgspec.inspect.NoneType,
    msgspec.inspect.LiteralType,
    msgspec.inspect.EnumType,
    msgspec.inspect.DateTimeType,
    msgspec.inspect.DateType,
    msgspec.inspect.TimeType,
    msgspec.inspect.TimeDeltaType,
    msgspec.inspect.UUIDType,
    msgspec.inspect.DecimalType,
    msgspec.inspect.BytesType,
)


def _known_keys(tp: Any) -> tuple[set[bytes], bool]:
    """The quoted key names a body of type ``tp`` can hold, and whether it can hold others."""
    keys: set[bytes] = set()
    any_keys = False
    seen: set[Any] = set()
    todo = [msgspec.inspect.type_info(tp)]
    while todo:
        info = todo.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                continue
            seen.add(info.cls)
            for field in info.fields:
                keys.add(b'"' + field.encode_name.encode() + b'"')
                todo.append(field.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            todo.extend(info.types)
        elif isinstance(info, _SEQUENCES):
            todo.append(info.item_type)
        elif isinstance(info, msgspec.inspect.TupleType):
            todo.extend(info.item_types)
        elif not isinstance(info, _LEAVES):  # maps, Any, dataclasses...: keys of any name
            any_keys = True
    return keys, any_keys


def _body_decoder(handler: HTTPRouteHandler) -> _BodyDecoder | None:
    try:
        return _decoders[handler]
    except KeyError:
        data = handler.parsed_fn_signature.parameters.get("data")
        decoder = None
        if data is not None:
            keys, any_keys = _known_keys(data.annotation)
            decoder = _BodyDecoder(
                msgspec.json.Decoder(data.annotation, strict=True).decode,
                tuple(sorted(keys)),
                any_keys,
            )
        _decoders[handler] = decoder
        return decoder


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as the (key, value) pairs it was written with."""


def duplicate_key(body: bytes) -> str | None:
    """The path (``prizes[0].amount_fen``) of the first key written twice in one object."""
    try:
        tree = json.loads(body, object_pairs_hook=_Pairs)
    except ValueError:
        return None  # not JSON: msgspec names the fault
    except RecursionError:
        raise NestedTooDeep() from None
    todo: list[tuple[str, Any]] = [("", tree)]
    while todo:
        path, node = todo.pop(0)
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, value in node:
                here = f"{path}.{key}" if path else key
                if key in seen:
                    return here
                seen.add(key)
                todo.append((here, value))
        elif isinstance(node, list):
            todo.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
    return None


def _check_duplicates(body: bytes, decoder: _BodyDecoder) -> None:
    # A key written twice repeats its quoted name in the raw text (an escaped name has a
    # backslash): only then is the body parsed a second time to find which key it was.
    if not (decoder.any_keys or b"\\" in body or max(map(body.count, decoder.keys), default=0) > 1):
        return
    key = duplicate_key(body)
    if key is not None:
        raise DuplicateKey(key)


class StrictRequest(Request[Any, Any, Any]):
    """A request whose JSON body decodes strictly into the handler's ``data`` type."""

    _strict_data: Any = msgspec.UNSET

    async def json(self) -> Any:
        decoder = _body_decoder(self.route_handler)
        if decoder is None:
            return await super().json()
        if self._strict_data is msgspec.UNSET:
            body = await self.body()
            _check_duplicates(body, decoder)
            try:
                self._strict_data = decoder.decode(body)
            except msgspec.ValidationError as exc:
                raise ValidationException(
                    detail=str(exc), extra=[{"key": "", "message": str(exc)}]
                ) from None
            except msgspec.DecodeError as exc:
                raise SerializationException(str(exc)) from None
            except RecursionError:
                raise NestedTooDeep() from None
        return self._strict_data


_DIGITS = re.compile(r"-?[0-9]{1,18}")


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    args = set(get_args(annotation))
    return get_origin(annotation) in (Union, UnionType) and args == {int, type(None)}


def _int_query_names(handler: HTTPRouteHandler) -> tuple[str, ...]:
    try:
        return _query_ints[handler]
    except KeyError:
        in_path = set(re.findall(r"\{(\w+)", " ".join(handler.paths)))
        names = []
        for name, field in handler.parsed_fn_signature.parameters.items():
            kind = getattr(field.kwarg_definition, "param_type", None)
            is_query = kind is None or kind.value == "query"
            if _is_int(field.annotation) and is_query and name not in in_path:
                names.append(getattr(field.kwarg_definition, "query", None) or name)
        _query_ints[handler] = found = tuple(names)
        return found


async def check_query_integers(request: Request[Any, Any, Any]) -> None:
    """Integer query parameters are written with digits only (``?limit=50``)."""
    names = _int_query_names(request.route_handler)
    if not names:
        return
    query = request.query_params
    for name in names:
        value = query.get(name)
        if value is not None and not _DIGITS.fullmatch(value):
            raise InvalidInput(
                name, f"must be a whole number written with digits only, e.g. 50 (got {value!r})"
            )
