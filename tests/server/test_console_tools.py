"""Console pages of the second round: poster templates with a live preview, webhook retry now,
settlement exports with progress, and distributor search by nickname."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from tests.conftest import TenantKeys
from tests.server.test_console import _check_accessible, _csrf, console, new_browser, sign_in

__all__ = ["console"]  # the signed-in browser fixture, shared

SMALL = {
    "width": 300,
    "height": 400,
    "background": "#fff0f0",
    "views": [
        {"type": "text", "text": "{nickname} 邀请你", "css": {"top": 20, "left": 20,
                                                            "fontSize": 24, "color": "#c8102e"}},
        {"type": "qrcode", "content": "{qr}", "css": {"top": 100, "left": 50, "width": 200,
                                                      "height": 200}},
    ],
}  # fmt: skip


def _preview(browser: Any, name: str, document: Any, distributor_id: str, csrf: str | None,
             htmx: bool = True) -> Any:  # fmt: skip
    data = {"document": document if isinstance(document, str) else json.dumps(document),
            "distributor_id": distributor_id}  # fmt: skip
    headers = {"HX-Request": "true"} if htmx else {}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return browser.post(f"/console/posters/{name}/preview", data=data, headers=headers)


def _png_of(html: str) -> Image.Image:
    match = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert match, html[:500]
    return Image.open(io.BytesIO(base64.b64decode(match.group(1))))


def test_poster_editor_previews_live_and_saves_through_the_api_service(
    client: Any, console: Any, tenant: TenantKeys
) -> None:
    tenant.put("/v1/distributors/amy", {"nickname": "小美"})
    listing = console.get("/console/posters")
    assert listing.status_code == 200 and "/console/posters/default" in listing.text
    editor = console.get("/console/posters/spring")  # a new name starts from the default
    assert editor.status_code == 200 and 'hx-post="/console/posters/spring/preview"' in editor.text
    assert "delay:600ms" in editor.text  # debounced
    csrf = _csrf(editor.text)
    shown = _preview(console, "spring", SMALL, "amy", csrf)
    assert shown.status_code == 200, shown.text[:400]
    assert shown.text.lstrip().startswith('<figure id="preview"')  # the fragment only
    assert _png_of(shown.text).size == (300, 400)
    # The preview is the API's own rendering of the same template for the same distributor.
    tenant.put("/v1/poster-templates/api-copy", SMALL)
    api = tenant.get("/v1/posters/amy", scope="sdk", params={"template": "api-copy"})
    assert base64.b64decode(
        re.search(r"base64,([^\"]+)", shown.text).group(1)  # type: ignore[union-attr]
    ) == api.content
    # A template the API refuses shows the API's problem, naming the field.
    bad = {**SMALL, "views": [{"type": "circle", "css": {}}]}
    refused = _preview(console, "spring", bad, "amy", csrf)
    assert refused.status_code == 200  # htmx swaps only a 2xx: the errors are the content
    assert "views[0]" in refused.text and "<img" not in refused.text
    assert 'role="alert"' in refused.text
    assert "not valid JSON" in _preview(console, "spring", "{nope", "amy", csrf).text
    assert _preview(console, "spring", bad, "amy", csrf, htmx=False).status_code == 422
    # Without JavaScript the Preview button gets the whole page with the image.
    page = _preview(console, "spring", SMALL, "amy", csrf, htmx=False)
    assert "<title>" in page.text and _png_of(page.text).size == (300, 400)
    # Save: stored as the API stores it, with who did it.
    saved = console.post("/console/posters/spring", data={
        "csrf_token": csrf, "document": json.dumps(SMALL), "distributor_id": "amy",
    }, follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303, saved.text[:300]
    assert tenant.get("/v1/poster-templates/spring", scope="sdk").json()["width"] == 300
    after = console.get(saved.headers["location"])
    assert "poster_template.saved" in after.text and '"width": 300' in html.unescape(after.text)
    assert "spring" in console.get("/console/posters").text
    refused_save = console.post("/console/posters/spring", data={
        "csrf_token": csrf, "document": json.dumps(bad)})  # fmt: skip
    assert refused_save.status_code == 422 and "views[0]" in refused_save.text
    assert tenant.get("/v1/poster-templates/spring", scope="sdk").json()["width"] == 300


def test_poster_forms_need_the_csrf_token_and_stay_in_the_tenant(
    client: Any, console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    tenant.put("/v1/distributors/amy", {"nickname": "小美"})
    other_tenant.put("/v1/distributors/bob", {"nickname": "别家"})
    other_tenant.put("/v1/poster-templates/theirs", {**SMALL, "background": "#123456"})
    editor = console.get("/console/posters/theirs")
    assert "#123456" not in editor.text  # their template is not ours: a new one here
    assert "theirs" not in console.get("/console/posters").text.split("<tbody>")[1]
    assert _preview(console, "x", SMALL, "amy", None).status_code == 403
    assert _preview(console, "x", SMALL, "amy", "wrong-token").status_code == 403
    no_token = console.post("/console/posters/x", data={"document": json.dumps(SMALL)})
    assert no_token.status_code == 403
    assert tenant.get("/v1/poster-templates/x", scope="sdk").status_code == 404
    # Another tenant's distributor is unknown here (the API's 404, shown in the preview).
    theirs = _preview(console, "x", SMALL, "bob", _csrf(editor.text))
    assert "<img" not in theirs.text and "does not exist" in theirs.text
    ours = _preview(console, "x", SMALL, "amy", _csrf(editor.text))
    assert "<img" in ours.text


def test_webhook_retry_now_from_the_console(
    client: Any, console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    from tests.server.test_webhooks import insert_endpoint, paid_order

    endpoint_id = insert_endpoint(tenant, "http://127.0.0.1:9/hook")  # refused: never sent
    paid_order(tenant)
    page = console.get(f"/console/webhooks/{endpoint_id}")
    assert "立即重试" in page.text
    delivery_id = re.search(r'id="delivery-(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    url = f"/console/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry"
    assert console.post(url).status_code == 403  # no CSRF token
    row = console.post(url, headers={"HX-Request": "true", "X-CSRF-Token": _csrf(page.text)})
    assert row.status_code == 200
    assert row.text.startswith(f'<tr id="delivery-{delivery_id}">') and "refused" in row.text
    plain = console.post(url, data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert plain.status_code == 303
    attempts = tenant.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries").json()
    assert attempts["deliveries"][0]["attempts"] == 2
    other = sign_in(client, other_tenant.admin_key)
    other_page = other.get("/console/webhooks")
    response = other.post(url, data={"csrf_token": _csrf(other_page.text)})
    assert response.status_code == 404
    other.__exit__(None, None, None)


def test_new_pages_have_titles_and_labelled_fields(console: Any, tenant: TenantKeys) -> None:
    tenant.put("/v1/distributors/amy", {"nickname": "小美"})
    settlement = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()})
    pages = ["/console/posters", "/console/posters/default", "/console/distributors?q=小&by=prefix",
             f"/console/settlements/{settlement.json()['id']}"]  # fmt: skip
    for lang in ("zh", "en"):
        console.get(f"/console/lang/{lang}")
        for url in pages:
            response = console.get(url)
            assert response.status_code == 200, (url, response.text[:300])
            _check_accessible(response.text, url)


NICKNAMES = {"a1": "小美", "a2": "小明", "a3": "大小姐", "a4": "Xiao", "a5": "小", "a6": "50%_off"}


def _all_pages(tenant: TenantKeys, params: dict[str, Any]) -> list[str]:
    found: list[str] = []
    cursor = None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = tenant.get("/v1/distributors", params=query)
        assert response.status_code == 200, response.text
        found += [d["distributor_id"] for d in response.json()["distributors"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the cursors never ended")


def test_nickname_search_by_prefix_and_contains_pages_and_stays_in_the_tenant(
    tenant: TenantKeys, other_tenant: TenantKeys, monkeypatch: Any
) -> None:
    from server.referrals import search

    for distributor_id, nickname in NICKNAMES.items():
        tenant.put(f"/v1/distributors/{distributor_id}", {"nickname": nickname})
    other_tenant.put("/v1/distributors/z1", {"nickname": "小王"})
    # Prefix: nickname order (bytewise), one page or many, the same rows.
    assert _all_pages(tenant, {"nickname": "小"}) == ["a5", "a2", "a1"]
    assert _all_pages(tenant, {"nickname": "小", "limit": 1}) == ["a5", "a2", "a1"]
    assert _all_pages(tenant, {"nickname": "x"}) == []  # exact on characters (case)
    assert _all_pages(tenant, {"nickname": "50%"}) == ["a6"]  # % and _ are plain characters
    assert _all_pages(tenant, {"nickname": "5_"}) == []
    # Contains: by id; a bounded window per request, so pages may be short yet go on.
    assert _all_pages(tenant, {"nickname": "小", "match": "contains"}) == ["a1", "a2", "a3", "a5"]
    monkeypatch.setattr(search, "SCAN_WINDOW", 2)
    first = tenant.get("/v1/distributors", params={"nickname": "姐", "match": "contains"}).json()
    assert first["distributors"] == [] and first["next_cursor"]  # a1, a2 examined: search on
    assert _all_pages(tenant, {"nickname": "姐", "match": "contains"}) == ["a3"]
    assert _all_pages(tenant, {"nickname": "小", "match": "contains", "limit": 1}) == [
        "a1", "a2", "a3", "a5"]  # fmt: skip
    # Held distributors are found with ?status=held only.
    tenant.put("/v1/distributors/a2", {"nickname": "小明", "status": "held"})
    assert _all_pages(tenant, {"nickname": "小", "status": "held"}) == ["a2"]
    # Bounds: the text, the cursor.
    long = tenant.get("/v1/distributors", params={"nickname": "长" * 65})
    assert long.status_code == 422 and long.json()["errors"][0]["field"] == "nickname"
    bad = tenant.get("/v1/distributors", params={"nickname": "小", "cursor": "eyJhIjogMX0"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert _all_pages(other_tenant, {"nickname": "小", "match": "contains"}) == ["z1"]


def test_console_finds_distributors_by_nickname(
    console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    for distributor_id, nickname in NICKNAMES.items():
        tenant.put(f"/v1/distributors/{distributor_id}", {"nickname": nickname})
    other_tenant.put("/v1/distributors/z1", {"nickname": "小王"})
    found = console.get("/console/distributors", params={"q": "小", "by": "prefix"})
    assert found.status_code == 200
    assert "小美" in found.text and "小明" in found.text and "大小姐" not in found.text
    assert "小王" not in found.text
    contains = console.get("/console/distributors", params={"q": "小", "by": "contains"})
    assert "大小姐" in contains.text and "小王" not in contains.text
    by_id = console.get("/console/distributors", params={"q": "a1"}, follow_redirects=False)
    assert by_id.status_code == 303 and by_id.headers["location"] == "/console/distributors/a1"


def _settlement_with_lines(tenant: TenantKeys, count: int) -> str:
    from tests.server.test_orders import order
    from tests.server.test_referrals import arrive, link_of, register

    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 0})
    for n in range(count):
        register(tenant, f"d{n:02d}")
        arrive(tenant, f"u{n:02d}", link_of(tenant, f"d{n:02d}"))
        order(tenant, f"o{n:02d}", 1000 + n, user=f"u{n:02d}",
              paid_at=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
    made = tenant.post("/v1/settlements", {"cutoff": datetime.now(UTC).isoformat()})
    assert made.status_code == 201, made.text
    assert len(made.json()["lines"]) == count
    return str(made.json()["id"])


def _finish(console: Any, url: str) -> str:
    """Poll the progress fragment as htmx does, until the export is no longer running."""
    for _ in range(600):
        part = console.get(url, params={"part": "1"}, headers={"HX-Request": "true"})
        assert part.status_code == 200 and part.text.startswith('<div id="export-job"')
        status = re.search(r'data-status="(\w+)"', part.text).group(1)  # type: ignore[union-attr]
        if status != "running":
            assert "every 1s" not in part.text  # polling stops with the last answer
            return part.text
        assert "every 1s" in part.text
        time.sleep(0.05)
    raise AssertionError("the export never finished")


def test_exports_run_in_the_background_with_progress_and_give_the_same_file(
    client: Any, console: Any, tenant: TenantKeys, other_tenant: TenantKeys, monkeypatch: Any
) -> None:
    from server.settlements import export, export_jobs

    monkeypatch.setattr(export, "PAGE", 2)  # several pages of lines: progress moves
    monkeypatch.setattr(export_jobs, "PROGRESS_EVERY_S", 0.0)
    reported: list[tuple[str, int | None]] = []
    update = export_jobs._update

    async def spy(db: Any, tenant_id: str, export_id: str, status: str, lines: int | None,
                  *rest: Any) -> None:  # fmt: skip
        reported.append((status, lines))
        await update(db, tenant_id, export_id, status, lines, *rest)

    monkeypatch.setattr(export_jobs, "_update", spy)
    settlement = _settlement_with_lines(tenant, 5)
    page = console.get(f"/console/settlements/{settlement}")
    token = _csrf(page.text)
    assert 'id="export-csv"' in page.text and 'id="export-xlsx"' in page.text
    for kind in ("csv", "xlsx"):
        reported.clear()
        started = console.post(f"/console/settlements/{settlement}/exports",
                               data={"csrf_token": token, "kind": kind}, follow_redirects=False)
        assert started.status_code == 303, started.text[:300]
        progress_url = started.headers["location"]
        shown = console.get(progress_url)
        assert shown.status_code == 200 and "<progress" in shown.text
        final = _finish(console, progress_url)
        assert 'data-status="done"' in final and "100%" in final
        running = [lines for status, lines in reported if status == "running"]
        assert running and running == sorted(running) and max(running) <= 5
        assert any(0 < n < 5 for n in running), running  # seen part-way
        download = re.search(r'href="([^"]+/file)"', final).group(1)  # type: ignore[union-attr]
        got = console.get(download)
        assert got.status_code == 200
        assert got.headers["content-disposition"].startswith("attachment")
        direct = console.get(f"/console/settlements/{settlement}/export.{kind}")
        if kind == "csv":
            assert got.content == direct.content  # the same bytes as the direct export
            assert got.content.startswith("\ufeff".encode())
        else:
            assert got.content[:2] == b"PK" and len(got.content) > 1000
        assert download in console.get(f"/console/settlements/{settlement}").text
    # CSRF and bounds.
    assert console.post(f"/console/settlements/{settlement}/exports",
                        data={"kind": "csv"}).status_code == 403  # fmt: skip
    bad = console.post(f"/console/settlements/{settlement}/exports",
                       data={"csrf_token": token, "kind": "pdf"})  # fmt: skip
    assert bad.status_code == 422 and "kind" in bad.text
    # Another tenant sees none of it.
    other = sign_in(client, other_tenant.admin_key)
    assert other.get(progress_url).status_code == 404
    assert other.get(download).status_code == 404
    other_token = _csrf(other.get("/console").text)
    assert other.post(f"/console/settlements/{settlement}/exports",
                      data={"csrf_token": other_token, "kind": "csv"}).status_code == 404
    other.__exit__(None, None, None)


def test_console_serves_its_own_chinese_font_in_slices(client: Any) -> None:
    """A browser with no CJK font still draws the console's Chinese: the app serves slices
    of the posters' font, each with the characters its unicode-range announces."""
    from fontTools.ttLib import TTFont

    from server.console.webfont import FAMILY, slices

    with new_browser(client) as browser:
        login = browser.get("/console/login")
        assert 'href="/console/fonts/cjk.css"' in login.text
        css = browser.get("/console/fonts/cjk.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        rules = re.findall(r"src:url\(([^)]+)\)[^}]*unicode-range:([^}]+)\}", css.text)
        assert len(rules) == len(slices()) > 10 and f'font-family:"{FAMILY}"' in css.text
        ui_url, ui_range = rules[0]  # the console's own strings
        ranges = [set(r.split(",")) for _, r in rules]
        assert not ranges[0] & set().union(*ranges[1:])  # disjoint: one face per character
        assert "U+5206" in ui_range.split(",")  # 分 (分销)
        woff = browser.get(ui_url)
        assert woff.status_code == 200 and woff.content[:4] == b"wOFF"
        assert 10_000 < len(woff.content) < 200_000  # a small slice, not the 16 MB font
        assert "immutable" in woff.headers["cache-control"]
        cmap = TTFont(io.BytesIO(woff.content)).getBestCmap()
        assert {ord(c) for c in "分销员结算活动"} <= set(cmap)
        assert ord("A") not in cmap  # Latin stays with the system fonts
        assert browser.get(ui_url.replace("/0.woff", "/99999.woff")).status_code == 404
        assert browser.get("/console/fonts/000000000000/0.woff").status_code == 404
        assert f'"{FAMILY}"' in browser.get("/console/static/console.css").text
