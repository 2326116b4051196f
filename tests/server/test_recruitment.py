"""Recruitment: open / approval / threshold modes x new / applied / approved / rejected / held."""

from __future__ import annotations

import pytest

from server.recruitment.rules import binding_reason, refusal
from tests.conftest import TenantKeys
from tests.server.test_orders import order, refund
from tests.server.test_referrals import arrive, link_of, register
from tests.server.test_webhooks import endpoint

MODES = ("open", "approval", "threshold")
STATES = ("new", "applied", "approved", "rejected", "held")


def program(tenant: TenantKeys, mode: str, **extra) -> dict:
    recruitment = {"mode": mode, **extra}
    if mode == "threshold":
        recruitment.setdefault("threshold_fen", 10_000)
    response = tenant.put("/v1/program", {"recruitment": recruitment})
    assert response.status_code == 200, response.text
    return response.json()


def put_in_state(tenant: TenantKeys, name: str, state: str) -> dict:
    """A user in ``state`` with a link made while they could share (an older link)."""
    program(tenant, "approval")
    assert register(tenant, name)["recruitment"]["state"] == "new"
    program(tenant, "open")  # everyone registered may share: the link is made now
    link = link_of(tenant, name)
    program(tenant, "approval")
    if state in ("applied", "rejected"):
        applied = tenant.post(f"/v1/distributors/{name}/application", {}, scope="sdk")
        assert applied.status_code == 200, applied.text
    if state == "rejected":
        body = {"reason": "not a fit"}
        assert tenant.post(f"/v1/distributors/{name}/reject", body).status_code == 200
    if state in ("approved", "held"):
        assert tenant.post(f"/v1/distributors/{name}/approve").status_code == 200
    if state == "held":
        register(tenant, name, status="held")
    return link


# What each (mode, state) allows: may the user get links and posters; what a binding through
# their older link becomes.
def expected(mode: str, state: str) -> tuple[bool, tuple[str, str | None]]:
    if state == "held":
        return True, ("rejected", "inviter_not_active")
    if state == "approved" or (mode == "open" and state != "rejected"):
        return True, ("bound", None)
    reason = {"applied": "inviter_applied", "rejected": "inviter_rejected"}.get(
        state, "inviter_not_distributor"
    )
    return False, ("rejected", reason)


@pytest.mark.parametrize("mode", MODES)
def test_mode_by_state_table(tenant, mode):
    links = {state: put_in_state(tenant, f"d_{state}", state) for state in STATES}
    program(tenant, mode)
    for state in STATES:
        name = f"d_{state}"
        shares, binding = expected(mode, state)
        response = tenant.post("/v1/links", {"distributor_id": name, "channel": "x"}, scope="sdk")
        poster = tenant.get(f"/v1/posters/{name}", scope="sdk")
        if shares:
            assert response.status_code == 201, (mode, state, response.text)
            assert poster.status_code == 200, (mode, state, poster.text)
        else:
            for refused in (response, poster):
                assert refused.status_code == 409, (mode, state, refused.text)
                error = refused.json()["errors"][0]
                assert error["field"] == "distributor_id"
                named = {"new": "is not a distributor", "applied": "has applied",
                         "rejected": "was rejected"}[state]  # fmt: skip
                assert named in error["message"], error
        result = arrive(tenant, f"user_{state}", links[state])
        assert (result["outcome"], result.get("reason")) == binding, (mode, state, result)
        if binding[0] == "rejected":
            assert result["inviter_id"] is None and result["upline"] == []
        profile = tenant.get(f"/v1/distributors/{name}", scope="sdk").json()
        assert profile["recruitment"]["state"] == ("approved" if state == "held" else state)


def test_rule_functions_agree_with_the_table():
    for mode in MODES:
        for state in ("new", "applied", "approved", "rejected"):
            shares, (outcome, reason) = expected(mode, state)
            assert (refusal(mode, state) is None) == shares
            assert binding_reason(mode, state) == (None if outcome == "bound" else reason)
    assert binding_reason("open", None) == "inviter_not_distributor"


