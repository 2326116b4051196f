"""Webhooks: durable outbox, signed deliveries, retries with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx

from server.webhooks.delivery import MAX_ATTEMPTS, DeliveryPolicy, deliver_due
from tests.server.test_orders import order, refund
from tests.server.test_referrals import arrive, link_of, register

FAR_FUTURE_US = 2**61
HOUR_US = 3_700_000_000  # longer than the longest backoff
PUBLIC_IP = "93.184.216.34"  # data only: MockTransport connects to nothing


async def fake_dns(host: str, port: int) -> list[str]:
    """Tests never ask a real resolver about an outside name."""
    if host.endswith("example.com"):
        return [PUBLIC_IP]
    raise OSError(f"NXDOMAIN {host}")


POLICY = DeliveryPolicy(resolve=fake_dns)


def endpoint(tenant, events):
    response = tenant.post(
        "/v1/webhook-endpoints", {"url": "https://hooks.example.com/liebian", "events": events}
    )
    assert response.status_code == 201, response.text
    return response.json()


def verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    """An httpx transport that fails the first ``failures`` calls, then accepts."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if len(self.calls) <= self.failures:
            return httpx.Response(503)
        return httpx.Response(204)


def deliver(tenant, receiver, at_us: int | None = None, policy: DeliveryPolicy = POLICY) -> int:
    async def run(db):
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
            return await deliver_due(db, http, at_us=at_us, tenant_id=tenant.tenant_id,
                                     policy=policy)  # fmt: skip

    return tenant.call(run)


def pending(tenant) -> list:
    async def rows(db, tenant_id):
        return await db.fetch(
            "SELECT event_type, attempts, delivered_at_us FROM webhook_outbox"
            " WHERE tenant_id = $1 ORDER BY id",
            tenant_id,
        )

    return [tuple(r) for r in tenant.call(rows, tenant.tenant_id)]


def outbox(tenant) -> list[dict]:
    async def rows(db, tenant_id):
        return await db.fetch(
            "SELECT endpoint_id, attempts, next_attempt_at_us, delivered_at_us, last_error"
            " FROM webhook_outbox WHERE tenant_id = $1 ORDER BY id",
            tenant_id,
        )

    keys = ("endpoint_id", "attempts", "next_attempt_at_us", "delivered_at_us", "last_error")
    return [dict(zip(keys, r, strict=True)) for r in tenant.call(rows, tenant.tenant_id)]


def test_secret_is_shown_once(tenant):
    created = endpoint(tenant, ["commission.created"])
    assert created["secret"].startswith("whsec_")
    listed = tenant.get("/v1/webhook-endpoints").json()["endpoints"]
    assert listed[0]["id"] == created["id"] and listed[0]["secret"] is None
    bad = tenant.post(
        "/v1/webhook-endpoints", {"url": "ftp://x.example", "events": ["commission.created"]}
    )
    assert bad.status_code == 422
    assert (
        tenant.post(
            "/v1/webhook-endpoints", {"url": "https://x.example", "events": ["nope"]}
        ).status_code
        == 422
    )


def test_delivery_failing_twice_then_succeeding_is_delivered_once_signed(tenant):
    created = endpoint(tenant, ["commission.created"])
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000)
    order(tenant, "o1", 10000)  # a replay enqueues nothing new
    receiver = Receiver(failures=2)
    assert deliver(tenant, receiver) == 0
    assert deliver(tenant, receiver, FAR_FUTURE_US) == 0  # backoff elapsed: second attempt
    assert deliver(tenant, receiver, FAR_FUTURE_US + HOUR_US) == 1
    assert deliver(tenant, receiver, FAR_FUTURE_US + 9 * HOUR_US) == 0  # nothing left
    assert len(receiver.calls) == 3
    last = receiver.calls[-1]
    assert verify(created["secret"], last.headers["liebian-signature"], last.content)
    event = json.loads(last.content)
    assert event["type"] == "commission.created"
    assert event["data"]["commissions"][0]["distributor_id"] == "near"
    assert [(t, a, d is not None) for t, a, d in pending(tenant)] == [
        ("commission.created", 3, True)
    ]


