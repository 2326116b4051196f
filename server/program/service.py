"""Read and write the program; a short in-process cache serves the hot paths."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from rewards.commission import validate_commission_rates
from rewards.errors import RewardConfigError
from rewards.tiers import validate_tiers
from server.coherence import ALL, publish_invalidation, register
from server.common import from_us, now_us
from server.db import Connection
from server.errors import InvalidInput
from server.program.schemas import Program, ProgramIn
from server.settings import check_public_base_url
from server.tiers.service import tier_rules

__all__ = ["get_program", "get_program_json", "put_program", "validate_program"]

# Other workers see a changed program within this many seconds (within milliseconds when
# Redis carries invalidations, see server.coherence); this one at once.
PROGRAM_CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, Program, bytes]] = {}


def _drop(tenant_id: str, key: str) -> None:
    _cache.clear() if tenant_id == ALL else _cache.pop(tenant_id, None)


register("program", _drop)
_decoder = msgspec.json.Decoder(Program)
_encoder = msgspec.json.Encoder()
# A mini-program page path: segments of letters, digits, _ and -, joined by single slashes.
_PAGE_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


def validate_program(program: ProgramIn) -> None:
    """Cross-field rules msgspec constraints cannot express; raise InvalidInput naming the field."""
    try:
        validate_commission_rates(program.commission_bps)
    except RewardConfigError as exc:
        raise InvalidInput(exc.field, exc.message) from None
    try:
        ZoneInfo(program.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "timezone", f"{program.timezone!r} is not an IANA time zone such as 'Asia/Shanghai'"
        ) from None
    try:
        validate_tiers(len(program.commission_bps), tier_rules(program))
    except RewardConfigError as exc:
        raise InvalidInput(exc.field, exc.message) from None
    recruitment = program.recruitment
    if recruitment.mode == "threshold" and recruitment.threshold_fen is None:
        raise InvalidInput(
            "recruitment.threshold_fen",
            "is required when recruitment.mode is 'threshold': the fen a user's own paid "
            "orders (net of refunds) must reach",
        )
    names = [f.name for f in recruitment.form_fields]
    if len(set(names)) != len(names):
        raise InvalidInput("recruitment.form_fields", "each field name may appear once")
    parts = urlsplit(program.landing_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("landing_url", "must be an absolute http(s) URL")
    if program.short_link_base_url is not None:
        try:
            check_public_base_url(program.short_link_base_url)
        except ValueError as exc:
            raise InvalidInput("short_link_base_url", str(exc)) from None
    if program.mini_program_page is not None and not _PAGE_RE.fullmatch(program.mini_program_page):
        raise InvalidInput(
            "mini_program_page",
            "must be a page path such as 'pages/index/index': letters, digits, _ and - "
            "between single slashes, no leading slash, no query, at most 128 characters",
        )


async def _cached(db: Connection, tenant_id: str) -> tuple[float, Program, bytes]:
    hit = _cache.get(tenant_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit
    raw = await db.fetchval("SELECT document FROM programs WHERE tenant_id = $1", tenant_id)
    program = _decoder.decode(raw) if raw else Program()
    hit = (time.monotonic() + PROGRAM_CACHE_SECONDS, program, _encoder.encode(program))
    _cache[tenant_id] = hit
    return hit


async def get_program(db: Connection, tenant_id: str) -> Program:
    return (await _cached(db, tenant_id))[1]


async def get_program_json(db: Connection, tenant_id: str) -> bytes:
    """The program as JSON, encoded once per cache period."""
    return (await _cached(db, tenant_id))[2]


async def put_program(db: Connection, tenant_id: str, data: ProgramIn) -> Program:
    validate_program(data)
    if data.short_link_base_url is not None:
        data = msgspec.structs.replace(
            data, short_link_base_url=data.short_link_base_url.rstrip("/")
        )
    now = now_us()
    program = Program(**msgspec.structs.asdict(data), updated_at=from_us(now).isoformat())
    document = _encoder.encode(program).decode()
    await db.execute(
        "INSERT INTO programs (tenant_id, document, updated_at_us) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id) DO UPDATE SET document = excluded.document,"
        " updated_at_us = excluded.updated_at_us",
        tenant_id,
        document,
        now,
    )
    await publish_invalidation("program", tenant_id, tx=db)
    return program