def test_open_mode_is_todays_behaviour(tenant):
    profile = register(tenant, "amy")
    assert profile["recruitment"]["state"] == "approved"
    assert arrive(tenant, "u1", link_of(tenant, "amy"))["outcome"] == "bound"
    response = tenant.post("/v1/distributors/amy/application", {}, scope="sdk")
    assert response.status_code == 409


def test_application_form_and_decisions(tenant):
    fields = [{"name": "phone", "label": "手机号", "required": True}, {"name": "city"}]
    program(tenant, "approval", form_fields=fields)
    register(tenant, "bo")
    apply = "/v1/distributors/bo/application"
    missing = tenant.post(apply, {"form": {"city": "杭州"}}, scope="sdk")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "form.phone"
    unknown = tenant.post(apply, {"form": {"phone": "1", "age": "9"}}, scope="sdk")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "form.age"
    too_long = tenant.post(apply, {"form": {"phone": "1" * 501}}, scope="sdk")
    assert too_long.status_code == 422
    applied = tenant.post(apply, {"form": {"phone": "138", "city": "杭州"}}, scope="sdk").json()
    assert applied["recruitment"]["state"] == "applied"
    assert applied["recruitment"]["form"] == {"phone": "138", "city": "杭州"}
    # Deciding is an operator's: the sdk key gets 403; rejecting needs a reason.
    assert tenant.post("/v1/distributors/bo/approve", scope="sdk").status_code == 403
    no_reason = tenant.post("/v1/distributors/bo/reject", {})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    hook = endpoint(tenant, ["distributor.approved", "distributor.rejected"])
    rejected = tenant.post("/v1/distributors/bo/reject", {"reason": "资料不全"}).json()
    assert rejected["recruitment"] | {"updated_at": None} == {
        "state": "rejected", "reason": "资料不全", "form": {"phone": "138", "city": "杭州"},
        "updated_at": None,
    }  # fmt: skip
    # A rejected user may apply again; then approval.
    assert tenant.post(apply, {"form": {"phone": "139"}}, scope="sdk").status_code == 200
    approved = tenant.post("/v1/distributors/bo/approve").json()
    assert approved["recruitment"]["state"] == "approved"
    assert tenant.post("/v1/distributors/bo/approve").status_code == 200  # twice: no change
    assert tenant.post(apply, {}, scope="sdk").status_code == 409
    assert tenant.post("/v1/distributors/bo/reject", {"reason": "x"}).status_code == 409

    async def events(db, tenant_id):
        rows = await db.fetch(
            "SELECT event_type, payload FROM webhook_outbox WHERE tenant_id = $1 AND"
            " endpoint_id = $2 ORDER BY id",
            tenant_id,
            hook["id"],
        )
        return [r[0] for r in rows]

    assert tenant.call(events, tenant.tenant_id) == ["distributor.rejected", "distributor.approved"]
    assert link_of(tenant, "bo")["code"]


def test_operators_list_the_applicants(tenant):
    program(tenant, "approval")
    for name in ("p1", "p2", "p3"):
        register(tenant, name)
    for name in ("p1", "p3"):
        tenant.post(f"/v1/distributors/{name}/application", {}, scope="sdk")
    queue = tenant.get("/v1/distributors", params={"recruitment": "applied"}).json()
    assert [(d["distributor_id"], d["recruitment"]) for d in queue["distributors"]] == [
        ("p1", "applied"), ("p3", "applied")]  # fmt: skip
    bad = tenant.get("/v1/distributors", params={"recruitment": "maybe"})
    assert bad.status_code in (400, 422)


def test_decisions_are_tenant_scoped(tenant, other_tenant):
    program(tenant, "approval")
    register(tenant, "cy")
    assert other_tenant.post("/v1/distributors/cy/approve").status_code == 404
    assert other_tenant.post("/v1/distributors/cy/application", {}, scope="sdk").status_code == 404


