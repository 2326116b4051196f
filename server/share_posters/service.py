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
from typing import Any, Literal

from posters import (
    PosterData,
    PosterTemplateError,
    content_hash,
    default_template,
    parse_template,
    template_to_json,
)
from posters.spec import ImageView, Template
from server.avatars import AvatarCache
from server.campaigns.boards import Board
from server.campaigns.service import campaign_row
from server.db import Connection
from server.errors import FieldError, NotFound
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

__all__ = ["PosterCache", "load_template", "render_for", "template_document"]

Fmt = Literal["png", "jpeg", "webp"]
# (tenant_id, link code) -> the link's mini-program code image, or None when there is none
WxacodeSource = Callable[[str, str], Awaitable[bytes | None]]
REQUEST_TTL = 30.0
AVATAR_TTL = 600.0
_log = logging.getLogger("liebian.posters")


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
        # request -> (expiry, digest, whether a {wxacode} view fell back to the link's QR)
        self._requests: OrderedDict[tuple[Any, ...], tuple[float, str, bool]] = OrderedDict()
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

    def request(self, key: tuple[Any, ...]) -> tuple[str, bool] | None:
        hit = self._requests.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put_request(self, key: tuple[Any, ...], digest: str, fallback: bool = False) -> None:
        self._requests[key] = (time.monotonic() + REQUEST_TTL, digest, fallback)
        self._requests.move_to_end(key)
        while len(self._requests) > self.max_requests:
            self._requests.popitem(last=False)

    def forget_tenant(self, tenant_id: str, name: str = "") -> None:
        for key in [k for k in self._requests if tenant_id in (k[0], "*")]:
            del self._requests[key]

    async def avatar(self, url: str, allowed: list[str]) -> bytes | None:
        """Keyed by URL and allow-list: one tenant's list never decides another's avatar."""
        return await self._avatars.get(url, allowed)


async def load_template(db: Connection, tenant_id: str, name: str | None) -> Template:
    if name is None:
        return default_template()
    raw = await db.fetchval(
        "SELECT document FROM poster_templates WHERE tenant_id = $1 AND name = $2", tenant_id, name
    )
    if raw is None:
        raise NotFound(f"poster template {name!r} does not exist; PUT it first")
    return parse_template(raw)


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
    raw = await db.fetchval(
        "SELECT document FROM poster_templates WHERE tenant_id = $1 AND name = $2", tenant_id, name
    )
    if raw is None:
        raise NotFound(f"poster template {name!r} does not exist; PUT it first")
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
    tenant_id: str,
    distributor_id: str,
    campaign_id: str | None,
    base_url: str,
    wxacode: WxacodeSource | None,
) -> PosterData:
    row = await get_distributor_row(db, tenant_id, distributor_id)
    campaign, rank = "", ""
    if campaign_id is not None:
        campaign = (await campaign_row(db, tenant_id, campaign_id))["name"]
        position, *_ = await board.rank(tenant_id, campaign_id, "campaign", distributor_id, 0)
        rank = f"第 {position} 名" if position else ""
    link = await create_link(
        db, tenant_id, LinkIn(distributor_id=distributor_id, campaign_id=campaign_id), base_url
    )
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
    tenant_id: str,
    distributor_id: str,
    campaign_id: str | None,
    template_name: str | None,
    fmt: Fmt,
    base_url: str,
    wxacode: WxacodeSource | None = None,
) -> tuple[str, bytes, bool]:
    """(content hash, image bytes, fallback) of the distributor's poster; ``fallback`` says a
    ``{wxacode}`` view shows the link's QR code because ``wxacode`` had no code to give; 409
    naming the state for a user who may not share (recruitment), checked before the cache
    under approval/threshold (on a miss, in every mode, by the link the poster carries)."""
    program = await get_program(db, tenant_id)
    if program.recruitment.mode != "open":
        row = await get_distributor_row(db, tenant_id, distributor_id)
        require_sharing(program, distributor_id, row)
    key = (tenant_id, distributor_id, campaign_id, template_name, fmt, base_url)
    hit = cache.request(key)
    if hit is not None:
        image = cache.image(hit[0])
        if image is not None:
            return hit[0], image, hit[1]
    tkey, template = await _stored_template(db, cache, tenant_id, template_name)
    wants_code = any(isinstance(v, ImageView) and v.url == "{wxacode}" for v in template.views)
    source = wxacode if wants_code else None  # WeChat is asked only when the poster shows it
    data = await _data(db, board, cache, tenant_id, distributor_id, campaign_id, base_url, source)
    fallback = wants_code and data.wxacode is None
    digest = content_hash(template, data, fmt)
    image = cache.image(digest)
    if image is None:
        image = await _render(cache, tkey, template_name, template, data, fmt)
        cache.put_image(digest, image)
    cache.put_request(key, digest, fallback)
    return digest, image, fallback


def template_document(template: Template) -> str:
    return template_to_json(template).decode()
