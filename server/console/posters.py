"""Poster template pages: the list, and an editor whose preview the server renders live.

The preview and the save call the same service functions as ``/v1/poster-templates`` and
``/v1/posters`` (:mod:`server.share_posters.service`): the same validation (a problem naming
the template's field, ``views[3].css.width``), the same renderer, pool, budget and cache.
htmx posts the editor's form to ``…/preview`` when the JSON or the distributor changes
(debounced) and swaps the figure; without JavaScript the Preview button posts the same form
and gets the whole page back.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from server.console.forms import text
from server.console.sessions import audit_trail, record_audit
from server.console.web import Console, ConsoleCall, field_errors
from server.errors import InvalidInput, NotFound, ServiceError
from server.program.service import get_program
from server.public_urls import public_base_url
from server.share_posters.service import (
    PosterRequest,
    checked_template,
    list_templates,
    preview_for,
    store_template,
    template_json,
)

__all__ = ["PosterPages"]

NamePath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
PAGE = 50
MAX_TEMPLATE_CHARS = 200_000


class PosterPages(Controller):
    path = "/console/posters"

    @get()
    async def index(self, console: Console, cursor: FromQuery[str | None] = None) -> Template:
        found = await list_templates(console.db, console.tenant_id, PAGE, cursor)
        return console.page("posters.html", page_=found)

    @get("/edit")
    async def open_by_name(
        self,
        console: Console,
        name: Annotated[str, QueryParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "default",
    ) -> Redirect:
        """The new-template form asks for a name (GET): go to that template's editor."""
        return Redirect(f"/console/posters/{name}", status_code=303)

    @get("/{name:str}")
    async def edit(
        self, console: Console, name: NamePath, distributor_id: FromQuery[str | None] = None
    ) -> Template:
        try:
            document = await template_json(console.db, console.tenant_id, name)
        except NotFound:  # a new name starts from the built-in default
            document = await template_json(console.db, console.tenant_id, "default")
        audit = await audit_trail(console.db, console.tenant_id, _audit_id(name))
        return console.page(
            "poster.html", name=name, document=_pretty(document),
            distributor_id=distributor_id or "", campaign_id="", errors={}, preview=None,
            audit=audit,
        )  # fmt: skip

    @post("/{name:str}/preview", status_code=200)
    async def preview(self, console: Console, name: NamePath) -> Template:
        document, distributor_id, campaign_id = _editor_fields(await console.form())
        errors: dict[str, str] = {}
        image = None
        if not distributor_id:
            errors["distributor_id"] = "preview_needs_distributor"
        else:
            try:
                image = await _render(console, distributor_id, campaign_id, document)
            except ServiceError as exc:
                errors = {e.field: e.message for e in field_errors(exc)}
        context: dict[str, Any] = {
            "name": name, "document": document, "distributor_id": distributor_id,
            "campaign_id": campaign_id, "errors": errors, "preview": image,
        }  # fmt: skip
        if console.request.headers.get("hx-request"):  # htmx swaps 2xx answers only
            return console.page("_poster_preview.html", **context)
        audit = await audit_trail(console.db, console.tenant_id, _audit_id(name))
        status = 422 if image is None and distributor_id else 200
        return console.page("poster.html", status, audit=audit, **context)

    @post("/{name:str}", status_code=303)
    async def save(self, console: Console, name: NamePath) -> Response[Any]:
        document, distributor_id, campaign_id = _editor_fields(await console.form())
        try:
            checked = checked_template(document.encode())
            async with console.db.transaction() as tx:
                await store_template(tx, console.tenant_id, name, checked)
                await record_audit(tx, console.session, _audit_id(name), "poster_template.saved")
        except InvalidInput as exc:
            audit = await audit_trail(console.db, console.tenant_id, _audit_id(name))
            return console.page(
                "poster.html", 422, name=name, document=document,
                distributor_id=distributor_id, campaign_id=campaign_id,
                errors={e.field: e.message for e in field_errors(exc)}, preview=None,
                audit=audit,
            )  # fmt: skip
        query = f"?saved=1&distributor_id={distributor_id}" if distributor_id else "?saved=1"
        return Redirect(f"/console/posters/{name}{query}", status_code=303)


async def _render(
    console: ConsoleCall, distributor_id: str, campaign_id: str, document: str
) -> str:
    """The preview as a ``data:`` URL (PNG), drawn like ``GET /v1/posters/{id}``."""
    state = console.request.app.state
    program = await get_program(console.db, console.tenant_id)
    poster = PosterRequest(console.tenant_id, distributor_id, campaign_id or None, None, "png",
                           public_base_url(state.settings, program))  # fmt: skip
    _, image, _ = await preview_for(console.db, state.board, state.posters, poster,
                                    document.encode(), state.wechat.poster_code)  # fmt: skip
    return "data:image/png;base64," + base64.b64encode(image).decode()


def _editor_fields(form: Any) -> tuple[str, str, str]:
    raw = form.get("document", "")
    document = raw if isinstance(raw, str) else ""
    if len(document) > MAX_TEMPLATE_CHARS:
        raise InvalidInput("document", f"is longer than {MAX_TEMPLATE_CHARS} characters")
    return document, text(form, "distributor_id")[:64], text(form, "campaign_id")[:32]


def _pretty(document: str) -> str:
    try:
        return json.dumps(json.loads(document), ensure_ascii=False, indent=2)
    except ValueError:
        return document


def _audit_id(name: str) -> str:
    """The audit trail's object id of a template (at most 64 characters)."""
    if len(name) <= 57:
        return f"poster:{name}"
    return "poster#" + hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
