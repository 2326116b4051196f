"""What every console page shares: the session dependency, CSRF, rendering and error pages.

Errors on console routes render HTML: no session → the sign-in page (303), a missing CSRF
token → 403, another tenant's object → 404 (the same page as a missing one), a refused
request → the service's own problem detail and field messages.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.params import SkipValidation
from litestar.response import Redirect, Template

from server.console.i18n import DEFAULT_LANG, LANGS, translator
from server.console.sessions import ConsoleSession, find_session
from server.db import Database
from server.dependencies import Db
from server.errors import FieldError, InvalidInput, ServiceError

__all__ = [
    "COOKIE",
    "Console",
    "ConsoleCall",
    "Session",
    "checked_form",
    "console_exception_handlers",
    "field_errors",
    "lang_of",
    "page",
    "provide_console",
    "provide_session",
]

COOKIE = "liebian_console"
# A handler parameter ``session: Session`` gets the signed-in session (provide_session).
Session = NamedDependency[ConsoleSession]
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_FIELD = 2_000_000  # a text field (an uploaded CSV) over 2 MB is refused


def lang_of(request: Request[Any, Any, Any]) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or DEFAULT_LANG
    return lang if lang in LANGS else DEFAULT_LANG


async def provide_session(request: Request[Any, Any, Any], db: Db) -> ConsoleSession:
    session_id = request.cookies.get(COOKIE)
    session = await find_session(db, session_id) if session_id else None
    if session is None:
        raise NotAuthorizedException("sign in")
    request.scope["state"]["console_session"] = session
    return session


def page(
    request: Request[Any, Any, Any],
    template: str,
    session: ConsoleSession | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    lang = lang_of(request)
    context.update(
        lang=lang,
        t=translator(lang),
        session=session,
        csrf=session.csrf_token if session else "",
        path=request.url.path,
        query=request.url.query,
    )
    return Template(
        template,
        context=context,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


async def checked_form(
    request: Request[Any, Any, Any], session: ConsoleSession
) -> dict[str, str | UploadFile]:
    """The posted form, after checking the session's CSRF token (field or htmx header)."""
    form = await request.form()
    values: dict[str, str | UploadFile] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and len(value) > MAX_FORM_FIELD:
            raise InvalidInput(key, f"is longer than {MAX_FORM_FIELD} characters")
        values.setdefault(key, value)
    sent = values.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent.encode(), session.csrf_token.encode()
    ):
        raise PermissionDeniedException("csrf")
    return values


class ConsoleCall:
    """One signed-in console request (the ``console`` dependency): the operator's session, the
    store, the page it renders and the form it posts (CSRF checked)."""

    __slots__ = ("db", "request", "session")

    def __init__(
        self, request: Request[Any, Any, Any], session: ConsoleSession, db: Database
    ) -> None:
        self.request = request
        self.session = session
        self.db = db

    @property
    def tenant_id(self) -> str:
        return self.session.tenant_id

    def page(self, template: str, status_code: int = 200, **context: Any) -> Template:
        return page(self.request, template, self.session, status_code, **context)

    async def form(self) -> dict[str, str | UploadFile]:
        return await checked_form(self.request, self.session)


# A handler parameter ``console: Console`` gets the request's ConsoleCall (provide_console).
Console = NamedDependency[SkipValidation[ConsoleCall]]


def provide_console(request: Request[Any, Any, Any], session: Session, db: Db) -> ConsoleCall:
    return ConsoleCall(request, session, db)


_MSGSPEC_AT = re.compile(r"^(.*?)(?: - at `\$\.?(.*)`)?$", re.S)


def field_errors(exc: Exception) -> list[FieldError]:
    """The field messages the API would put in its problem document for ``exc``."""
    if isinstance(exc, ServiceError):
        return exc.errors or [FieldError("body", exc.detail)]
    if isinstance(exc, msgspec.ValidationError):
        match = _MSGSPEC_AT.match(str(exc))
        message, field = (match.group(1), match.group(2)) if match else (str(exc), "")
        return [FieldError(field or "body", message)]
    return [FieldError("body", str(exc))]


def _error_page(request: Request[Any, Any, Any], status: int, detail: str) -> Response[Any]:
    session = request.scope["state"].get("console_session")
    return page(request, "error.html", session, status, status=status, detail=detail)


def _not_signed_in(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    if request.headers.get("hx-request"):
        return Response(b"", status_code=401, headers={"HX-Redirect": "/console/login"})
    return Redirect("/console/login", status_code=303)


def _forbidden(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    t = translator(lang_of(request))
    detail = t("csrf_refused") if exc.detail == "csrf" else str(exc.detail)
    return _error_page(request, 403, detail)


def _service_error(request: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    detail = exc.detail
    if exc.errors:
        detail = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return _error_page(request, exc.status, detail)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return _error_page(request, exc.status_code, str(exc.detail))


def console_exception_handlers() -> dict[type[Exception] | int, Any]:
    return {
        NotAuthorizedException: _not_signed_in,
        PermissionDeniedException: _forbidden,
        ServiceError: _service_error,
        ValidationException: _http_error,
        HTTPException: _http_error,
    }
