"""The tier and withdrawal pages in a real browser (Debian's chromium through playwright):
save tiers, set a distributor's tier, approve and reject withdrawals in batches after the
confirmation, export, and mark paid from an uploaded CSV. Skipped visibly without chromium
(failing under CI), as the other console browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_tenant
from tests.server.browser import chromium_or_skip, serve_app

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"


@pytest.fixture
def lifecycle_server(settings: Any) -> Iterator[str]:
    with serve_app(settings) as url:
        yield url


@pytest.mark.sqlite_only  # the pages are engine-agnostic; the TestClient tests run on both
def test_tiers_and_withdrawals_in_a_real_browser(client: Any, lifecycle_server: str) -> None:
    from liebian_sdk import Client
    from playwright.sync_api import Route, expect, sync_playwright

    executable = chromium_or_skip("the console tier/withdrawal browser test")
    tenant = make_tenant(client, "lifecycle-browser")
    base = lifecycle_server
    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 0,
                               "withdrawal": {"min_fen": 100, "fee_bps": 100,
                                              "cooldown_seconds": 0}})  # fmt: skip
    paid_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright, Client(base, tenant.sdk_key) as sdk:
        sdk.distributors.upsert("amy", "艾米")
        link = sdk.links.create("amy")
        sdk.referrals.bind("buyer", code=link.code)
        sdk.orders.paid("o1", "buyer", 30_000, paid_at)
        ids = [sdk.distributors.withdraw("amy", n).id for n in (1_000, 500, 300)]
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
        )
        try:
            context = browser.new_context(accept_downloads=True)
            context.route("**/*", only_loopback)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/console/login")
            page.fill("#key", tenant.admin_key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/console")

            # Tiers: a refused line shows the API's message; then saved.
            page.goto(f"{base}/console/tiers")
            page.fill("#tiers", "member 1000\ngold 900")
            page.click("#save-tiers")
            expect(page.locator(".errors")).to_contain_text("tiers[1].commission_bps")
            page.fill("#tiers", "member 1000\ngold 1500 own_sales_fen=100000")
            page.click("#save-tiers")
            expect(page.locator("#tier-table")).to_contain_text("gold")
            page.fill("#d", "amy")
            page.click("form[method=get] button[type=submit]")
            page.select_option("#name", "gold")
            page.fill("#reason", "大客户")
            page.click("#assign-tier")
            expect(page.locator("#current-tier")).to_contain_text("gold")

            # Withdrawals: approve two, reject one (after the confirmation), export, pay.
            page.goto(f"{base}/console/withdrawals")
            page.check(f"#pick-{ids[0]}")
            page.check(f"#pick-{ids[1]}")
            page.click("#approve-selected")
            expect(page.locator("#confirm-rows")).to_contain_text(ids[1])
            page.click("#confirm-approve")
            expect(page.locator("#withdrawals")).to_contain_text(ids[0])  # approved list
            page.goto(f"{base}/console/withdrawals")
            page.check(f"#pick-{ids[2]}")
            page.fill("#reason", "资料不符")
            page.click("#reject-selected")
            page.click("#confirm-reject")
            expect(page.locator("#withdrawals")).to_contain_text("资料不符")
            page.goto(f"{base}/console/withdrawals?status=approved")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            with page.expect_download() as download:
                page.click("#export-csv")
            saved = ARTIFACTS / "withdrawals-approved.csv"
            download.value.save_as(saved)
            assert ids[0] in saved.read_text(encoding="utf-8-sig")
            references = ARTIFACTS / "withdrawal-references.csv"
            references.write_text(
                f"withdrawal_id,transfer_ref\n{ids[0]},WX-1\n{ids[1]},WX-2\n", encoding="utf-8"
            )
            page.set_input_files("#references", str(references))
            page.click("#check-references")
            expect(page.locator("#confirm-rows")).to_contain_text("WX-2")
            page.click("#confirm-paid")
            expect(page.locator("#withdrawals")).to_contain_text("WX-1")
            assert errors == []
        finally:
            browser.close()
    statuses = {w["id"]: w["status"] for w in tenant.get("/v1/withdrawals").json()["withdrawals"]}
    assert statuses == {ids[0]: "paid", ids[1]: "paid", ids[2]: "rejected"}
    assert tenant.get("/v1/distributors/amy").json()["tier_name"] == "gold"
