"""``/schema`` works without internet: the UI's scripts, styles and icon are served by the app.

The browser test loads the page in Debian's chromium (driven by playwright, no browser
download) from a real server on 127.0.0.1 and fails if the page asks any other host for
anything. Without chromium it is skipped with the reason shown, except under CI, where it fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server.browser import chromium_or_skip, serve_app


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    # Scripts may also load by URL from inline code (import(), fetch(), url(...)).
    parser.urls += re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", html.split("spec:", 1)[0])
    return parser.urls


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_schema_pages_load_only_what_the_app_serves(client, page):
    response = client.get(page)
    assert response.status_code == 200
    urls = _references(response.text)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


@pytest.fixture
def live_server(settings: Any) -> Iterator[str]:
    with serve_app(settings) as url:
        yield url


@pytest.mark.sqlite_only  # the page does not depend on the engine; one pass is enough
def test_schema_renders_the_operations_offline_in_a_real_browser(client, live_server):
    from playwright.sync_api import Route, sync_playwright

    executable = chromium_or_skip("the /schema browser test")
    document = client.get("/schema/openapi.json").json()
    methods = {"get", "put", "post", "patch", "delete"}
    operations = sum(1 for item in document["paths"].values() for m in item if m in methods)
    outside: list[str] = []
    local: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            local.append(url)
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            # Belt and braces beside the interception: no name resolves inside this browser.
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
        )
        try:
            context = browser.new_context(service_workers="block")
            context.route("**/*", only_loopback)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{live_server}/schema", wait_until="load")
            page.wait_for_function(
                "document.body.innerText.replace(/\\u200b/g, '').includes('/v1/orders')",
                timeout=20_000,
            )
            text = page.inner_text("body").replace("\u200b", "")
            rendered = page.locator(".opblock").count()
        finally:
            browser.close()
    assert outside == [], f"/schema asked other hosts for {outside}"
    assert not errors, errors
    assert any(u.endswith(".js") for u in local) and any(u.endswith(".css") for u in local)
    for path in ("/v1/orders", "/v1/program", "/v1/posters/{distributor_id}", "/s/{code}"):
        assert path in text, path
    assert rendered == operations, (rendered, operations)


def test_without_chromium_the_browser_test_skips_visibly_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match="WARNING: the /schema browser test was SKIPPED"
    ):
        chromium_or_skip("the /schema browser test", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="needs chromium under CI"):
        chromium_or_skip("the /schema browser test", "/nonexistent")