def test_failed_attempt_waits_for_its_backoff(tenant):
    endpoint(tenant, ["commission.created"])
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000)
    receiver = Receiver(failures=1)
    deliver(tenant, receiver)
    assert deliver(tenant, receiver) == 0  # not yet due
    assert len(receiver.calls) == 1


def test_events_for_refunds_and_settlements(tenant):
    endpoint(tenant, ["refund.reversed", "settlement.approved", "settlement.paid"])
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000)
    refund(tenant, "o1", "r1", 5000)
    settlement = tenant.post("/v1/settlements", {"cutoff": "2026-06-01T00:00:00+00:00"}).json()
    tenant.post(f"/v1/settlements/{settlement['id']}/approve")
    tenant.post(f"/v1/settlements/{settlement['id']}/paid", {"references": {"near": "wx-1"}})
    assert [t for t, _, _ in pending(tenant)] == [
        "refund.reversed",
        "settlement.approved",
        "settlement.paid",
    ]
    receiver = Receiver()
    assert deliver(tenant, receiver) == 3
    events = {json.loads(c.content)["type"]: json.loads(c.content) for c in receiver.calls}
    assert events["refund.reversed"]["data"]["reversals"][0]["amount_fen"] == -500
    assert events["settlement.paid"]["data"]["references"] == {"near": "wx-1"}


def test_campaign_closed_event(tenant):
    endpoint(tenant, ["campaign.closed"])
    body = {"name": "c", "starts_at": "2026-01-01T00:00:00+08:00",
            "ends_at": "2027-01-01T00:00:00+08:00", "metric": "invites",
            "prizes": [{"rank_from": 1, "rank_to": 1, "amount_fen": 500}]}
    campaign = tenant.post("/v1/campaigns", body).json()
    register(tenant, "amy")
    arrive(tenant, "u1", link_of(tenant, "amy", campaign_id=campaign["id"]))
    tenant.post(f"/v1/campaigns/{campaign['id']}/close")
    tenant.post(f"/v1/campaigns/{campaign['id']}/close")  # closing twice: one event
    receiver = Receiver()
    assert deliver(tenant, receiver) == 1
    event = json.loads(receiver.calls[0].content)
    assert event["type"] == "campaign.closed"
    assert event["data"]["awards"] == [
        {"distributor_id": "amy", "rank": 1, "amount_fen": 500, "kind": "prize"}]


def test_endpoints_on_internal_addresses_are_refused(tenant):
    for url in ("http://127.0.0.1:9000/hook", "http://localhost/hook", "http://10.1.2.3/x",
                "http://[::1]/x", "http://169.254.169.254/latest", "http://db.internal/x"):
        response = tenant.post("/v1/webhook-endpoints", {"url": url, "events": ["settlement.paid"]})
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == "url"


def test_delivery_is_pinned_to_a_checked_public_address(tenant):
    created = endpoint(tenant, ["commission.created"])
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000)
    answers = {"hooks.example.com": ["10.0.0.7"]}

    async def resolver(host, port):
        return answers[host]

    async def run(db):
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
            return await deliver_due(db, http, at_us=at, tenant_id=tenant.tenant_id,
                                     policy=DeliveryPolicy(resolve=resolver))

    receiver = Receiver()
    at = None
    assert tenant.call(run) == 0  # DNS says internal: refused, nothing sent
    assert receiver.calls == []
    assert "10.0.0.7" in outbox(tenant)[0]["last_error"]
    answers["hooks.example.com"] = [PUBLIC_IP]
    at = FAR_FUTURE_US
    assert tenant.call(run) == 1
    sent = receiver.calls[0]
    assert sent.url.host == PUBLIC_IP  # connected to the address that was checked
    assert sent.headers["host"] == "hooks.example.com"
    assert sent.extensions.get("sni_hostname") == "hooks.example.com"
    assert verify(created["secret"], sent.headers["liebian-signature"], sent.content)


# --------------------------------------------------------------------------- issue 13: the API


def hook(tenant, url="https://hooks.example.com/liebian", events=("settlement.paid",), **kw):
    return tenant.post("/v1/webhook-endpoints", {"url": url, "events": list(events)}, **kw)


