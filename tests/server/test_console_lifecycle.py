"""Console tier and withdrawal pages: the API's validation messages, CSRF, tenant isolation,
batch decisions after a confirmation, export and paid references from a CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TenantKeys
from tests.server.test_console import _check_accessible, _csrf, sign_in
from tests.server.test_withdrawals import ask, setup, verified


@pytest.fixture
def console(client: Any, tenant: TenantKeys) -> Iterator[Any]:
    browser = sign_in(client, tenant.admin_key)
    yield browser
    browser.__exit__(None, None, None)


def _text(response: Any) -> str:
    return response.text.replace("&#39;", "'").replace("&quot;", '"').replace("&gt;", ">")


def test_tiers_form_saves_and_shows_the_apis_messages(console: Any, tenant: TenantKeys) -> None:
    token = _csrf(console.get("/console/tiers").text)
    lines = "member 1000,500\ngold 900,600 team_size_l1=3"
    bad = console.post("/console/tiers", data={"csrf_token": token, "tiers": lines})
    assert bad.status_code == 422
    api = tenant.put("/v1/program", {"commission_bps": [1000, 500], "tiers": [
        {"name": "member", "commission_bps": [1000, 500]},
        {"name": "gold", "commission_bps": [900, 600], "promote_when": {"team_size_l1": 3}},
    ]}).json()  # fmt: skip
    assert api["errors"][0]["field"] == "tiers[1].commission_bps"
    assert api["errors"][0]["message"] in _text(bad)
    assert "gold 900,600 team_size_l1=3" in bad.text  # what was typed is shown again
    garbled = console.post("/console/tiers", data={"csrf_token": token, "tiers": "gold"})
    assert garbled.status_code == 422 and "line 1" in garbled.text
    unknown = console.post(
        "/console/tiers", data={"csrf_token": token, "tiers": "a 10,5 height=3"}
    )
    assert unknown.status_code == 422 and "height" in unknown.text
    no_csrf = console.post("/console/tiers", data={"tiers": "member 1000,500"})
    assert no_csrf.status_code == 403
    lines = "member 1000,500\ngold 1500,800 team_sales_fen=100000 team_sales_days=30"
    ok = console.post("/console/tiers", data={"csrf_token": token, "tiers": lines})
    assert ok.status_code == 200 and "saved=1" in str(ok.url)
    tiers = tenant.get("/v1/program").json()["tiers"]
    assert [t["name"] for t in tiers] == ["member", "gold"]
    assert tiers[1]["promote_when"]["team_sales_fen"] == 100_000
    assert tiers[1]["promote_when"]["team_sales_days"] == 30
    page = console.get("/console/tiers").text
    assert lines in page and "tiers.updated" in page


def test_operator_sets_and_demotes_a_distributors_tier(console: Any, tenant: TenantKeys) -> None:
    tenant.put("/v1/program", {"commission_bps": [1000], "tiers": [
        {"name": "member", "commission_bps": [1000]},
        {"name": "gold", "commission_bps": [2000]}]})  # fmt: skip
    tenant.put("/v1/distributors/d1", {"nickname": "小红"})
    page = console.get("/console/tiers?d=d1")
    assert page.status_code == 200 and "小红" in page.text
    token = _csrf(page.text)
    form = {"csrf_token": token, "distributor_id": "d1", "name": "gold"}
    no_reason = console.post("/console/tiers/assign", data=form)
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    unknown = console.post("/console/tiers/assign", data=form | {"name": "x", "reason": "r"})
    assert unknown.status_code == 422 and "is not a tier of the program" in _text(unknown)
    console.post("/console/tiers/assign", data=form | {"reason": "大客户"})
    assert tenant.get("/v1/distributors/d1").json()["tier_name"] == "gold"
    console.post("/console/tiers/assign", data=form | {"name": "member", "reason": "降级"})
    assert tenant.get("/v1/distributors/d1").json()["tier_name"] == "member"
    shown = console.get("/console/tiers?d=d1").text
    assert "tier.set" in shown and "降级" in shown
    assert console.get("/console/tiers?d=nobody").status_code == 404


def test_withdrawal_queue_approve_reject_export_and_paid(console: Any, tenant: TenantKeys) -> None:
    setup(tenant)
    first = ask(tenant, 500).json()["id"]
    second = ask(tenant, 400).json()["id"]
    third = ask(tenant, 300).json()["id"]
    queue = console.get("/console/withdrawals")
    assert queue.status_code == 200 and first in queue.text and third in queue.text
    token = _csrf(queue.text)
    # Nothing ticked, or rejecting without a reason: the form says which field.
    empty = console.post("/console/withdrawals/confirm", data={"csrf_token": token,
                                                                "action": "approve"})  # fmt: skip
    assert empty.status_code == 422 and "ids" in empty.text
    reasonless = console.post("/console/withdrawals/confirm", data={
        "csrf_token": token, "action": "reject", "ids": [third]})  # fmt: skip
    assert reasonless.status_code == 422 and "reason" in reasonless.text
    # Confirmation first: nothing changes until it is confirmed.
    ask_first = console.post("/console/withdrawals/confirm", data={
        "csrf_token": token, "action": "approve", "ids": [first, second]})  # fmt: skip
    assert ask_first.status_code == 200 and first in ask_first.text
    assert tenant.get("/v1/withdrawals?status=requested").json()["withdrawals"][0]["id"] == first
    forged = console.post("/console/withdrawals/decide",
                          data={"action": "approve", "ids": [first, second]})  # fmt: skip
    assert forged.status_code == 403
    console.post("/console/withdrawals/decide", data={
        "csrf_token": token, "action": "approve", "ids": [first, second]})  # fmt: skip
    console.post("/console/withdrawals/decide", data={
        "csrf_token": token, "action": "reject", "ids": [third], "reason": "账户异常"})  # fmt: skip
    states = {w["id"]: w["status"] for w in tenant.get("/v1/withdrawals").json()["withdrawals"]}
    assert states == {first: "approved", second: "approved", third: "rejected"}
    exported = console.get("/console/withdrawals/export.csv?status=approved")
    assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")
    api_export = tenant.get("/v1/withdrawals/export.csv?status=approved")
    assert exported.content == api_export.content
    # Paid from a CSV: checked and shown, then recorded.
    csv = f"withdrawal_id,transfer_ref\n{first},WX-1\n{second},WX-2\n".encode()
    bad = console.post("/console/withdrawals/paid/check", data={"csrf_token": token},
                       files={"references": ("r.csv", b"nope-id,WX\n", "text/csv")})  # fmt: skip
    assert bad.status_code == 422 and "nope-id" in _text(bad)
    checked = console.post("/console/withdrawals/paid/check", data={"csrf_token": token},
                           files={"references": ("r.csv", csv, "text/csv")})  # fmt: skip
    assert checked.status_code == 200 and "WX-2" in checked.text
    assert tenant.get("/v1/withdrawals?status=paid").json()["withdrawals"] == []
    import re

    references_json = re.search(r'name="references_json" value="([^"]+)"', checked.text)
    assert references_json
    raw = references_json.group(1).replace("&#34;", '"').replace("&quot;", '"')
    console.post("/console/withdrawals/paid", data={"csrf_token": token, "references_json": raw})
    paid = tenant.get("/v1/withdrawals?status=paid").json()["withdrawals"]
    assert {(w["id"], w["transfer_ref"]) for w in paid} == {(first, "WX-1"), (second, "WX-2")}
    assert "withdrawals.paid" in console.get("/console/withdrawals?status=paid").text
    verified(tenant)


def test_other_tenants_withdrawals_are_not_ours(
    console: Any, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    setup(other_tenant)
    theirs = ask(other_tenant, 500).json()["id"]
    assert theirs not in console.get("/console/withdrawals").text
    token = _csrf(console.get("/console/withdrawals").text)
    confirm = console.post("/console/withdrawals/confirm", data={
        "csrf_token": token, "action": "approve", "ids": [theirs]})  # fmt: skip
    assert confirm.status_code == 422
    decided = console.post("/console/withdrawals/decide", data={
        "csrf_token": token, "action": "approve", "ids": [theirs]})  # fmt: skip
    assert decided.status_code == 422
    assert other_tenant.get("/v1/withdrawals").json()["withdrawals"][0]["status"] == "requested"
    assert theirs not in console.get("/console/withdrawals/export.csv?status=requested").text


def test_tier_and_withdrawal_pages_have_titles_and_labels(console: Any, tenant: TenantKeys) -> None:
    setup(tenant)
    wid = ask(tenant, 500).json()["id"]
    token = _csrf(console.get("/console/withdrawals").text)
    for lang in ("zh", "en"):
        console.get(f"/console/lang/{lang}")
        for url in ("/console/tiers", "/console/tiers?d=d", "/console/withdrawals",
                    "/console/withdrawals?status=approved"):  # fmt: skip
            response = console.get(url)
            assert response.status_code == 200, url
            _check_accessible(response.text, url)
        confirm = console.post("/console/withdrawals/confirm", data={
            "csrf_token": token, "action": "approve", "ids": [wid]})  # fmt: skip
        _check_accessible(confirm.text, "confirm")
    assert "Withdrawals" in console.get("/console/withdrawals").text
    console.get("/console/lang/zh")
    assert "提现" in console.get("/console/withdrawals").text
