"""Sign-in, sign-out and the language switch (``/console/login``, ``/logout``, ``/lang``)."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server.auth import authenticate
from server.console.i18n import LANGS, translator
from server.console.sessions import (
    SESSION_SECONDS,
    LoginThrottle,
    create_session,
    end_session,
)
from server.console.web import COOKIE, Session, checked_form, lang_of, page
from server.dependencies import Db
from server.ratelimit import client_address

__all__ = ["login_form", "login", "logout", "switch_language", "throttle"]

throttle = LoginThrottle()
LOGIN_CSRF_COOKIE = "liebian_console_login"
MAX_KEY_CHARS = 200
# Compared against when the key has no valid shape, so a refusal takes the same path.
_DUMMY = "lb_admin_" + "x" * 32


def _proxies(request: Request[Any, Any, Any]) -> tuple[Any, ...]:
    limits = getattr(request.app.state, "rate_limits", None)
    return tuple(limits.trusted_proxies) if limits is not None else ()


def _client(request: Request[Any, Any, Any]) -> str:
    """The client address (behind ``LIEBIAN_TRUSTED_PROXIES``, the one they forwarded)."""
    return client_address(request.scope, _proxies(request))


def _https(request: Request[Any, Any, Any]) -> bool:
    """Whether the browser talks HTTPS: the request's scheme, or a trusted proxy's word."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    try:
        trusted = any(ipaddress.ip_address(peer) in net for net in _proxies(request))
    except ValueError:
        return False
    return trusted and request.headers.get("x-forwarded-proto", "").lower() == "https"


def _login_page(request: Request[Any, Any, Any], status: int = 200, error: str = "") -> Template:
    """The sign-in form with a fresh double-submit CSRF token (cookie + hidden field)."""
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", status_code=status, error=error, login_csrf=token)
    response.cookies.append(
        Cookie(
            key=LOGIN_CSRF_COOKIE,
            value=token,
            path="/console/login",
            max_age=3600,
            httponly=True,
            samesite="lax",
            secure=_https(request),
        )
    )
    return response


@get("/console/login")
async def login_form(request: Request[Any, Any, Any]) -> Template:
    return _login_page(request)


@post("/console/login", status_code=303)
async def login(request: Request[Any, Any, Any], db: Db) -> Response[Any]:
    t = translator(lang_of(request))
    data = await request.form()
    sent = str(data.get("csrf_token", ""))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDeniedException("csrf")
    client = _client(request)
    if throttle.blocked(client):
        return _login_page(request, 429, t("login_throttled"))
    key = str(data.get("key", "")).strip()[:MAX_KEY_CHARS]
    principal = await authenticate(db, key) if key else None
    if principal is None:
        hmac.compare_digest(key.encode(), _DUMMY.encode())
        throttle.failed(client)
        return _login_page(request, 401, t("login_wrong_key"))
    if principal.scope != "admin":
        throttle.failed(client)
        return _login_page(request, 403, t("login_needs_admin"))
    async with db.transaction() as tx:
        session_id, _ = await create_session(tx, principal)
    response: Response[Any] = Redirect("/console", status_code=303)
    response.cookies.append(_session_cookie(request, session_id, SESSION_SECONDS))
    return response


def _session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=value,
        path="/console",
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=_https(request),
    )


@post("/console/logout", status_code=303)
async def logout(request: Request[Any, Any, Any], session: Session, db: Db) -> Response[Any]:
    await checked_form(request, session)
    async with db.transaction() as tx:
        await end_session(tx, request.cookies.get(COOKIE, ""))
    response: Response[Any] = Redirect("/console/login", status_code=303)
    response.cookies.append(_session_cookie(request, "", 0))
    return response


@get("/console/lang/{lang:str}", status_code=303)
async def switch_language(request: Request[Any, Any, Any], lang: FromPath[str]) -> Response[Any]:
    back = request.query_params.get("next") or "/console"
    # Only back into the console: never an open redirect to another site.
    if not back.startswith("/console") or back.startswith("//"):
        back = "/console"
    response: Response[Any] = Redirect(back, status_code=303)
    if lang in LANGS:
        response.cookies.append(
            Cookie(key="lang", value=lang, path="/console", max_age=365 * 86400, samesite="lax")
        )
    return response
