"""Every SDK method sends the request docs/api.md describes and decodes its answer, both clients.

The replies here are canned bodies of the documented shapes (with a field a newer server might
add): they check the SDK's requests and decoding, never a business rule. What the app answers is
tested against the app itself (test_sdk_flow and the other `target` tests; test_sdk_real_app
checks that every method is among them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import liebian_sdk as sdk
import pytest
from sdk_testing import API_KEY, Recorder, Run

CST = timezone(timedelta(hours=8))
BALANCE = {"pending_fen": 1990, "available_fen": 500, "settled_fen": 0, "paid_fen": 100}
DISTRIBUTOR = {
    "distributor_id": "openid-alice",
    "nickname": "爱丽丝",
    "avatar_url": None,
    "tier": "koc",
    "inviter_id": "openid-zed",
    "counts": {"direct_invitees": 3, "indirect_invitees": 5, "level2_invitees": 5},
    "balance": BALANCE,
    "created_at": "2024-11-11T10:00:00+08:00",
    "a_field_from_a_newer_server": {"ignored": True},
}
LINK = {"code": "Ab3", "scene": "c=Ab3", "url": "https://liebian.test/s/Ab3"}
REFERRAL = {"outcome": "bound", "inviter_id": "openid-alice", "upline": ["openid-alice", "z"]}
COMMISSION = {"distributor_id": "openid-alice", "level": 1, "amount_fen": 1990, "status": "pending"}
PROGRAM = {"bind_mode": "first", "bind_validity_days": None, "commission_bps": [1000, 500]}
CAMPAIGN = {
    "id": "cmp_7",
    "name": "双十一",
    "starts_at": "2024-11-01T00:00:00+08:00",
    "ends_at": "2024-11-12T00:00:00+08:00",
    "metric": "invites",
    "prizes": [{"rank_from": 1, "rank_to": 1, "amount_fen": 88800}],
    "red_packet": {"mode": "fixed_per_invite", "budget_fen": 10000, "min_fen": 100},
}
ENTRY = {"rank": 1, "distributor_id": "openid-alice", "nickname": "爱丽丝", "score": 12}
LINE = {
    "distributor_id": "openid-alice",
    "commission_fen": 1990,
    "red_packet_fen": 100,
    "prize_fen": 0,
    "reversal_fen": -500,
    "net_fen": 1590,
}
SETTLEMENT = {"id": "st_1", "status": "draft", "lines": [LINE], "total_fen": 1590}
PNG = b"\x89PNG\r\n\x1a\nfake"


@dataclass
class Case:
    """One method call and the request and result it must give."""

    name: str
    invoke: Callable[[Any], Any]
    method: str
    path: str
    reply: Any
    check: Callable[[Any], bool]
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    raw_body: tuple[str, bytes] | None = None  # (content type, bytes) of a non-JSON body


CASES = [
    Case(
        "distributors.upsert",
        lambda c: c.distributors.upsert(
            "openid-alice", nickname="爱丽丝", avatar_url="https://img.test/a.png", tier="koc"
        ),
        "PUT",
        "/v1/distributors/openid-alice",
        DISTRIBUTOR,
        lambda r: isinstance(r, sdk.Distributor) and r.balance.pending_fen == 1990,
        body={"nickname": "爱丽丝", "avatar_url": "https://img.test/a.png", "tier": "koc"},
    ),
    Case(
        "distributors.upsert minimal",
        lambda c: c.distributors.upsert("openid-alice", "A"),
        "PUT",
        "/v1/distributors/openid-alice",
        DISTRIBUTOR,
        lambda r: r.inviter_id == "openid-zed",
        body={"nickname": "A"},
    ),
    Case(
        "distributors.get quotes the id",
        lambda c: c.distributors.get("o/x y"),
        "GET",
        "/v1/distributors/o%2Fx%20y",
        DISTRIBUTOR,
        lambda r: (
            r.created_at == datetime(2024, 11, 11, 10, tzinfo=CST) and r.counts.direct_invitees == 3
        ),
    ),
    Case(
        "distributors.ledger",
        lambda c: c.distributors.ledger("openid-alice"),
        "GET",
        "/v1/distributors/openid-alice/ledger",
        {
            "entries": [{"kind": "commission", "status": "pending", "amount_fen": 1990}],
            "next_cursor": "n2",
        },
        lambda r: isinstance(r, sdk.LedgerPage) and r.entries[0].amount_fen == 1990,
    ),
    Case(
        "distributors.ledger paged",
        lambda c: c.distributors.ledger("openid-alice", limit=100, cursor="n2"),
        "GET",
        "/v1/distributors/openid-alice/ledger",
        {"entries": [], "next_cursor": None},
        lambda r: r.entries == [] and r.next_cursor is None,
        query={"limit": "100", "cursor": "n2"},
    ),
    Case(
        "distributors.team",
        lambda c: c.distributors.team("openid-alice"),
        "GET",
        "/v1/distributors/openid-alice/team",
        {"members": [{"user_id": "openid-bob", "level": 1, "is_distributor": True}]},
        lambda r: isinstance(r, sdk.TeamPage) and r.members[0].is_distributor,
        query={"level": "1"},
    ),
    Case(
        "distributors.team level 2",
        lambda c: c.distributors.team("openid-alice", level=2, limit=10, cursor="x"),
        "GET",
        "/v1/distributors/openid-alice/team",
        {"members": []},
        lambda r: r.members == [],
        query={"level": "2", "limit": "10", "cursor": "x"},
    ),
    Case(
        "distributors.apply",
        lambda c: c.distributors.apply("openid-alice", {"phone": "138"}),
        "POST",
        "/v1/distributors/openid-alice/application",
        DISTRIBUTOR | {"recruitment": {"state": "applied", "form": {"phone": "138"}}},
        lambda r: isinstance(r.recruitment, sdk.Recruitment) and r.recruitment.state == "applied",
        body={"form": {"phone": "138"}},
    ),
    Case(
        "distributors.approve",
        lambda c: c.distributors.approve("openid-alice"),
        "POST",
        "/v1/distributors/openid-alice/approve",
        DISTRIBUTOR | {"recruitment": {"state": "approved"}},
        lambda r: r.recruitment is not None and r.recruitment.state == "approved",
    ),
    Case(
        "distributors.reject",
        lambda c: c.distributors.reject("openid-alice", "资料不全"),
        "POST",
        "/v1/distributors/openid-alice/reject",
        DISTRIBUTOR | {"recruitment": {"state": "rejected", "reason": "资料不全"}},
        lambda r: r.recruitment is not None and r.recruitment.reason == "资料不全",
        body={"reason": "资料不全"},
    ),
    Case(
        "distributors.withdraw",
        lambda c: c.distributors.withdraw("openid-alice", 1200),
        "POST",
        "/v1/distributors/openid-alice/withdrawals",
        {"id": "wd_1", "distributor_id": "openid-alice", "amount_fen": 1200, "fee_fen": 12,
         "net_fen": 1188, "status": "requested"},  # fmt: skip
        lambda r: isinstance(r, sdk.Withdrawal) and r.net_fen == 1188,
        body={"amount_fen": 1200},
    ),
    Case(
        "distributors.withdrawals",
        lambda c: c.distributors.withdrawals("openid-alice", limit=10),
        "GET",
        "/v1/distributors/openid-alice/withdrawals",
        {"withdrawals": []},
        lambda r: isinstance(r, sdk.WithdrawalPage) and r.withdrawals == [],
        query={"limit": "10"},
    ),
    Case(
        "links.create",
        lambda c: c.links.create("openid-alice"),
        "POST",
        "/v1/links",
        LINK,
        lambda r: isinstance(r, sdk.Link) and (r.code, r.scene) == ("Ab3", "c=Ab3"),
        body={"distributor_id": "openid-alice"},
    ),
    Case(
        "links.create with campaign and channel",
        lambda c: c.links.create("openid-alice", "cmp_7", "moments"),
        "POST",
        "/v1/links",
        LINK,
        lambda r: r.url.endswith("/s/Ab3"),
        body={"distributor_id": "openid-alice", "campaign_id": "cmp_7", "channel": "moments"},
    ),
    Case(
        "referrals.bind by scene",
        lambda c: c.referrals.bind("openid-bob", scene="c=Ab3"),
        "POST",
        "/v1/referrals",
        REFERRAL,
        lambda r: isinstance(r, sdk.Referral) and r.upline == ["openid-alice", "z"],
        body={"user_id": "openid-bob", "scene": "c=Ab3"},
    ),
    Case(
        "referrals.bind by code at a time",
        lambda c: c.referrals.bind(
            "openid-bob", code="Ab3", occurred_at=datetime(2024, 11, 11, 9, 30, tzinfo=CST)
        ),
        "POST",
        "/v1/referrals",
        {"outcome": "rejected", "reason": "cycle", "upline": []},
        lambda r: (r.outcome, r.reason, r.inviter_id) == ("rejected", "cycle", None),
        body={"user_id": "openid-bob", "code": "Ab3", "occurred_at": "2024-11-11T09:30:00+08:00"},
    ),
    Case(
        "orders.paid",
        lambda c: c.orders.paid("wx-1", "openid-bob", 19900, "2024-11-11T10:00:00Z", "cmp_7"),
        "POST",
        "/v1/orders",
        {"order_id": "wx-1", "commissions": [COMMISSION]},
        lambda r: isinstance(r, sdk.Order) and r.commissions[0].amount_fen == 1990,
        body={
            "order_id": "wx-1",
            "user_id": "openid-bob",
            "amount_fen": 19900,
            "paid_at": "2024-11-11T10:00:00+00:00",
            "campaign_id": "cmp_7",
        },
    ),
    Case(
        "orders.refund",
        lambda c: c.orders.refund("wx-1", "rf-1", 5000),
        "POST",
        "/v1/orders/wx-1/refunds",
        {"reversals": [{"distributor_id": "openid-alice", "level": 1, "amount_fen": -500}]},
        lambda r: isinstance(r, sdk.Refund) and r.reversals[0].amount_fen == -500,
        body={"refund_id": "rf-1", "amount_fen": 5000},
    ),
    Case(
        "orders.explain",
        lambda c: c.orders.explain("wx-1"),
        "GET",
        "/v1/orders/wx-1/explain",
        {
            "order_id": "wx-1",
            "upline": ["openid-alice"],
            "rates_bps": [1000],
            "binding_events": [{"event_id": 3, "outcome": "bound", "credited": True}],
            "commissions": [
                {
                    "level": 1,
                    "distributor_id": "openid-alice",
                    "rate_bps": 1000,
                    "amount_fen": 1990,
                    "arithmetic": "floor(19900 × 1000 / 10000) = 1990",
                }
            ],
        },
        lambda r: (
            isinstance(r, sdk.OrderExplanation)
            and r.commissions[0].arithmetic.endswith("= 1990")
            and r.binding_events[0].credited
        ),
    ),
    Case(
        "program.get",
        lambda c: c.program.get(),
        "GET",
        "/v1/program",
        PROGRAM,
        lambda r: (
            isinstance(r, sdk.Program) and (r.freeze_days, r.timezone) == (7, "Asia/Shanghai")
        ),
    ),
    Case(
        "program.put",
        lambda c: c.program.put(
            bind_mode="last",
            commission_bps=(1000, 500),
            bind_validity_days=30,
            freeze_days=10,
            self_purchase_commission=True,
            clawback="absorb",
            payout_threshold_fen=1000,
            timezone="Asia/Shanghai",
            landing_url="https://example.com/index",
            avatar_hosts=[".qlogo.cn"],
        ),
        "PUT",
        "/v1/program",
        PROGRAM,
        lambda r: r.commission_bps == [1000, 500],
        body={
            "bind_mode": "last",
            "commission_bps": [1000, 500],
            "bind_validity_days": 30,
            "freeze_days": 10,
            "self_purchase_commission": True,
            "clawback": "absorb",
            "payout_threshold_fen": 1000,
            "timezone": "Asia/Shanghai",
            "landing_url": "https://example.com/index",
            "avatar_hosts": [".qlogo.cn"],
        },
    ),
    Case(
        "program.put minimal sends validity null",
        lambda c: c.program.put(bind_mode="first", commission_bps=[800]),
        "PUT",
        "/v1/program",
        PROGRAM,
        lambda r: r.bind_validity_days is None,
        body={"bind_mode": "first", "commission_bps": [800], "bind_validity_days": None},
    ),
    Case(
        "campaigns.create",
        lambda c: c.campaigns.create(
            "双十一",
            datetime(2024, 11, 1, tzinfo=CST),
            "2024-11-12T00:00:00+08:00",
            "invites",
            prizes=[sdk.Prize(rank_from=1, rank_to=1, amount_fen=88800)],
            min_score=3,
            red_packet=sdk.RedPacket(mode="fixed_per_invite", budget_fen=10000, min_fen=100),
        ),
        "POST",
        "/v1/campaigns",
        CAMPAIGN,
        lambda r: isinstance(r, sdk.Campaign) and r.id == "cmp_7" and r.red_packet is not None,
        body={
            "name": "双十一",
            "starts_at": "2024-11-01T00:00:00+08:00",
            "ends_at": "2024-11-12T00:00:00+08:00",
            "metric": "invites",
            "prizes": [{"rank_from": 1, "rank_to": 1, "amount_fen": 88800}],
            "min_score": 3,
            "red_packet": {"mode": "fixed_per_invite", "budget_fen": 10000, "min_fen": 100},
        },
    ),
    Case(
        "campaigns.create with dicts and no prizes",
        lambda c: c.campaigns.create(
            "红包雨",
            "2024-11-01T00:00:00+08:00",
            "2024-11-02T00:00:00+08:00",
            "gmv",
            red_packet={"mode": "pool_split_random", "budget_fen": 100000, "min_fen": 100},
        ),
        "POST",
        "/v1/campaigns",
        {**CAMPAIGN, "id": "cmp_8", "prizes": []},
        lambda r: r.id == "cmp_8" and r.prizes == [],
        body={
            "name": "红包雨",
            "starts_at": "2024-11-01T00:00:00+08:00",
            "ends_at": "2024-11-02T00:00:00+08:00",
            "metric": "gmv",
            "prizes": [],
            "red_packet": {"mode": "pool_split_random", "budget_fen": 100000, "min_fen": 100},
        },
    ),
    Case(
        "campaigns.get",
        lambda c: c.campaigns.get("cmp_7"),
        "GET",
        "/v1/campaigns/cmp_7",
        CAMPAIGN,
        lambda r: r.starts_at == datetime(2024, 11, 1, tzinfo=CST),
    ),
    Case(
        "campaigns.close",
        lambda c: c.campaigns.close("cmp_7"),
        "POST",
        "/v1/campaigns/cmp_7/close",
        {
            "awards": [
                {"distributor_id": "openid-alice", "rank": 1, "amount_fen": 88800, "kind": "prize"}
            ]
        },
        lambda r: isinstance(r, sdk.CampaignClosing) and r.awards[0].amount_fen == 88800,
    ),
    Case(
        "leaderboards.get",
        lambda c: c.leaderboards.get("cmp_7"),
        "GET",
        "/v1/campaigns/cmp_7/leaderboard",
        {"entries": [ENTRY]},
        lambda r: isinstance(r, sdk.Leaderboard) and r.entries[0].score == 12,
        query={"period": "campaign", "limit": "50"},
    ),
    Case(
        "leaderboards.get at a time",
        lambda c: c.leaderboards.get(
            "cmp_7", period="day", limit=10, at=datetime(2024, 11, 11, 12, tzinfo=CST)
        ),
        "GET",
        "/v1/campaigns/cmp_7/leaderboard",
        {"entries": []},
        lambda r: r.entries == [],
        query={"period": "day", "limit": "10", "at": "2024-11-11T12:00:00+08:00"},
    ),
    Case(
        "leaderboards.rank at a time",
        lambda c: c.leaderboards.rank("cmp_7", "openid-alice", at="2024-11-11T12:00:00Z", around=1),
        "GET",
        "/v1/campaigns/cmp_7/leaderboard/openid-alice",
        {"rank": None, "score": 0},
        lambda r: r.rank is None and r.above == [],
        query={"period": "campaign", "at": "2024-11-11T12:00:00+00:00", "around": "1"},
    ),
    Case(
        "leaderboards.rank",
        lambda c: c.leaderboards.rank("cmp_7", "openid-alice", period="week"),
        "GET",
        "/v1/campaigns/cmp_7/leaderboard/openid-alice",
        {"rank": 2, "score": 10, "above": [ENTRY], "below": []},
        lambda r: isinstance(r, sdk.LeaderboardRank) and (r.rank, r.above[0].rank) == (2, 1),
        query={"period": "week"},
    ),
    Case(
        "links.wxacode",
        lambda c: c.links.wxacode("Ab3"),
        "GET",
        "/v1/links/Ab3/wxacode",
        PNG,
        lambda r: r == PNG,
    ),
    Case(
        "links.wxacode with options",
        lambda c: c.links.wxacode("Ab3", "pages/a/b", 600, "trial", False, True),
        "GET",
        "/v1/links/Ab3/wxacode",
        PNG,
        lambda r: r == PNG,
        query={"page": "pages/a/b", "width": "600", "env_version": "trial",
               "check_path": "false", "is_hyaline": "true"},  # fmt: skip
    ),
    Case(
        "links.upload_wxacode",
        lambda c: c.links.upload_wxacode("Ab3", PNG),
        "PUT",
        "/v1/links/Ab3/wxacode",
        {"code": "Ab3", "source": "upload", "media_type": "image/png", "width": 430,
         "height": 430, "size_bytes": 12},  # fmt: skip
        lambda r: isinstance(r, sdk.Wxacode) and r.source == "upload" and r.width == 430,
        raw_body=("image/png", PNG),
    ),
    Case(
        "links.upload_wxacode jpeg",
        lambda c: c.links.upload_wxacode("Ab3", b"\xff\xd8\xff\xe0jpeg"),
        "PUT",
        "/v1/links/Ab3/wxacode",
        {"code": "Ab3", "source": "upload", "media_type": "image/jpeg", "width": 300,
         "height": 300, "size_bytes": 8},  # fmt: skip
        lambda r: r.media_type == "image/jpeg",
        raw_body=("image/jpeg", b"\xff\xd8\xff\xe0jpeg"),
    ),
    Case(
        "posters.get",
        lambda c: c.posters.get("openid-alice"),
        "GET",
        "/v1/posters/openid-alice",
        PNG,
        lambda r: r == PNG,
        query={"format": "png"},
    ),
    Case(
        "posters.get jpeg for a campaign",
        lambda c: c.posters.get("openid-alice", "cmp_7", "spring", "jpeg"),
        "GET",
        "/v1/posters/openid-alice",
        b"\xff\xd8\xff",
        lambda r: r == b"\xff\xd8\xff",
        query={"campaign_id": "cmp_7", "template": "spring", "format": "jpeg"},
    ),
    Case(
        "settlements.create",
        lambda c: c.settlements.create(datetime(2024, 12, 1, tzinfo=UTC)),
        "POST",
        "/v1/settlements",
        SETTLEMENT,
        lambda r: isinstance(r, sdk.Settlement) and r.lines[0].net_fen == r.total_fen == 1590,
        body={"cutoff": "2024-12-01T00:00:00+00:00"},
    ),
    Case(
        "settlements.get",
        lambda c: c.settlements.get("st_1"),
        "GET",
        "/v1/settlements/st_1",
        SETTLEMENT,
        lambda r: r.status == "draft",
    ),
    Case(
        "settlements.approve",
        lambda c: c.settlements.approve("st_1"),
        "POST",
        "/v1/settlements/st_1/approve",
        {**SETTLEMENT, "status": "approved"},
        lambda r: r.status == "approved",
    ),
    Case(
        "settlements.paid",
        lambda c: c.settlements.paid("st_1", {"openid-alice": "WX-TRANSFER-1"}),
        "POST",
        "/v1/settlements/st_1/paid",
        {**SETTLEMENT, "status": "paid"},
        lambda r: r.status == "paid",
        body={"references": {"openid-alice": "WX-TRANSFER-1"}},
    ),
    Case(
        "settlements.export csv",
        lambda c: c.settlements.export("st_1"),
        "GET",
        "/v1/settlements/st_1/export.csv",
        "\ufeffdistributor_id,net_fen\r\n".encode(),
        lambda r: r.startswith(b"\xef\xbb\xbf"),
    ),
    Case(
        "settlements.export xlsx",
        lambda c: c.settlements.export("st_1", format="xlsx"),
        "GET",
        "/v1/settlements/st_1/export.xlsx",
        b"PK\x03\x04",
        lambda r: r == b"PK\x03\x04",
    ),
    Case(
        "settlements.export csv en",
        lambda c: c.settlements.export("st_1", lang="en"),
        "GET",
        "/v1/settlements/st_1/export.csv",
        "\ufeffdistributor_id,net_fen\r\n".encode(),
        lambda r: r.startswith(b"\xef\xbb\xbf"),
        query={"lang": "en"},
    ),
    Case(
        "settlements.payout_file",
        lambda c: c.settlements.payout_file("st_1", layout="wechat_transfer"),
        "GET",
        "/v1/settlements/st_1/payout.csv",
        b"detail_no,amount\r\n",
        lambda r: r == b"detail_no,amount\r\n",
        query={"layout": "wechat_transfer"},
    ),
]


def _reply(payload: Any) -> httpx.Response:
    if isinstance(payload, bytes):
        return httpx.Response(200, content=payload)
    return httpx.Response(200, json=payload)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_method_sends_the_documented_request(case: Case, run: Run, recorder: Recorder) -> None:
    recorder.replies.append(_reply(case.reply))

    result = run(recorder, case.invoke)

    assert case.check(result), result
    [request] = recorder.requests
    assert request.method == case.method
    assert request.url.raw_path.decode().partition("?")[0] == case.path
    assert dict(request.url.params) == case.query
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"] == f"liebian-sdk/{sdk.__version__}"
    if case.raw_body is not None:
        assert (request.headers["content-type"], request.content) == case.raw_body
    elif case.body is None:
        assert request.content == b""
    else:
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == case.body
    if case.method in ("POST", "PUT"):
        assert uuid.UUID(request.headers["idempotency-key"]).version == 4
    else:
        assert "idempotency-key" not in request.headers


def test_every_method_has_a_case() -> None:
    resources = [
        "distributors",
        "links",
        "referrals",
        "orders",
        "program",
        "campaigns",
        "leaderboards",
        "posters",
        "settlements",
    ]
    with sdk.Client("https://x.test", "k") as client:
        methods = {
            f"{name}.{attr}"
            for name in resources
            for attr in dir(type(getattr(client, name)))
            if not attr.startswith("_")
        }
    covered = {case.name.split(" ")[0] for case in CASES}
    assert methods == covered


def test_explicit_idempotency_key_is_sent(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(_reply(LINK))
    run(recorder, lambda c: c.links.create("openid-alice", idempotency_key="share-alice-1"))
    assert recorder.requests[0].headers["idempotency-key"] == "share-alice-1"


def test_each_logical_write_gets_its_own_key(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(_reply(LINK))

    def twice(client: Any) -> Any:
        first = client.links.create("openid-alice")
        if not isinstance(first, sdk.Link):  # async: chain the awaits
            return _await_both(first, client.links.create("openid-alice"))
        return client.links.create("openid-alice")

    run(recorder, twice)
    keys = {request.headers["idempotency-key"] for request in recorder.requests}
    assert len(recorder.requests) == 2 and len(keys) == 2


async def _await_both(first: Any, second: Any) -> Any:
    await first
    return await second


@pytest.mark.parametrize(
    "invoke",
    [
        lambda c: c.orders.paid("o", "u", 1, datetime(2024, 11, 11, 10)),
        lambda c: c.orders.paid("o", "u", 1, "2024-11-11T10:00:00"),
        lambda c: c.orders.paid("o", "u", 1, "11/11/2024"),
        lambda c: c.settlements.create(datetime(2024, 12, 1)),
        lambda c: c.leaderboards.get("cmp_7", at="2024-11-11 12:00"),
        lambda c: c.referrals.bind("u", occurred_at="2024-11-11T10:00:00+08:00"),
        lambda c: c.referrals.bind("u", scene="s", code="c"),
        lambda c: c.settlements.export("st_1", format="pdf"),
        lambda c: c.distributors.get(""),
    ],
    ids=[
        "naive datetime",
        "naive string",
        "not RFC 3339",
        "naive cutoff",
        "naive at",
        "neither scene nor code",
        "both scene and code",
        "unknown export format",
        "empty id",
    ],
)
def test_bad_arguments_raise_before_sending(invoke: Any, run: Run, recorder: Recorder) -> None:
    recorder.replies.append(_reply({}))
    with pytest.raises(ValueError):
        run(recorder, invoke)
    assert recorder.requests == []


def test_naive_datetime_message() -> None:
    with sdk.Client("https://x.test", "k") as client, pytest.raises(ValueError, match="aware"):
        client.settlements.create(datetime(2024, 12, 1))


def test_unexpected_body_raises_response_validation_error(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.Response(200, json={"nickname": "no id, no balance"}))
    with pytest.raises(sdk.APIResponseValidationError, match="distributor_id") as info:
        run(recorder, lambda c: c.distributors.get("openid-alice"))
    assert isinstance(info.value, sdk.LiebianError)
    assert info.value.response.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("/v1", "k"), "absolute"),
        (("https://x.test", ""), "api_key"),
    ],
)
def test_client_arguments_are_checked(args: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sdk.Client(*args)
    with pytest.raises(ValueError, match=message):
        sdk.AsyncClient(*args)


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        sdk.Client("https://x.test", "k", max_retries=-1)


def test_one_connection_pool_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[httpx.Client] = []

    class CountingClient(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            built.append(self)

    monkeypatch.setattr(httpx, "Client", CountingClient)
    recorder = Recorder([_reply(DISTRIBUTOR)])
    with sdk.Client("https://x.test", "k", transport=recorder.transport) as client:
        for _ in range(3):
            client.distributors.get("openid-alice")
    assert len(built) == 1 and len(recorder.requests) == 3
    assert built[0].is_closed


def test_async_client_closes_its_pool() -> None:
    import asyncio

    async def main() -> sdk.AsyncClient:
        async with sdk.AsyncClient("https://x.test", "k") as client:
            return client

    client = asyncio.run(main())
    assert client._http.is_closed


def test_repr_hides_the_key() -> None:
    with sdk.Client("https://x.test/api", "sk_secret") as client:
        assert "sk_secret" not in repr(client)
        assert client.base_url == "https://x.test/api/"