def test_endpoint_urls_are_checked_by_the_shared_guard_and_parser(tenant):
    for url in ("http://[::127.0.0.1]/x", "http://[::ffff:127.0.0.1]/x", "http://fd00::2/x",
                "http://[fd00::2]/x", "http://[64:ff9b::7f00:1]/x", "http://[2002:7f00:1::]/x",
                "http://[2001::1]/x", "http://169.254.169.254/", "http://127.1/",
                "http://2130706433/", "http://0x7f.0.0.1/", "http://0177.0.0.1/",
                "http://①②⑦.0.0.1/", "http://xn--/", "http://printer.local/",
                "http://[ff02::1]/x", "http://0.0.0.0/"):  # fmt: skip
        response = hook(tenant, url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["errors"][0]["field"] == "url"


def test_get_rotate_and_delete_an_endpoint(tenant):
    created = hook(tenant).json()
    path = f"/v1/webhook-endpoints/{created['id']}"
    got = tenant.get(path)
    assert got.status_code == 200
    assert got.json()["secret"] is None and got.json()["url"] == created["url"]
    rotated = tenant.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    assert tenant.get(path).json()["secret"] is None
    deleted = tenant.client.delete(path, headers=tenant.headers())
    assert deleted.status_code == 204
    assert tenant.get(path).status_code == 404
    assert tenant.post(f"{path}/rotate-secret").status_code == 404
    assert tenant.client.delete(path, headers=tenant.headers()).status_code == 404


def test_rotated_secret_signs_the_next_delivery(tenant):
    created = endpoint(tenant, ["commission.created"])
    rotated = tenant.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret")
    new_secret = rotated.json()["secret"]
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000)
    receiver = Receiver()
    assert deliver(tenant, receiver) == 1
    sent = receiver.calls[0]
    assert verify(new_secret, sent.headers["liebian-signature"], sent.content)
    assert not verify(created["secret"], sent.headers["liebian-signature"], sent.content)


def test_deleting_an_endpoint_stops_its_deliveries(tenant):
    created = endpoint(tenant, ["commission.created"])
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, "o1", 10000)
    tenant.client.delete(f"/v1/webhook-endpoints/{created['id']}", headers=tenant.headers())
    receiver = Receiver()
    assert deliver(tenant, receiver, FAR_FUTURE_US) == 0
    assert receiver.calls == []
    assert deliver(tenant, receiver, FAR_FUTURE_US + 99 * HOUR_US) == 0  # never again
    assert receiver.calls == []


def test_another_tenants_endpoint_is_not_found(tenant, other_tenant):
    created = hook(tenant).json()
    path = f"/v1/webhook-endpoints/{created['id']}"
    assert other_tenant.get(path).status_code == 404
    assert other_tenant.post(f"{path}/rotate-secret").status_code == 404
    assert other_tenant.client.delete(path, headers=other_tenant.headers()).status_code == 404
    assert tenant.get(path).status_code == 200  # untouched
    assert other_tenant.get("/v1/webhook-endpoints").json()["endpoints"] == []