def test_threshold_needs_its_amount(tenant):
    response = tenant.put("/v1/program", {"recruitment": {"mode": "threshold"}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recruitment.threshold_fen"


@pytest.mark.parametrize("keyed", [False, True])
def test_threshold_counts_own_orders_net_of_refunds(tenant, keyed):
    program(tenant, "threshold", threshold_fen=10_000)

    def buy(order_id: str, amount: int) -> None:
        extra = {"headers": {"Idempotency-Key": f"k-{order_id}"}} if keyed else {}
        assert order(tenant, order_id, amount, user="eve", **extra).status_code in (200, 201)

    buy("o1", 6_000)
    assert tenant.get("/v1/distributors/eve", scope="sdk").status_code == 404
    assert refund(tenant, "o1", "r1", 1_000).status_code in (200, 201)
    buy("o2", 4_000)  # 6000 - 1000 + 4000 = 9000: not yet
    assert tenant.get("/v1/distributors/eve", scope="sdk").status_code == 404
    buy("o3", 1_000)  # 10000: a distributor now, in this order's transaction
    profile = tenant.get("/v1/distributors/eve", scope="sdk").json()
    assert profile["recruitment"]["state"] == "approved" and profile["nickname"] == "eve"
    assert link_of(tenant, "eve")["code"]
    # A registered (new) user is promoted the same way; a rejected one is not.
    register(tenant, "fay")
    register(tenant, "gus")
    program(tenant, "approval")
    tenant.post("/v1/distributors/gus/reject", {"reason": "fraud"})
    program(tenant, "threshold", threshold_fen=10_000)
    assert order(tenant, "f1", 10_000, user="fay").status_code == 201
    assert order(tenant, "g1", 10_000, user="gus").status_code == 201
    states = {
        n: tenant.get(f"/v1/distributors/{n}", scope="sdk").json()["recruitment"]["state"]
        for n in ("fay", "gus")
    }
    assert states == {"fay": "approved", "gus": "rejected"}


def outbox_events(tenant: TenantKeys, hook: dict) -> list[tuple[str, dict]]:
    import json

    async def rows(db, tenant_id):
        return await db.fetch(
            "SELECT event_type, payload FROM webhook_outbox WHERE tenant_id = $1 AND"
            " endpoint_id = $2 ORDER BY id", tenant_id, hook["id"])  # fmt: skip

    return [(r[0], json.loads(r[1])["data"]) for r in tenant.call(rows, tenant.tenant_id)]


@pytest.mark.parametrize("keyed", [False, True])
def test_threshold_promotion_sends_distributor_approved_once(tenant, keyed):
    """The order that crosses the threshold writes distributor.approved (via threshold) to the
    outbox in its own transaction; later orders, replays and refunds add nothing."""
    program(tenant, "threshold", threshold_fen=10_000)
    hook = endpoint(tenant, ["distributor.approved"])
    extra = {"headers": {"Idempotency-Key": "k-h2"}} if keyed else {}
    assert order(tenant, "h1", 6_000, user="hal").status_code == 201
    assert outbox_events(tenant, hook) == []
    assert order(tenant, "h2", 4_000, user="hal", **extra).status_code == 201
    assert order(tenant, "h2", 4_000, user="hal", **extra).status_code in (200, 201)  # replay
    assert order(tenant, "h3", 9_000, user="hal").status_code == 201
    assert refund(tenant, "h3", "r1", 9_000).status_code in (200, 201)
    assert order(tenant, "h4", 9_000, user="hal").status_code == 201
    assert outbox_events(tenant, hook) == [
        ("distributor.approved", {"distributor_id": "hal", "state": "approved", "reason": None,
                                  "via": "threshold", "order_id": "h2"}),
    ]  # fmt: skip


def test_other_modes_make_no_distributor_from_orders(tenant):
    for mode in ("open", "approval"):
        program(tenant, mode)
        assert order(tenant, f"o-{mode}", 1_000_000, user=f"buyer-{mode}").status_code == 201
        assert tenant.get(f"/v1/distributors/buyer-{mode}", scope="sdk").status_code == 404
