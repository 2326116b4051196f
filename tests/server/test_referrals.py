"""Referral graph: distributors, links, scenes, bind modes, cycles, attribution history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantKeys, make_tenant

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def register(tenant: TenantKeys, distributor_id: str, **extra) -> dict:
    scope = "admin" if "status" in extra else "sdk"  # holds are an operator's decision
    body = {"nickname": distributor_id, **extra}
    response = tenant.put(f"/v1/distributors/{distributor_id}", body, scope=scope)
    assert response.status_code == 200, response.text
    return response.json()


def link_of(tenant: TenantKeys, distributor_id: str, **extra) -> dict:
    response = tenant.post("/v1/links", {"distributor_id": distributor_id, **extra}, scope="sdk")
    assert response.status_code in (200, 201), response.text
    return response.json()


def arrive(tenant: TenantKeys, user_id: str, link: dict, at: datetime | None = None) -> dict:
    body = {"user_id": user_id, "scene": link["scene"]}
    if at is not None:
        body["occurred_at"] = iso(at)
    response = tenant.post("/v1/referrals", body, scope="sdk")
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------- links and scenes


def test_link_is_stable_and_scene_fits_wechat(tenant):
    register(tenant, "alice")
    body = {"distributor_id": "alice", "channel": "moments"}
    assert tenant.post("/v1/links", body, scope="sdk").status_code == 201
    assert tenant.post("/v1/links", body, scope="sdk").status_code == 200
    first = link_of(tenant, "alice", channel="moments")
    again = link_of(tenant, "alice", channel="moments")
    other = link_of(tenant, "alice", channel="group")
    assert first == again
    assert first["code"] != other["code"]
    allowed = set(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$&'()*+,/:;=?@-._~"
    )
    assert len(first["scene"]) <= 32 and set(first["scene"]) <= allowed
    assert first["url"].endswith("/s/" + first["code"])


def test_codes_are_not_sequential(tenant):
    codes = []
    for n in range(5):
        register(tenant, f"d{n}")
        codes.append(link_of(tenant, f"d{n}")["code"])
    assert len(set(codes)) == 5
    assert codes != sorted(codes) or len({c[:4] for c in codes}) > 1


def test_link_for_unknown_distributor_is_404(tenant):
    response = tenant.post("/v1/links", {"distributor_id": "ghost"}, scope="sdk")
    assert response.status_code == 404


def test_redirect_counts_a_click_once_per_client_address_per_minute(tenant, client):
    register(tenant, "alice")
    tenant.put("/v1/program", {"landing_url": "https://shop.example.com/p?x=1"})
    link = link_of(tenant, "alice")
    response = client.get(f"/s/{link['code']}", follow_redirects=False)
    assert response.status_code == 302
    assert (
        response.headers["location"] == f"https://shop.example.com/p?x=1&scene=lb%3D{link['code']}"
    )
    client.get(f"/s/{link['code']}", follow_redirects=False)
    # Another User-Agent from the same address is the same client (per address and link).
    client.get(f"/s/{link['code']}", follow_redirects=False, headers={"User-Agent": "other-phone"})
    assert tenant.get(f"/v1/links/{link['code']}", scope="sdk").json()["clicks"] == 1


def test_unknown_code_redirect_is_404_problem(client):
    response = client.get("/s/NoSuchCode", follow_redirects=False)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"user_id": "u", "scene": "nothing here!"}, 422, "scene"),
        ({"user_id": "u", "code": "bad code"}, 422, "code"),
        ({"user_id": "u"}, 422, "scene"),
        ({"user_id": "", "code": "abcdefgh"}, 422, "user_id"),
        ({"user_id": "u", "code": "abcdefgh"}, 404, None),
    ],
)
def test_bad_scene_or_code(tenant, body, status, field):
    response = tenant.post("/v1/referrals", body, scope="sdk")
    assert response.status_code == status, response.text
    if field:
        assert response.json()["errors"][0]["field"] == field


def test_scene_forms_are_accepted(tenant):
    register(tenant, "alice")
    link = link_of(tenant, "alice")
    for n, scene in enumerate(
        [link["scene"], "lb%3D" + link["code"], "p=9&lb=" + link["code"], link["code"]]
    ):
        body = {"user_id": f"user{n}", "scene": scene}
        assert tenant.post("/v1/referrals", body, scope="sdk").json()["inviter_id"] == "alice"


def test_other_tenants_link_is_404(tenant, other_tenant):
    register(tenant, "alice")
    link = link_of(tenant, "alice")
    response = other_tenant.post(
        "/v1/referrals", {"user_id": "u", "code": link["code"]}, scope="sdk"
    )
    assert response.status_code == 404
    assert other_tenant.get("/v1/distributors/alice", scope="sdk").status_code == 404


# ---------------------------------------------------------------- bind modes


EXPECTED = {
    # mode: {(state, target): (outcome, reason)}
    "first": {
        ("unbound", "self"): ("rejected", "self_referral"),
        ("unbound", "cycle"): ("rejected", "cycle"),
        ("unbound", "fresh"): ("bound", None),
        ("bound", "self"): ("rejected", "self_referral"),
        ("bound", "cycle"): ("kept", "already_bound"),
        ("bound", "fresh"): ("kept", "already_bound"),
        ("lapsed", "self"): ("rejected", "self_referral"),
        ("lapsed", "cycle"): ("rejected", "cycle"),
        ("lapsed", "fresh"): ("bound", None),
    },
    "new_user_only": {
        ("unbound", "self"): ("rejected", "self_referral"),
        ("unbound", "cycle"): ("rejected", "not_new_user"),
        ("unbound", "fresh"): ("bound", None),
        ("bound", "self"): ("rejected", "self_referral"),
        ("bound", "cycle"): ("kept", "already_bound"),
        ("bound", "fresh"): ("kept", "already_bound"),
        ("lapsed", "self"): ("rejected", "self_referral"),
        ("lapsed", "cycle"): ("rejected", "not_new_user"),
        ("lapsed", "fresh"): ("rejected", "not_new_user"),
    },
    "last": {
        ("unbound", "self"): ("rejected", "self_referral"),
        ("unbound", "cycle"): ("rejected", "cycle"),
        ("unbound", "fresh"): ("bound", None),
        ("bound", "self"): ("rejected", "self_referral"),
        ("bound", "cycle"): ("rejected", "cycle"),
        ("bound", "fresh"): ("bound", "rebound"),
        ("lapsed", "self"): ("rejected", "self_referral"),
        ("lapsed", "cycle"): ("rejected", "cycle"),
        ("lapsed", "fresh"): ("bound", None),
    },
}
CASES = [(mode, state, target) for mode, table in EXPECTED.items() for (state, target) in table]


@pytest.mark.parametrize(("mode", "state", "target"), CASES)
def test_bind_mode_table(client, mode, state, target):
    tenant = make_tenant(client, f"modes-{mode}")
    tenant.put("/v1/program", {"bind_mode": mode, "bind_validity_days": 1})
    register(tenant, "old_inviter")
    register(tenant, "fresh_inviter")
    user = "U"
    if state in ("bound", "lapsed"):
        assert arrive(tenant, user, link_of(tenant, "old_inviter"), T0)["outcome"] == "bound"
    if target in ("self", "cycle"):
        register(tenant, user)  # the user is a distributor too
    at = T0 + (timedelta(days=2) if state == "lapsed" else timedelta(hours=1))
    if target == "self":
        candidate = user
    elif target == "cycle":
        assert (
            arrive(tenant, "X", link_of(tenant, user), at - timedelta(minutes=1))["outcome"]
            == "bound"
        )
        register(tenant, "X")  # X, under U, becomes a distributor: binding U under X is a cycle
        candidate = "X"
    else:
        candidate = "fresh_inviter"
    result = arrive(tenant, user, link_of(tenant, candidate), at)
    assert (result["outcome"], result["reason"]) == EXPECTED[mode][(state, target)]
    if result["outcome"] == "bound":
        assert result["inviter_id"] == candidate
        assert result["upline"][0] == candidate
    elif state == "bound":
        assert result["inviter_id"] == "old_inviter"
    else:
        assert result["inviter_id"] is None and result["upline"] == []


def test_upline_is_nearest_first_and_capped_at_program_depth(tenant):
    tenant.put("/v1/program", {"commission_bps": [1000, 500, 100]})
    chain = ["d1", "d2", "d3", "d4", "d5"]
    for d in chain:
        register(tenant, d)
    for child, parent in zip(chain[1:], chain, strict=False):
        arrive(tenant, child, link_of(tenant, parent))
    result = arrive(tenant, "buyer", link_of(tenant, "d5"))
    assert result["upline"] == ["d5", "d4", "d3"]
    tenant.put("/v1/program", {"commission_bps": [1000]})
    assert arrive(tenant, "buyer", link_of(tenant, "d1"))["upline"] == ["d5"]


def test_a_distributor_keeps_their_own_inviter(tenant):
    register(tenant, "alice")
    arrive(tenant, "bob", link_of(tenant, "alice"))
    assert register(tenant, "bob")["inviter_id"] == "alice"


def test_rebinding_moves_the_subtree_with_it(tenant):
    tenant.put("/v1/program", {"bind_mode": "last", "commission_bps": [1000, 500, 100]})
    for d in ("a", "b", "m"):
        register(tenant, d)
    arrive(tenant, "m", link_of(tenant, "a"))
    arrive(tenant, "buyer", link_of(tenant, "m"))
    assert arrive(tenant, "m", link_of(tenant, "b"))["outcome"] == "bound"
    # buyer's level-2 follows m's new inviter: the upline is always current.
    assert arrive(tenant, "buyer", link_of(tenant, "m"))["upline"] == ["m", "b"]


def test_held_inviter_cannot_bind(tenant):
    register(tenant, "alice", status="held")
    result = arrive(tenant, "u", link_of(tenant, "alice"))
    assert (result["outcome"], result["reason"]) == ("rejected", "inviter_not_active")


def test_team_pages_and_counts(tenant):
    register(tenant, "root")
    register(tenant, "mid")
    arrive(tenant, "mid", link_of(tenant, "root"))
    for n in range(5):
        arrive(tenant, f"leaf{n}", link_of(tenant, "mid"))
    profile = tenant.get("/v1/distributors/root", scope="sdk").json()
    assert profile["counts"]["direct_invitees"] == 1
    assert profile["counts"]["indirect_invitees"] == 5
    seen, cursor = [], None
    while True:
        params = {"level": 2, "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = tenant.get("/v1/distributors/root/team", scope="sdk", params=params).json()
        seen += [m["user_id"] for m in page["members"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"leaf{n}" for n in range(5)]
    assert len(set(seen)) == 5
    bad = tenant.get("/v1/distributors/root/team", scope="sdk", params={"level": 4})
    assert bad.status_code in (400, 422)


def test_every_arrival_is_an_attribution_event(tenant):
    register(tenant, "a")
    register(tenant, "b")
    arrive(tenant, "u", link_of(tenant, "a"))
    arrive(tenant, "u", link_of(tenant, "b", channel="poster"))

    async def events(db, tenant_id):
        return await db.fetch(
            "SELECT candidate_inviter_id, previous_inviter_id, outcome, reason, channel"
            " FROM attribution_events WHERE tenant_id = $1 AND user_id = 'u' ORDER BY id",
            tenant_id,
        )

    rows = [tuple(r) for r in tenant.call(events, tenant.tenant_id)]
    assert rows == [("a", None, "bound", None, None), ("b", "a", "kept", "already_bound", "poster")]


# ---------------------------------------------------------------- property


def _assert_acyclic_and_shallow(tenant: TenantKeys, depth: int) -> None:
    async def edges(db, tenant_id):
        return await db.fetch(
            "SELECT user_id, inviter_id FROM user_bindings WHERE tenant_id = $1"
            " AND inviter_id IS NOT NULL",
            tenant_id,
        )

    parent = {r["user_id"]: r["inviter_id"] for r in tenant.call(edges, tenant.tenant_id)}
    for start in parent:
        seen, node = {start}, parent.get(start)
        while node is not None:
            assert node not in seen, f"cycle through {node}"
            seen.add(node)
            node = parent.get(node)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mode=st.sampled_from(["first", "last", "new_user_only"]),
    depth=st.integers(1, 3),
    steps=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=25),
)
def test_random_bindings_never_make_a_cycle(client, mode, depth, steps):
    tenant = make_tenant(client, "prop")
    tenant.put("/v1/program", {"bind_mode": mode, "commission_bps": [100] * depth})
    names = [f"p{n}" for n in range(6)]
    for name in names:
        register(tenant, name)
    links = {name: link_of(tenant, name) for name in names}
    for user, inviter in steps:
        result = arrive(tenant, names[user], links[names[inviter]])
        assert len(result["upline"]) <= depth
        assert names[user] not in result["upline"]
    _assert_acyclic_and_shallow(tenant, depth)


def test_holds_are_admin_only_and_listed(tenant):
    register(tenant, "amy")
    register(tenant, "bob")
    body = {"nickname": "bob", "status": "held"}
    assert tenant.put("/v1/distributors/bob", body, scope="sdk").status_code == 403
    assert tenant.put("/v1/distributors/bob", body).status_code == 200
    held = tenant.get("/v1/distributors", params={"status": "held"}).json()
    assert [d["distributor_id"] for d in held["distributors"]] == ["bob"]
    everyone = tenant.get("/v1/distributors", params={"limit": 1}).json()
    assert [d["distributor_id"] for d in everyone["distributors"]] == ["amy"]
    rest = tenant.get(
        "/v1/distributors", params={"limit": 1, "cursor": everyone["next_cursor"]}
    ).json()
    assert [d["distributor_id"] for d in rest["distributors"]] == ["bob"]


def test_found_links_are_kept_up_to_the_bound_per_tenant(tenant, other_tenant, monkeypatch):
    """Links never change once created, so ``resolve_code`` keeps found ones (LINK_CACHE_SIZE,
    least recently used dropped); a code is kept per tenant and a miss is never kept."""
    from server.errors import NotFound
    from server.referrals import service

    monkeypatch.setattr(service, "LINK_CACHE_SIZE", 2)
    monkeypatch.setattr(service, "_links", type(service._links)())
    for d in ("k1", "k2", "k3"):
        register(tenant, d)
    codes = [link_of(tenant, d)["code"] for d in ("k1", "k2", "k3")]

    async def resolve(db, tenant_id, code):
        try:
            return (await service.resolve_code(db, tenant_id, code))["distributor_id"]
        except NotFound:
            return None

    assert [tenant.call(resolve, tenant.tenant_id, c) for c in codes] == ["k1", "k2", "k3"]
    assert list(service._links) == [(tenant.tenant_id, c) for c in codes[1:]]  # k1 dropped
    assert tenant.call(resolve, other_tenant.tenant_id, codes[2]) is None  # scoped by tenant
    assert tenant.call(resolve, tenant.tenant_id, "NOSUCHCODE") is None
    assert len(service._links) == 2
    assert tenant.call(resolve, tenant.tenant_id, codes[0]) == "k1"  # fetched again
    assert arrive(tenant, "buyer", link_of(tenant, "k1"))["inviter_id"] == "k1"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rates=st.lists(st.integers(0, 3333), min_size=1, max_size=3),
    amount=st.integers(1, 10**9),
    above=st.integers(0, 3),
    validity=st.none() | st.integers(1, 30),
    lapsed=st.booleans(),
)
def test_fast_and_full_binding_paths_agree(client, rates, amount, above, validity, lapsed):
    """A first-seen user is bound by the fast path (one statement on PostgreSQL, one short
    transaction on SQLite: server.referrals.fast); an Idempotency-Key forces the full path
    (server.referrals.service.bind_referral). Both must give the same decision, upline and
    team counts, and the order the new user then pays must credit exactly
    rewards.split_commission over that upline (the Python form of the rule)."""
    from unittest import mock

    from rewards.commission import split_commission
    from server.referrals import binding

    taken: list[bool] = []
    fast_path = binding.bind_new_user

    async def spy(*args, **kwargs):
        result = await fast_path(*args, **kwargs)
        taken.append(result is not None)
        return result

    lapses = lapsed and validity is not None
    results = []
    for key in (None, "force-full-path"):
        tenant = make_tenant(client, "bind-paths")
        program = {"commission_bps": rates, "bind_validity_days": validity}
        assert tenant.put("/v1/program", program).status_code == 200
        names = [f"d{n}" for n in range(above + 1)]  # d0 at the top, the inviter last
        for name in names:
            register(tenant, name)
        # Someone else's binding first: on PostgreSQL the fast path needs the tenant's team
        # tree row, which the first binding of a tenant writes (taking the full path).
        register(tenant, "other")
        arrive(tenant, "visitor", link_of(tenant, "other"))
        # the inviter's own chain: bound long enough ago to have lapsed (if ``lapses``)
        at = T0 - timedelta(days=(validity or 0) + 1) if lapses else T0
        for child, parent in zip(names[1:], names, strict=False):
            arrive(tenant, child, link_of(tenant, parent), at=at)
        headers = {"Idempotency-Key": key} if key else {}
        body = {
            "user_id": "newcomer",
            "scene": link_of(tenant, names[-1])["scene"],
            "occurred_at": iso(T0 + timedelta(hours=1)),
        }
        taken.clear()
        with mock.patch.object(binding, "bind_new_user", spy):
            bound = tenant.post("/v1/referrals", body, scope="sdk", headers=headers)
        assert bound.status_code == 200, bound.text
        assert taken == ([True] if key is None else [])  # the path under test was taken
        out = bound.json()
        expected = ([names[-1]] if lapses else names[::-1])[: len(rates)]
        assert (out["outcome"], out["reason"], out["upline"]) == ("bound", None, expected)
        counts = [tenant.get(f"/v1/distributors/{d}", scope="sdk").json()["counts"] for d in names]
        paid = {
            "order_id": "o1",
            "user_id": "newcomer",
            "amount_fen": amount,
            "paid_at": iso(T0 + timedelta(hours=2)),
        }
        order = tenant.post("/v1/orders", paid, scope="sdk")
        assert order.status_code == 201, order.text
        credited = [(c["distributor_id"], c["amount_fen"]) for c in order.json()["commissions"]]
        rule = split_commission(amount, rates[: len(expected)])
        assert credited == [(d, a) for d, a in zip(expected, rule, strict=True) if a > 0]
        results.append((out["upline"], out["inviter_id"], counts, credited))
    assert results[0] == results[1]
