"""The console journey in a real browser: Debian's chromium driven by playwright.

Signs in, edits the program, creates a campaign, watches the live board move after bindings
made through the SDK against the same live server, closes the campaign, drafts, exports,
approves and pays a settlement (references uploaded as CSV), and checks the balances.
Screenshots at 375 px and 1280 px go to ``tests/artifacts/console/`` (git-ignored).
Without chromium the test is skipped with a visible warning, except under CI, where it fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_tenant
from tests.server.browser import chromium_or_skip, serve_app

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def console_server(settings: Any) -> Iterator[str]:
    with serve_app(settings) as url:
        yield url


def _local(moment: datetime, seconds: bool = False) -> str:
    return moment.astimezone(SHANGHAI).strftime(
        "%Y-%m-%dT%H:%M:%S" if seconds else "%Y-%m-%dT%H:%M"
    )


def _shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((375, 812), (1280, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("() => document.fonts.ready.then(() => true)")  # the app-served CJK font
        # Chinese draws with the app's font (Debian's chromium has none of its own): no boxes.
        assert page.evaluate("() => document.fonts.check('15px \"Liebian CJK\"', document.title)")
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.sqlite_only  # the pages are engine-agnostic; the TestClient tests run on both
def test_console_journey_in_a_real_browser(client: Any, console_server: str) -> None:
    from liebian_sdk import Client
    from playwright.sync_api import Route, expect, sync_playwright

    executable = chromium_or_skip("the console browser test")
    tenant = make_tenant(client, "journey")
    base = console_server
    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright, Client(base, tenant.sdk_key) as sdk:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
        )
        try:
            context = browser.new_context(
                accept_downloads=True, viewport={"width": 1280, "height": 900}
            )
            context.route("**/*", only_loopback)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # Sign in.
            page.goto(f"{base}/console/login")
            _shoot(page, "login")
            page.fill("#key", tenant.admin_key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/console")

            # Program: two levels, no freeze (so the settlement can include today's entries).
            page.goto(f"{base}/console/program")
            page.fill("#commission_bps_1", "1000")
            page.fill("#commission_bps_2", "500")
            page.fill("#freeze_days", "0")
            page.click("main button[type=submit]")
            expect(page.locator(".ok")).to_be_visible()
            assert sdk.program.get().commission_bps == [1000, 500]

            # A campaign: invites, prizes for ranks 1 and 2-3.
            now = datetime.now(UTC)
            page.goto(f"{base}/console/campaigns/new")
            page.fill("#name", "双十二邀请赛")
            page.fill("#starts_at", _local(now - timedelta(hours=2)))
            page.fill("#ends_at", _local(now + timedelta(days=1)))
            page.select_option("#metric", "invites")
            page.fill("#prizes", "1 1000\n2-3 500")
            page.click("main button[type=submit]")
            page.wait_for_url(f"{base}/console/campaigns/cmp_*")
            campaign_id = page.url.rsplit("/", 1)[1]
            expect(page.locator("#board")).to_be_visible()

            # Bindings and an order through the SDK; the board refreshes itself (htmx poll).
            sdk.distributors.upsert("alice", "爱丽丝")
            sdk.distributors.upsert("bob", "鲍勃")
            alice = sdk.links.create("alice", campaign_id)
            bob = sdk.links.create("bob", campaign_id)
            for user in ("u1", "u2"):
                sdk.referrals.bind(user, code=alice.code)
            sdk.referrals.bind("u3", code=bob.code)
            sdk.orders.paid("o1", "u1", 10_000, now - timedelta(minutes=30))
            first = page.locator("#board tbody tr").first
            expect(first).to_contain_text("爱丽丝", timeout=10_000)
            expect(first).to_contain_text("¥10.00")
            expect(page.locator("#board tbody tr").nth(1)).to_contain_text("鲍勃")
            _shoot(page, "campaign")

            # Close: the confirmation lists the awards before anything is paid.
            page.click(f"a[href='/console/campaigns/{campaign_id}/close']")
            expect(page.locator("#awards")).to_contain_text("alice")
            expect(page.locator("#awards")).to_contain_text("¥10.00")
            assert sdk.campaigns.get(campaign_id).status == "open"
            page.click("#confirm-close")
            expect(page.locator("#confirm-close")).to_have_count(0)
            assert sdk.campaigns.get(campaign_id).status == "closed"

            # Settlement: draft with a cutoff of now (to the second), review, export.
            time.sleep(1.1)
            page.goto(f"{base}/console/settlements")
            page.fill("#cutoff", _local(datetime.now(UTC), seconds=True))
            page.click("main form button[type=submit]")
            page.wait_for_url(f"{base}/console/settlements/stl_*")
            settlement_id = page.url.rsplit("/", 1)[1]
            expect(page.locator("#lines")).to_contain_text("alice")
            expect(page.locator("#lines")).to_contain_text("¥20.00")  # 10.00 commission + prize
            _shoot(page, "settlement")
            for button in ("#export-csv", "#export-xlsx"):
                # A background export: a progress bar polled by htmx, then the download.
                page.click(button)
                page.wait_for_url(f"{base}/console/settlements/{settlement_id}/exports/*")
                expect(page.locator("#export-status")).to_have_attribute("data-status", "done")
                _shoot(page, f"export-{button[8:]}")
                with page.expect_download() as download:
                    page.click("#export-download")
                saved = ARTIFACTS / download.value.suggested_filename
                download.value.save_as(saved)
                assert saved.stat().st_size > 100
                page.goto(f"{base}/console/settlements/{settlement_id}")
            assert "alice" in (ARTIFACTS / f"{settlement_id}.csv").read_text(encoding="utf-8-sig")

            # Approve (after a confirmation), then mark paid with a references CSV.
            page.click("#approve")
            page.click("#confirm-approve")
            expect(page.locator("#settlement-status")).to_contain_text("已审核")
            references = ARTIFACTS / "references.csv"
            references.write_text(
                "distributor_id,transfer_ref\nalice,WX-001\nbob,WX-002\n", encoding="utf-8"
            )
            page.set_input_files("#references", str(references))
            page.click("form[enctype] button[type=submit]")
            expect(page.locator("main table")).to_contain_text("WX-001")
            page.click("#confirm-paid")
            expect(page.locator("#settlement-status")).to_contain_text("已打款")
            expect(page.locator("#lines")).to_contain_text("WX-002")

            # Balances: paid through the console, read through the SDK and on the page.
            assert sdk.distributors.get("alice").balance.paid_fen == 2_000
            assert sdk.distributors.get("bob").balance.paid_fen == 500
            page.goto(f"{base}/console/distributors/alice")
            expect(page.locator("#balance")).to_contain_text("¥20.00")
            _shoot(page, "distributor")

            # Poster template: the server renders the preview live as the JSON changes.
            page.goto(f"{base}/console/posters/default")
            page.fill("#distributor_id", "alice")
            page.press("#distributor_id", "Tab")
            expect(page.locator("#preview img")).to_be_visible()
            _shoot(page, "poster")
            page.fill("#document", '{"width": 300, "height": 400, "views": [{"type": "circle"}]}')
            expect(page.locator("#preview [role=alert]")).to_contain_text("views[0]")

            # The overview draws its charts with the app-served chart.js.
            page.goto(f"{base}/console")
            page.wait_for_function("typeof Chart === 'function'")
            assert page.evaluate("Object.keys(Chart.instances).length") == 2
            _shoot(page, "overview")
        finally:
            browser.close()
    assert outside == [], f"the console asked other hosts for {outside}"
    assert not errors, errors
    print(f"console screenshots and exports: {ARTIFACTS}")


def test_without_chromium_the_journey_skips_visibly_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match="WARNING: the console browser test was SKIPPED"
    ):
        chromium_or_skip("the console browser test", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="needs chromium under CI"):
        chromium_or_skip("the console browser test", "/nonexistent")
