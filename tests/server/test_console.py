"""The /console pages: sign-in sessions, CSRF, tenant isolation, forms and accessibility basics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TenantKeys, make_tenant

COOKIE = "liebian_console"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def new_browser(client: Any, **kw: Any) -> TestClient[Any]:
    """A separate browser (cookie jar) on its own app over the suite's database."""
    import msgspec

    from server.app import create_app

    app = create_app(msgspec.structs.replace(client.app.state.settings, pool_size=2))
    return TestClient(app, raise_server_exceptions=False, **kw)


def sign_in(client: Any, key: str) -> TestClient[Any]:
    """A separate browser signed in with ``key``."""
    browser = new_browser(client)
    browser.__enter__()
    form = browser.get("/console/login")
    response = browser.post(
        "/console/login", data={"key": key, "csrf_token": _csrf(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return browser


@pytest.fixture
def console(client: Any, tenant: TenantKeys) -> Any:
    browser = sign_in(client, tenant.admin_key)
    yield browser
    browser.__exit__(None, None, None)


def test_session_cookie_flags_and_server_side_logout(client: Any, tenant: TenantKeys) -> None:
    browser = new_browser(client)
    with browser:
        form = browser.get("/console/login")
        response = browser.post(
            "/console/login",
            data={"key": tenant.admin_key, "csrf_token": _csrf(form.text)},
            follow_redirects=False,
        )
        header = next(v for k, v in response.headers.multi_items() if k == "set-cookie"
                      and v.startswith(COOKIE))  # fmt: skip
        assert "HttpOnly" in header and "samesite=lax" in header.lower()
        assert "Path=/console" in header
        assert "Max-Age=28800" in header
        assert "Secure" not in header  # plain http here; https requests get Secure (below)
        # X-Forwarded-Proto counts only from a trusted proxy (LIEBIAN_TRUSTED_PROXIES): not here.
        form = browser.get("/console/login")
        spoofed = browser.post(
            "/console/login",
            data={"key": tenant.admin_key, "csrf_token": _csrf(form.text)},
            headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )
        assert "Secure" not in spoofed.headers["set-cookie"]
        session_id = browser.cookies.get(COOKIE)
        assert session_id and len(session_id) >= 40
        home = browser.get("/console")
        assert home.status_code == 200
        browser.post("/console/logout", data={"csrf_token": _csrf(home.text)})
        # The old cookie no longer works: the session is gone on the server, not just forgotten.
        stolen = new_browser(client, cookies={COOKIE: session_id})
        with stolen:
            again = stolen.get("/console", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/console/login"


def test_secure_cookie_over_https(client: Any, tenant: TenantKeys) -> None:
    with new_browser(client, base_url="https://console.test") as browser:
        form = browser.get("/console/login")
        response = browser.post(
            "/console/login",
            data={"key": tenant.admin_key, "csrf_token": _csrf(form.text)},
            follow_redirects=False,
        )
        header = next(v for k, v in response.headers.multi_items() if k == "set-cookie"
                      and v.startswith(COOKIE))  # fmt: skip
        assert "Secure" in header


def test_wrong_key_sdk_key_and_missing_login_csrf_are_refused(
    client: Any, tenant: TenantKeys
) -> None:
    with new_browser(client) as browser:
        token = _csrf(browser.get("/console/login").text)
        wrong = browser.post("/console/login", data={"key": "lb_admin_" + "x" * 32,
                                                     "csrf_token": token})  # fmt: skip
        assert wrong.status_code == 401 and COOKIE not in browser.cookies
        token = _csrf(wrong.text)
        sdk = browser.post("/console/login", data={"key": tenant.sdk_key, "csrf_token": token})
        assert sdk.status_code == 403 and COOKIE not in browser.cookies
        no_token = browser.post("/console/login", data={"key": tenant.admin_key})
        assert no_token.status_code == 403 and COOKIE not in browser.cookies


def test_sign_in_is_throttled_after_repeated_failures(client: Any, tenant: TenantKeys) -> None:
    from server.console.account import throttle

    throttle._failures.clear()
    try:
        with new_browser(client) as browser:
            statuses = []
            for _ in range(throttle.limit + 1):
                token = _csrf(browser.get("/console/login").text)
                statuses.append(
                    browser.post(
                        "/console/login", data={"key": "nope", "csrf_token": token}
                    ).status_code
                )
            assert statuses[: throttle.limit] == [401] * throttle.limit
            assert statuses[-1] == 429
            # Even the right key waits out the window once the address is throttled.
            token = _csrf(browser.get("/console/login").text)
            right = browser.post("/console/login", data={"key": tenant.admin_key,
                                                         "csrf_token": token})  # fmt: skip
            assert right.status_code == 429
    finally:
        throttle._failures.clear()


def test_pages_need_a_session(client: Any) -> None:
    with new_browser(client) as browser:
        response = browser.get("/console/program", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login"
        board = browser.get("/console/campaigns/x/board", headers={"HX-Request": "true"})
        assert board.status_code == 401 and board.headers["hx-redirect"] == "/console/login"


def test_form_without_csrf_token_is_refused(console: Any, tenant: TenantKeys) -> None:
    before = tenant.get("/v1/program").json()
    response = console.post("/console/program", data={"freeze_days": "3", "bind_mode": "last"})
    assert response.status_code == 403
    wrong = console.post("/console/program", data={"freeze_days": "3", "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert tenant.get("/v1/program").json() == before


def test_another_tenants_objects_are_404(
    client: Any, console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    other_tenant.put("/v1/distributors/theirs", {"nickname": "别家"})
    start = datetime.now(UTC)
    made = other_tenant.post("/v1/campaigns", {
        "name": "别家活动", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=1)).isoformat(), "metric": "invites",
    }).json()  # fmt: skip
    other_tenant.post("/v1/settlements", {"cutoff": start.isoformat()})
    settlement = other_tenant.get("/v1/settlements").json()["settlements"][0]["id"]
    for url in [
        "/console/distributors/theirs",
        f"/console/campaigns/{made['id']}",
        f"/console/campaigns/{made['id']}/board",
        f"/console/campaigns/{made['id']}/close",
        f"/console/settlements/{settlement}",
        f"/console/settlements/{settlement}/export.csv",
    ]:
        response = console.get(url)
        assert response.status_code == 404, url
        assert "别家" not in response.text
    token = _csrf(console.get("/console").text)
    closing = console.post(f"/console/campaigns/{made['id']}/close", data={"csrf_token": token})
    assert closing.status_code == 404
    hold = console.post("/console/distributors/theirs/hold",
                        data={"csrf_token": token, "status": "held", "reason": "x"})  # fmt: skip
    assert hold.status_code == 404
    assert other_tenant.get("/v1/campaigns/" + made["id"]).json()["status"] == "open"
    assert other_tenant.get("/v1/distributors/theirs").json()["status"] == "active"
    # Their lists do not show up in ours either.
    assert "别家" not in console.get("/console/campaigns").text
    assert "theirs" not in console.get("/console/distributors").text


def test_program_form_shows_the_apis_validation_messages(console: Any, tenant: TenantKeys) -> None:
    page = console.get("/console/program")
    token = _csrf(page.text)
    base = {"csrf_token": token, "bind_mode": "first", "freeze_days": "7", "clawback": "net_off",
            "payout_threshold_fen": "0", "timezone": "Asia/Shanghai",
            "landing_url": "https://shop.example/landing"}  # fmt: skip
    bad = console.post("/console/program", data={**base, "commission_bps_1": "6000",
                                                 "commission_bps_2": "5000"})  # fmt: skip
    assert bad.status_code == 422
    api = tenant.put("/v1/program", {"commission_bps": [6000, 5000]}).json()
    assert api["errors"][0]["message"] in bad.text.replace("&#39;", "'").replace("&quot;", '"')
    zone = console.post("/console/program", data={**base, "timezone": "Mars/Base"})
    assert zone.status_code == 422 and "timezone" in zone.text
    digits = console.post("/console/program", data={**base, "freeze_days": "seven"})
    assert digits.status_code == 422 and "freeze_days" in digits.text
    changes = {"commission_bps_1": "1200", "bind_mode": "last", "freeze_days": "0"}
    ok = console.post("/console/program", data={**base, **changes})
    assert ok.status_code == 200 and "program" in str(ok.url)
    program = tenant.get("/v1/program").json()
    assert program["commission_bps"] == [1200] and program["bind_mode"] == "last"
    assert program["freeze_days"] == 0
    assert "program.updated" in console.get("/console/program").text


def test_hold_and_lift_with_reason_and_history(console: Any, tenant: TenantKeys) -> None:
    tenant.put("/v1/distributors/d1", {"nickname": "小红"})
    page = console.get("/console/distributors/d1")
    token = _csrf(page.text)
    no_reason = console.post("/console/distributors/d1/hold",
                             data={"csrf_token": token, "status": "held"})  # fmt: skip
    assert no_reason.status_code == 422
    console.post("/console/distributors/d1/hold",
                 data={"csrf_token": token, "status": "held", "reason": "刷单嫌疑"})  # fmt: skip
    assert tenant.get("/v1/distributors/d1").json()["status"] == "held"
    page = console.get("/console/distributors/d1")
    assert "刷单嫌疑" in page.text and "hold.put" in page.text
    held = console.get("/console/distributors?status=held")
    assert "d1" in held.text
    console.post("/console/distributors/d1/hold",
                 data={"csrf_token": token, "status": "active", "reason": "已核实"})  # fmt: skip
    assert tenant.get("/v1/distributors/d1").json()["status"] == "active"
    assert console.get("/console/distributors?q=d1").url.path == "/console/distributors/d1"


def test_english_switch(console: Any) -> None:
    assert "分销计划" in console.get("/console/program").text
    console.get("/console/lang/en?next=/console/program")
    assert "Program" in console.get("/console/program").text
    outside = console.get("/console/lang/zh?next=//evil.example/", follow_redirects=False)
    assert outside.headers["location"] == "/console"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self._in_title = False
        self.fields: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self._label_depth = 0
        self.wrapped: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "title":
            self._in_title = True
        if tag == "label":
            self._label_depth += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            if self._label_depth:
                self.wrapped.append(a.get("id") or "")
            self.fields.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "label":
            self._label_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _check_accessible(html: str, url: str) -> None:
    parsed = _Page()
    parsed.feed(html)
    assert parsed.title.strip(), f"{url} has no <title>"
    for field in parsed.fields:
        has_label = field.get("id") in parsed.label_for or field.get("id") in parsed.wrapped
        assert has_label or field.get("aria-label"), f"{url}: field {field} has no label"


def test_every_page_has_a_title_and_labelled_fields(client: Any, console: Any) -> None:
    tenant = make_tenant(client, "a11y")
    browser = sign_in(client, tenant.admin_key)
    tenant.put("/v1/distributors/d1", {"nickname": "小红"})
    start = datetime.now(UTC) - timedelta(hours=1)
    made = tenant.post("/v1/campaigns", {
        "name": "春节", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=2)).isoformat(),
        "metric": "invites", "prizes": [{"rank_from": 1, "rank_to": 1, "amount_fen": 100}],
    }).json()  # fmt: skip
    stl = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()}).json()["id"]
    pages = ["/console", "/console/program", "/console/campaigns", "/console/campaigns/new",
             f"/console/campaigns/{made['id']}", f"/console/campaigns/{made['id']}/close",
             "/console/distributors", "/console/distributors/d1", "/console/settlements",
             f"/console/settlements/{stl}", f"/console/settlements/{stl}/approve",
             "/console/distributors/nobody", "/console/webhooks", "/console/users",
             "/console/users/d1", f"/console/campaigns/{made['id']}/edit"]  # fmt: skip
    for lang in ("zh", "en"):
        browser.get(f"/console/lang/{lang}")
        for url in pages:
            response = browser.get(url)
            assert response.status_code in (200, 404), url
            _check_accessible(response.text, url)
    with new_browser(client) as anonymous:
        _check_accessible(anonymous.get("/console/login").text, "/console/login")
    browser.__exit__(None, None, None)


def test_assets_are_served_by_the_app(client: Any) -> None:
    with new_browser(client) as browser:
        html = browser.get("/console/login").text
        for url in re.findall(r'(?:src|href)="(/console/(?:static|vendor)/[^"]+)"', html):
            asset = browser.get(url)
            assert asset.status_code == 200 and len(asset.content) > 500, url
        assert "https://" not in html.split("<main>")[0]


def test_overview_shows_todays_figures_from_the_aggregates(
    client: Any, console: Any, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.stats import service as stats

    monkeypatch.setattr(stats, "LAG_US", 0)
    tenant.put("/v1/program", {"commission_bps": [1000]})
    tenant.put("/v1/distributors/ov", {"nickname": "概览"})
    code = tenant.post("/v1/links", {"distributor_id": "ov"}).json()["code"]
    tenant.post("/v1/referrals", {"user_id": "ov-u", "code": code})
    paid = datetime.now(UTC).isoformat()
    tenant.post("/v1/orders", {"order_id": "ov-o", "user_id": "ov-u", "amount_fen": 12_345,
                               "paid_at": paid})  # fmt: skip
    console.get("/console")  # folds the new rows after responding
    html = console.get("/console").text
    assert 'data-metric="orders">1<' in html
    assert 'data-metric="gmv_fen">¥123.45<' in html
    assert 'data-metric="commission_fen">¥12.34<' in html
    assert '"series"' in html and "chart.umd.min.js" in html


def _console_query_params(client: Any) -> set[tuple[str, str]]:
    """Every (console route, query parameter) that takes an integer or a cursor."""
    found = set()
    for route in client.app.routes:
        if not route.path.startswith("/console"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for name, field in handler.parsed_fn_signature.parameters.items():
                kind = getattr(
                    getattr(field.kwarg_definition, "param_type", None), "value", "query"
                )
                if kind == "query" and (field.annotation is int or name.endswith("cursor")):
                    found.add((re.sub(r"\{[^}]+\}", "x", route.path), name))
    return found


CONSOLE_QUERY_PARAMS = {
    ("/console/campaigns", "cursor"),
    ("/console/distributors", "cursor"),
    ("/console/distributors/x", "level"),
    ("/console/distributors/x", "team_cursor"),
    ("/console/distributors/x", "ledger_cursor"),
    ("/console/settlements", "cursor"),
    ("/console/settlements/x", "cursor"),
    ("/console/webhooks", "cursor"),
    ("/console/webhooks/x", "cursor"),
    ("/console/posters", "cursor"),
    ("/console/users/x", "cursor"),
    ("/console/withdrawals", "cursor"),
}


def test_console_cursors_and_integers_refuse_crafted_values(
    client: Any, console: Any, tenant: TenantKeys
) -> None:
    assert _console_query_params(client) == CONSOLE_QUERY_PARAMS
    tenant.put("/v1/distributors/x", {"nickname": "x"})
    settlement = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()})
    hook = tenant.post("/v1/webhook-endpoints", {"url": "https://hooks.example/x",
                                                 "events": ["settlement.paid"]})  # fmt: skip
    for path, name in sorted(CONSOLE_QUERY_PARAMS):
        url = path.replace("/settlements/x", "/settlements/" + settlement.json()["id"])
        url = url.replace("/webhooks/x", "/webhooks/" + hook.json()["id"])
        bad = "1.0" if name == "level" else "eyJhIjogMX0"  # a decimal; base64 of a JSON object
        response = console.get(url, params={name: bad})
        assert response.status_code == 422, (url, name, response.text[:300])
        assert name.removeprefix("team_").removeprefix("ledger_") in response.text
        assert "<title>" in response.text  # an HTML page, not a problem document


def test_webhook_pages_show_endpoints_and_deliveries(
    client: Any, console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    made = tenant.post("/v1/webhook-endpoints", {"url": "https://hooks.example/liebian",
                                                 "events": ["campaign.closed"]})  # fmt: skip
    assert made.status_code == 201, made.text
    endpoint = made.json()["id"]
    start = datetime.now(UTC) - timedelta(hours=1)
    campaign = tenant.post("/v1/campaigns", {
        "name": "钩子", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=1)).isoformat(), "metric": "invites",
    }).json()  # fmt: skip
    tenant.post(f"/v1/campaigns/{campaign['id']}/close")
    listing = console.get("/console/webhooks")
    assert "https://hooks.example/liebian" in listing.text
    detail = console.get(f"/console/webhooks/{endpoint}")
    assert detail.status_code == 200
    assert "campaign.closed" in detail.text and "待重试" in detail.text
    assert made.json()["secret"] not in detail.text  # the secret is never shown again
    hook = {"url": "https://other.example/h", "events": ["campaign.closed"]}
    theirs = other_tenant.post("/v1/webhook-endpoints", hook)
    assert console.get(f"/console/webhooks/{theirs.json()['id']}").status_code == 404
    assert "other.example" not in console.get("/console/webhooks").text


def test_user_attribution_history_and_order_explain(
    client: Any, console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    tenant.put("/v1/program", {"commission_bps": [1000, 500]})
    tenant.put("/v1/distributors/top", {"nickname": "上级"})
    tenant.put("/v1/distributors/mid", {"nickname": "中级"})
    top = tenant.post("/v1/links", {"distributor_id": "top"}).json()["code"]
    mid = tenant.post("/v1/links", {"distributor_id": "mid"}).json()["code"]
    tenant.post("/v1/referrals", {"user_id": "mid", "code": top})
    tenant.post("/v1/referrals", {"user_id": "buyer", "code": mid})
    tenant.post("/v1/referrals", {"user_id": "buyer", "code": top})  # kept: first binding wins
    paid = datetime.now(UTC).isoformat()
    tenant.post("/v1/orders", {"order_id": "ord-1", "user_id": "buyer", "amount_fen": 9_999,
                               "paid_at": paid})  # fmt: skip
    user = console.get("/console/users", params={"q": "buyer"})
    assert user.url.path == "/console/users/buyer"
    assert "bound" in user.text and "kept" in user.text
    assert 'href="/console/distributors/mid"' in user.text
    order = console.get("/console/orders", params={"q": "ord-1"})
    assert order.url.path == "/console/orders/ord-1"
    assert "floor(9999 × 1000 / 10000) = 999" in order.text
    assert "floor(9999 × 500 / 10000) = 499" in order.text
    # Another tenant's order and user are not found (their user has no history here either).
    other_tenant.put("/v1/distributors/o", {"nickname": "o"})
    code = other_tenant.post("/v1/links", {"distributor_id": "o"}).json()["code"]
    other_tenant.post("/v1/referrals", {"user_id": "their-user", "code": code})
    other_tenant.post("/v1/orders", {"order_id": "their-order", "user_id": "their-user",
                                     "amount_fen": 100, "paid_at": paid})  # fmt: skip
    assert console.get("/console/orders/their-order").status_code == 404
    theirs = console.get("/console/users/their-user")
    assert "their-user" in theirs.text and code not in theirs.text and "bound" not in theirs.text


def test_campaign_create_and_edit_before_it_starts(
    client: Any, console: Any, tenant: TenantKeys
) -> None:
    from zoneinfo import ZoneInfo

    token = _csrf(console.get("/console/campaigns/new").text)
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    form = {"csrf_token": token, "name": "预热", "metric": "orders", "prizes": "1 500\n2-3 100",
            "starts_at": (local + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (local + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            "rp_mode": "fixed_per_invite", "rp_budget_fen": "10000",
            "rp_amount_fen": "100"}  # fmt: skip
    bad = console.post("/console/campaigns", data={**form, "ends_at": form["starts_at"]})
    assert bad.status_code == 422 and "ends_at" in bad.text
    overlap = console.post("/console/campaigns", data={**form, "prizes": "1-3 500\n2 100"})
    assert overlap.status_code == 422 and "prizes" in overlap.text
    created = console.post("/console/campaigns", data=form)
    campaign_id = created.url.path.rsplit("/", 1)[1]
    api = tenant.get(f"/v1/campaigns/{campaign_id}").json()
    assert api["prizes"] == [{"rank_from": 1, "rank_to": 1, "amount_fen": 500},
                             {"rank_from": 2, "rank_to": 3, "amount_fen": 100}]  # fmt: skip
    assert api["red_packet"]["amount_fen"] == 100
    edit = console.get(f"/console/campaigns/{campaign_id}/edit")
    assert 'value="预热"' in edit.text and "2-3 100" in edit.text
    saved = console.post(f"/console/campaigns/{campaign_id}/edit",
                         data={**form, "name": "预热（改）", "prizes": "1 800"})  # fmt: skip
    assert saved.status_code == 200 and saved.url.path == f"/console/campaigns/{campaign_id}"
    api = tenant.get(f"/v1/campaigns/{campaign_id}").json()
    assert api["name"] == "预热（改）" and api["prizes"][0]["amount_fen"] == 800
    assert api["red_packet"]["seed"] is not None
    assert "campaign.edited" in console.get(f"/console/campaigns/{campaign_id}").text
    # Once started, it can no longer be edited.
    started = tenant.post("/v1/campaigns", {
        "name": "已开始", "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "ends_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "metric": "invites",
    }).json()  # fmt: skip
    refused = console.post(f"/console/campaigns/{started['id']}/edit", data=form)
    assert refused.status_code == 409
    assert tenant.get(f"/v1/campaigns/{started['id']}").json()["name"] == "已开始"
