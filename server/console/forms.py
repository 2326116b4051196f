"""Turning posted console forms into the API's own input Structs (and its validation)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from litestar.datastructures import UploadFile

from server.errors import InvalidInput

__all__ = ["int_field", "local_datetime", "parse_prizes", "to_struct", "text"]

T = TypeVar("T")
_INT = re.compile(r"^-?\d{1,18}$")
_PRIZE_LINE = re.compile(r"^\s*(\d{1,6})\s*(?:-\s*(\d{1,6}))?\s*[:：\s]\s*(\d{1,12})\s*$")
MAX_PRIZE_LINES = 100


def text(form: Mapping[str, str | UploadFile], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def int_field(form: Mapping[str, str | UploadFile], name: str) -> int | None:
    """An integer field; empty is None; anything but digits names the field."""
    raw = text(form, name)
    if not raw:
        return None
    if not _INT.match(raw):
        raise InvalidInput(name, "must be a whole number (digits only)")
    return int(raw)


def local_datetime(form: Mapping[str, str | UploadFile], name: str, tz: str) -> datetime | None:
    """A ``datetime-local`` input read in the program's time zone."""
    raw = text(form, name)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        raise InvalidInput(name, "must be a date and time such as 2026-12-01T09:00") from None


def parse_prizes(raw: str) -> list[dict[str, int]]:
    """Lines of ``rank_from-rank_to amount_fen`` (``1 88800``, ``2-3 38800``)."""
    prizes = []
    lines = [line for line in raw.splitlines() if line.strip()]
    if len(lines) > MAX_PRIZE_LINES:
        raise InvalidInput("prizes", f"at most {MAX_PRIZE_LINES} lines")
    for number, line in enumerate(lines, 1):
        match = _PRIZE_LINE.match(line)
        if not match:
            raise InvalidInput(
                "prizes", f"line {number}: write 'rank_from-rank_to amount_fen', e.g. 2-3 38800"
            )
        start = int(match.group(1))
        end = int(match.group(2) or start)
        prizes.append({"rank_from": start, "rank_to": end, "amount_fen": int(match.group(3))})
    return prizes


def to_struct(data: dict[str, Any], kind: type[T]) -> T:
    """``msgspec.convert`` with the API's strictness; a ValidationError names the field."""
    return msgspec.convert({k: v for k, v in data.items() if v is not None}, kind, strict=True)