def test_endpoints_list_pages_with_a_cursor(tenant):
    ids = [hook(tenant, f"https://hooks.example.com/{n}").json()["id"] for n in range(5)]
    seen, cursor = [], None
    while True:
        page = tenant.get("/v1/webhook-endpoints", params={"limit": 2, **(
            {"cursor": cursor} if cursor else {})}).json()  # fmt: skip
        assert len(page["endpoints"]) <= 2
        assert all(e["secret"] is None for e in page["endpoints"])
        seen += [e["id"] for e in page["endpoints"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert tenant.get("/v1/webhook-endpoints", params={"limit": 0}).status_code in (400, 422)


def test_replayed_creation_does_not_return_the_secret_in_clear(tenant):
    first = hook(tenant, headers={"Idempotency-Key": "create-hook-1"})
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    replay = hook(tenant, headers={"Idempotency-Key": "create-hook-1"})
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["secret"] is None
    assert "rotate-secret" in replay.json()["note"]
    assert len(tenant.get("/v1/webhook-endpoints").json()["endpoints"]) == 1

    async def stored(db, tenant_id):
        return await db.fetch(
            "SELECT response_body FROM idempotency_keys WHERE tenant_id = $1", tenant_id
        )

    bodies = [r[0] for r in tenant.call(stored, tenant.tenant_id)]
    assert bodies and not any(first.json()["secret"] in body for body in bodies)


def test_rotation_replay_does_not_return_the_secret_in_clear(tenant):
    created = hook(tenant).json()
    path = f"/v1/webhook-endpoints/{created['id']}/rotate-secret"
    first = tenant.post(path, headers={"Idempotency-Key": "rotate-1"})
    replay = tenant.post(path, headers={"Idempotency-Key": "rotate-1"})
    assert first.json()["secret"].startswith("whsec_")
    assert replay.json()["secret"] is None and replay.json()["id"] == created["id"]


# --------------------------------------------------------------------------- issue 13: delivery


def insert_endpoint(tenant, url: str, events=("commission.created",)) -> str:
    """An endpoint row as an older version (or a direct write) could have left it: unchecked."""
    import secrets

    endpoint_id = "whe_" + secrets.token_hex(8)

    async def write(db):
        await db.execute(
            "INSERT INTO webhook_endpoints (tenant_id, endpoint_id, url, events, secret,"
            " created_at_us) VALUES ($1, $2, $3, $4, 'whsec_x', 1)",
            tenant.tenant_id, endpoint_id, url, json.dumps(list(events)),
        )  # fmt: skip
        from server.webhooks.outbox import invalidate_endpoints

        invalidate_endpoints(tenant.tenant_id)

    tenant.call(write)
    return endpoint_id


def paid_order(tenant, order_id: str = "o1") -> None:
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    order(tenant, order_id, 10000)


def test_every_failure_is_recorded_and_ends_at_the_give_up_limit(tenant):
    bad = ["http://①②⑦.0.0.1/", "http://0177.0.0.1/", "http://xn--/", "https://gone.example.org/",
           "http://127.0.0.1:9/", "https://reset.example.com/", "https://slow.example.com/"]
    for url in bad:
        insert_endpoint(tenant, url)
    good = endpoint(tenant, ["commission.created"])
    paid_order(tenant)

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "reset.example.com":
            raise httpx.RemoteProtocolError("connection reset by peer", request=request)
        if request.headers["host"] == "slow.example.com":
            await asyncio.sleep(5)
        return httpx.Response(204)

    policy = DeliveryPolicy(resolve=fake_dns, deadline=0.2, per_tenant=len(bad) + 1)
    assert deliver(tenant, handler, policy=policy) == 1  # the good one, despite the others
    rows = {r["endpoint_id"]: r for r in outbox(tenant)}
    assert rows.pop(good["id"])["delivered_at_us"] is not None
    assert len(rows) == len(bad)
    errors = sorted(r["last_error"] for r in rows.values())
    assert all(r["attempts"] == 1 and r["delivered_at_us"] is None for r in rows.values())
    assert all(errors), errors
    joined = "\n".join(errors)
    for expected in ("bad-url", "NXDOMAIN gone.example.org", "127.0.0.1", "reset by peer",
                     "timeout"):  # fmt: skip
        assert expected in joined, (expected, joined)
    at = FAR_FUTURE_US
    for _ in range(MAX_ATTEMPTS + 3):
        deliver(tenant, handler, at, policy)
        at += 99 * HOUR_US
    rows = [r for r in outbox(tenant) if r["endpoint_id"] != good["id"]]
    assert all(r["attempts"] == MAX_ATTEMPTS for r in rows), rows
    assert all(r["next_attempt_at_us"] >= 2**62 and r["last_error"] for r in rows)


def test_a_delivery_reads_a_bounded_part_of_the_answer(tenant):
    endpoint(tenant, ["commission.created"])
    paid_order(tenant)
    pulled = [0]

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self):
            while True:
                pulled[0] += 1024
                yield b"x" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, stream=Endless())

    deliver(tenant, handler)
    assert pulled[0] <= POLICY.max_response_bytes + 1024
    assert outbox(tenant)[0]["last_error"].startswith("HTTP 500: xxx")


