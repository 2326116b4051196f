"""Personal share posters: the distributor's data, a template, render off the event loop, cache.

Two caches, both bounded: rendered bytes by content hash (the same inputs give the same bytes,
so the hash is also the ETag), and the answer to a request (distributor, campaign, template,
format) for ``REQUEST_TTL`` seconds, so a repeated poster request needs no database work.
Ranks and nicknames shown on a poster are therefore at most that old.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple

import msgspec

from posters import (
    PosterData,
    PosterTemplateError,
    content_hash,
    default_template,
    missing_glyphs,
    missing_glyphs_header,
    parse_template,
    template_to_json,
)
from posters.spec import ImageView, Template
from server.avatars import AvatarCache
from server.campaigns.boards import Board
from server.campaigns.service import campaign_row
from server.coherence import publish_invalidation
from server.common import decode_cursor, encode_cursor, from_us, now_us
from server.db import Connection
from server.errors import FieldError, InvalidInput, NotFound
from server.program.service import get_program
from server.recruitment.service import require_sharing
from server.referrals.schemas import LinkIn
from server.referrals.service import create_link, get_distributor_row
from server.share_posters.failures import (
    RETRY_AFTER_S,
    Failure,
    PosterUnavailable,
    RenderFailures,
    template_key,
)
from server.share_posters.pool import PoolBusy, RenderFailed, RenderPool, RenderTimeout

__all__ = [
    "PosterCache",
    "PosterRequest",
    "TemplatePage",
    "TemplateSummary",
    "checked_template",
    "list_templates",
    "load_template",
    "preview_for",
    "render_for",
    "store_template",
    "template_document",
    "template_json",
]

Fmt = Literal["png", "jpeg", "webp"]
# What the poster's response headers say about it: (name, value) pairs.
Notes = tuple[tuple[str, str], ...]
FALLBACK_HEADER = "Liebian-Poster-Fallback"
MISSING_GLYPHS_HEADER = "Liebian-Poster-Missing-Glyphs"
# (tenant_id, link code) -> the link's mini-program code image, or None when there is none
WxacodeSource = Callable[[str, str], Awaitable[bytes | None]]
REQUEST_TTL = 30.0
AVATAR_TTL = 600.0
_log = logging.getLogger("liebian.posters")


class PosterRequest(NamedTuple):
    """What one poster is of, and its key in the request cache: the same request within
    ``REQUEST_TTL`` gives the same image without database work."""

    tenant_id: str
    distributor_id: str
    campaign_id: str | None
    template: str | None  # a stored template's name; None: the built-in default
    fmt: Fmt
    base_url: str  # of the share link the poster carries


class PosterCache:
    def __init__(
        self,
        max_bytes: int = 64 << 20,
        max_requests: int = 10_000,
        pool: RenderPool | None = None,
    ) -> None:
        self.pool = pool or RenderPool(workers=0)
        self.failures = RenderFailures()
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        # request -> (expiry, digest, the poster's notes as response headers)
        self._requests: OrderedDict[tuple[Any, ...], tuple[float, str, Notes]] = OrderedDict()
        self._avatars = AvatarCache(ttl=AVATAR_TTL)

    def image(self, digest: str) -> bytes | None:
        data = self._images.get(digest)
        if data is not None:
            self._images.move_to_end(digest)
        return data

    def put_image(self, digest: str, data: bytes) -> None:
        if digest in self._images:
            return
        self._images[digest] = data
        self._size += len(data)
        while self._size > self.max_bytes and self._images:
            _, old = self._images.popitem(last=False)
            self._size -= len(old)

    def request(self, key: tuple[Any, ...]) -> tuple[str, Notes] | None:
        hit = self._requests.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put_request(self, key: tuple[Any, ...], digest: str, notes: Notes = ()) -> None:
        self._requests[key] = (time.monotonic() + REQUEST_TTL, digest, notes)
        self._requests.move_to_end(key)
        while len(self._requests) > self.max_requests:
            self._requests.popitem(last=False)

    def forget_tenant(self, tenant_id: str, name: str = "") -> None:
        for key in [k for k in self._requests if tenant_id in (k[0], "*")]:
            del self._requests[key]

    async def avatar(self, url: str, allowed: list[str]) -> bytes | None:
        """Keyed by URL and allow-list: one tenant's list never decides another's avatar."""
        return await self._avatars.get(url, allowed)


async def _stored_document(db: Connection, tenant_id: str, name: str) -> str | None:
    document: str | None = await db.fetchval(
        "SELECT document FROM poster_templates WHERE tenant_id = $1 AND name = $2", tenant_id, name
    )
    return document


def _no_template(name: str) -> NotFound:
    return NotFound(f"poster template {name!r} does not exist; PUT it first")


async def load_template(db: Connection, tenant_id: str, name: str | None) -> Template:
    if name is None:
        return default_template()
    raw = await _stored_document(db, tenant_id, name)
    if raw is None:
        raise _no_template(name)
    return parse_template(raw)


async def template_json(db: Connection, tenant_id: str, name: str) -> str:
    """The stored template as the client wrote it; ``default`` unless stored: the built-in."""
    raw = await _stored_document(db, tenant_id, name)
    if raw is not None:
        return raw
    if name == "default":
        return template_document(default_template())
    raise _no_template(name)


def checked_template(raw: bytes) -> str:
    """``raw`` as it will be stored (the client's JSON, re-encoded compactly), once it parses
    as a template; else a 422 naming the field at fault."""
    try:
        parse_template(raw)
        return msgspec.json.encode(msgspec.json.decode(raw)).decode()
    except PosterTemplateError as exc:
        field = exc.field.removeprefix("$.").removeprefix("$") or "body"
        raise InvalidInput(field, exc.message) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput("body", f"is not JSON: {exc}") from None


async def store_template(tx: Connection, tenant_id: str, name: str, document: str) -> None:
    """Store a :func:`checked_template` document; every node forgets the tenant's posters."""
    await tx.execute(
        "INSERT INTO poster_templates (tenant_id, name, document, updated_at_us)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, name) DO UPDATE"
        " SET document = excluded.document, updated_at_us = excluded.updated_at_us",
        tenant_id,
        name,
        document,
        now_us(),
    )
    await publish_invalidation("poster_template", tenant_id, name, tx=tx)


def _unavailable(name: str | None, failure: Failure) -> PosterUnavailable:
    if failure.status == 503:
        return PosterUnavailable(
            503, "Poster render timed out",
            f"poster template {name!r} did not render in time; try again later or simplify it",
        )  # fmt: skip
    return PosterUnavailable(
        422, "Poster template cannot be drawn",
        f"poster template {name!r}: {failure.field}: {failure.message}; PUT a fixed template",
        [FieldError(failure.field, failure.message)],
    )  # fmt: skip


async def _stored_template(
    db: Connection, cache: PosterCache, tenant_id: str, name: str | None
) -> tuple[str, Template]:
    """(content key, template); a template that failed before fails again without a render."""
    if name is None:
        return "default", default_template()
    raw = await _stored_document(db, tenant_id, name)
    if raw is None:
        raise _no_template(name)
    key = template_key(raw)
    failure = cache.failures.get(key)
    if failure is not None:
        raise _unavailable(name, failure)
    try:
        # Stored before a bound existed, the template is checked against the budget again.
        return key, parse_template(raw)
    except PosterTemplateError as exc:
        failure = cache.failures.remember(key, 422, exc.field, exc.message)
        raise _unavailable(name, failure) from None


async def _render(
    cache: PosterCache, key: str, name: str | None, template: Template, data: PosterData,
    fmt: Fmt,
) -> bytes:  # fmt: skip
    failures = cache.failures
    try:
        return await cache.pool.render(key, template, data, fmt)
    except RenderTimeout:
        message = f"the render ran past {cache.pool.deadline:g} s and was stopped"
        failure = failures.remember(key, 503, "template", message, retry_after=RETRY_AFTER_S)
    except PoolBusy:
        raise PosterUnavailable(
            503, "Poster renderer busy", "every poster worker is busy; try again shortly"
        ) from None
    except RenderFailed as exc:
        if exc.kind == "data":
            raise PosterUnavailable(
                422,
                "Poster data cannot be drawn",
                exc.message,
                [FieldError("distributor_id", exc.message)],
            ) from None
        if exc.kind in ("error", "crash"):  # not known to be the template's fault: retry later
            _log.error("poster render failed for template %r: %s", name, exc.message)
            failure = failures.remember(key, 503, "template", "the render failed",
                                        retry_after=RETRY_AFTER_S)  # fmt: skip
        else:
            failure = failures.remember(key, 422, exc.field or "template", exc.message)
    raise _unavailable(name, failure)


async def _data(
    db: Connection,
    board: Board,
    cache: PosterCache,
    poster: PosterRequest,
    wxacode: WxacodeSource | None,
) -> PosterData:
    tenant_id, distributor_id, campaign_id = poster[:3]
    row = await get_distributor_row(db, tenant_id, distributor_id)
    campaign, rank = "", ""
    if campaign_id is not None:
        campaign = (await campaign_row(db, tenant_id, campaign_id))["name"]
        position, *_ = await board.rank(tenant_id, campaign_id, "campaign", distributor_id, 0)
        rank = f"第 {position} 名" if position else ""
    link = await create_link(
        db, tenant_id, LinkIn(distributor_id=distributor_id, campaign_id=campaign_id),
        poster.base_url,
    )  # fmt: skip
    avatar = None
    if row["avatar_url"]:
        program = await get_program(db, tenant_id)
        avatar = await cache.avatar(row["avatar_url"], list(program.avatar_hosts))
    code = None if wxacode is None else await wxacode(tenant_id, link.code)
    return PosterData(nickname=row["nickname"], campaign=campaign, rank=rank, link=link.url,
                      avatar=avatar, wxacode=code)  # fmt: skip


async def render_for(
    db: Connection,
    board: Board,
    cache: PosterCache,
    poster: PosterRequest,
    wxacode: WxacodeSource | None = None,
) -> tuple[str, bytes, Notes]:
    """(content hash, image bytes, notes) of the distributor's poster. The notes are response
    headers: ``Liebian-Poster-Fallback: qr`` when a ``{wxacode}`` view shows the link's QR
    code because ``wxacode`` had no code to give, ``Liebian-Poster-Missing-Glyphs`` when a
    text has characters no installed font draws (drawn as a replacement glyph). 409
    naming the state for a user who may not share (recruitment), checked before the cache
    under approval/threshold (on a miss, in every mode, by the link the poster carries)."""
    tenant_id, distributor_id, template_name = (
        poster.tenant_id, poster.distributor_id, poster.template
    )  # fmt: skip
    program = await get_program(db, tenant_id)
    if program.recruitment.mode != "open":
        row = await get_distributor_row(db, tenant_id, distributor_id)
        require_sharing(program, distributor_id, row)
    key = poster
    hit = cache.request(key)
    if hit is not None:
        image = cache.image(hit[0])
        if image is not None:
            return hit[0], image, hit[1]
    tkey, template = await _stored_template(db, cache, tenant_id, template_name)
    digest, image, notes = await _draw(
        db, board, cache, poster, (tkey, template_name, template), wxacode
    )
    cache.put_request(key, digest, notes)
    return digest, image, notes


async def _draw(
    db: Connection,
    board: Board,
    cache: PosterCache,
    poster: PosterRequest,
    named: tuple[str, str | None, Template],
    wxacode: WxacodeSource | None,
) -> tuple[str, bytes, Notes]:
    """The one drawing path of stored templates and previews: (hash, bytes, notes)."""
    tkey, template_name, template = named
    wants_code = any(isinstance(v, ImageView) and v.url == "{wxacode}" for v in template.views)
    source = wxacode if wants_code else None  # WeChat is asked only when the poster shows it
    data = await _data(db, board, cache, poster, source)
    notes: list[tuple[str, str]] = []
    if wants_code and data.wxacode is None:
        notes.append((FALLBACK_HEADER, "qr"))
    missing = missing_glyphs_header(missing_glyphs(template, data))
    if missing:
        notes.append((MISSING_GLYPHS_HEADER, missing))
    digest = content_hash(template, data, poster.fmt)
    image = cache.image(digest)
    if image is None:
        image = await _render(cache, tkey, template_name, template, data, poster.fmt)
        cache.put_image(digest, image)
    return digest, image, tuple(notes)


async def preview_for(
    db: Connection,
    board: Board,
    cache: PosterCache,
    poster: PosterRequest,
    raw: bytes,
    wxacode: WxacodeSource | None = None,
) -> tuple[str, bytes, Notes]:
    """A template not saved yet (``raw`` JSON; ``poster.template`` is ignored), drawn for the
    distributor as :func:`render_for` draws a stored one: the same checks (a 422 naming the
    field), budget, pool and cache; the request cache is not used."""
    document = checked_template(raw)
    named = (template_key(document), "preview", parse_template(document))
    return await _draw(db, board, cache, poster, named, wxacode)


def template_document(template: Template) -> str:
    return template_to_json(template).decode()


class TemplateSummary(msgspec.Struct):
    name: str
    updated_at: str


class TemplatePage(msgspec.Struct):
    templates: list[TemplateSummary]
    next_cursor: str | None


async def list_templates(
    db: Connection, tenant_id: str, limit: int, cursor: str | None
) -> TemplatePage:
    """The tenant's stored templates by name, paged."""
    after = decode_cursor(cursor, str) or [""]
    rows = await db.fetch(
        "SELECT name, updated_at_us FROM poster_templates WHERE tenant_id = $1 AND name > $2"
        " ORDER BY name LIMIT $3",
        tenant_id, str(after[0]), limit + 1,
    )  # fmt: skip
    items = [TemplateSummary(r[0], from_us(int(r[1])).isoformat()) for r in rows[:limit]]
    more = len(rows) > limit
    return TemplatePage(items, encode_cursor(items[-1].name) if more else None)