def test_one_deadline_covers_the_whole_attempt(tenant):
    """A trickling answer (each byte quick, the whole slow) ends at the deadline; a 2xx
    status alone is a delivery, whatever follows it."""
    endpoint(tenant, ["commission.created"])
    paid_order(tenant)

    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self):
            for _ in range(100):
                await asyncio.sleep(0.05)
                yield b"x"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, stream=Trickle())  # an error answer's body is read (4 KB)

    deliver(tenant, handler, policy=DeliveryPolicy(resolve=fake_dns, deadline=0.3,
                                                   max_response_bytes=10_000))  # fmt: skip
    assert outbox(tenant)[0]["last_error"].startswith("timeout")


def test_a_2xx_status_is_a_delivery_whatever_its_body_does(tenant):
    endpoint(tenant, ["commission.created"])
    paid_order(tenant)

    class Never(httpx.AsyncByteStream):
        async def __aiter__(self):
            await asyncio.sleep(60)
            yield b""

    assert deliver(tenant, lambda r: httpx.Response(200, stream=Never()),
                   policy=DeliveryPolicy(resolve=fake_dns, deadline=0.5)) == 1  # fmt: skip


def test_tenants_take_turns_and_each_has_at_most_k_in_flight():
    from collections import Counter

    from server.webhooks.delivery import pick_fairly

    due = [(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "c"), (6, "a")]  # round-robin order
    assert pick_fairly(due, 4, Counter(), 2) == [1, 2, 3, 4]
    assert pick_fairly(due, 4, Counter({"a": 1}), 2) == [1, 2, 3, 5]
    assert pick_fairly(due, 9, Counter({"a": 2}), 2) == [2, 3, 5]
    assert pick_fairly(due, 0, Counter(), 2) == []


def test_claiming_ranks_rows_within_their_tenant(tenant, other_tenant):
    from collections import Counter

    from server.webhooks.delivery import claim

    for t in (tenant, other_tenant):
        endpoint(t, ["commission.created"])
        register(t, "near")
        arrive(t, "buyer", link_of(t, "near"))
    for n in range(6):
        order(tenant, f"a{n}", 10000)  # older rows: a plain "oldest first" would take only these
    order(other_tenant, "b0", 10000)
    policy = DeliveryPolicy(resolve=fake_dns, per_tenant=2, concurrency=3)

    async def run(db):
        return await claim(db, FAR_FUTURE_US, policy, 3, Counter(),
                           (tenant.tenant_id, other_tenant.tenant_id))  # fmt: skip

    claimed = tenant.call(run)
    assert Counter(row.tenant_id for row in claimed) == {tenant.tenant_id: 2,
                                                         other_tenant.tenant_id: 1}  # fmt: skip
    assert all(row.attempts == 1 and row.url for row in claimed)


def test_allow_private_accepts_loopback_but_the_parser_still_decides():
    import pytest

    from server.errors import InvalidInput
    from server.webhooks.service import check_endpoint_url

    check_endpoint_url("http://127.0.0.1:9000/hook", allow_private=True)
    check_endpoint_url("http://[::1]:9000/hook", allow_private=True)
    check_endpoint_url("http://receiver.internal:9000/hook", allow_private=True)
    for url in ("http://①②⑦.0.0.1/", "http://0177.0.0.1/", "gopher://127.0.0.1/",
                "http://127.1/", "http://exa mple.com/"):  # fmt: skip
        with pytest.raises(InvalidInput) as caught:
            check_endpoint_url(url, allow_private=True)
        assert caught.value.errors[0].field == "url"
    with pytest.raises(InvalidInput):
        check_endpoint_url("http://127.0.0.1:9000/hook", allow_private=False)


def test_concurrent_claims_never_take_the_same_row(tenant):
    """Two workers claiming at once (the conditional UPDATE re-checks each row)."""
    from collections import Counter

    from server.webhooks.delivery import claim

    endpoint(tenant, ["commission.created"])
    register(tenant, "near")
    arrive(tenant, "buyer", link_of(tenant, "near"))
    for n in range(6):
        order(tenant, f"c{n}", 10000)
    policy = DeliveryPolicy(resolve=fake_dns, per_tenant=6, concurrency=6)

    async def run(db):
        first, second = await asyncio.gather(
            *(claim(db, FAR_FUTURE_US, policy, 6, Counter(), (tenant.tenant_id,)) for _ in "ab")
        )
        return [row.id for row in first], [row.id for row in second]

    first, second = tenant.call(run)
    assert not set(first) & set(second)
    assert len(first) + len(second) == 6
