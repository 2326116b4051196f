"""Every method against the real app end to end, on both clients: in-process on this pass's
engine, or the server at LIEBIAN_SDK_TEST_BASE_URL when set (see conftest.target).

The scenario is written once as a coroutine; `done()` awaits what the async client returns and
passes the sync client's values through. Ids carry a per-run suffix so that a live server with
state from earlier runs gives the same results.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import liebian_sdk as sdk
import pytest
from sdk_testing import Target, close, done


async def scenario(target: Target, kind: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    alice, carol, bob = f"alice-{run}", f"carol-{run}", f"bob-{run}"
    admin, app = target.client(kind, target.admin_key), target.client(kind, target.sdk_key)
    now = datetime.now(UTC)
    seen: dict[str, Any] = {}
    try:
        seen["program"] = await done(
            admin.program.put(bind_mode="first", commission_bps=[1000, 500], freeze_days=7)
        )
        seen["program_again"] = await done(admin.program.get())
        campaign = await done(
            admin.campaigns.create(
                f"flow {run}",
                now - timedelta(days=11),
                now + timedelta(days=1),
                "invites",
                prizes=[sdk.Prize(rank_from=1, rank_to=1, amount_fen=8800)],
            )
        )
        seen["campaign"] = await done(app.campaigns.get(campaign.id))

        seen["alice"] = await done(app.distributors.upsert(alice, "爱丽丝", tier="koc"))
        await done(app.distributors.upsert(carol, "Carol"))
        alice_link = await done(app.links.create(alice, campaign_id=campaign.id))
        seen["same_link"] = await done(app.links.create(alice, campaign_id=campaign.id))
        seen["carol_bound"] = await done(app.referrals.bind(carol, code=alice_link.code))
        carol_link = await done(app.links.create(carol, channel="group"))
        seen["bob_bound"] = await done(app.referrals.bind(bob, scene=carol_link.scene))
        seen["team1"] = await done(app.distributors.team(alice))
        seen["team2"] = await done(app.distributors.team(alice, level=2))

        order_id = f"order-{run}"
        paid_at = now - timedelta(days=10)  # past its 7-day freeze: the settlement pays it
        seen["order"] = await done(app.orders.paid(order_id, bob, 19900, paid_at, campaign.id))
        seen["refund"] = await done(app.orders.refund(order_id, f"refund-{run}", 5000))
        seen["explain"] = await done(app.orders.explain(order_id))
        seen["ledger"] = await done(app.distributors.ledger(alice, limit=10))
        seen["profile"] = await done(app.distributors.get(alice))

        seen["board"] = await done(app.leaderboards.get(campaign.id, limit=10))
        seen["rank"] = await done(app.leaderboards.rank(campaign.id, alice))
        seen["poster"] = await done(app.posters.get(alice, campaign_id=campaign.id))
        seen["closing"] = await done(admin.campaigns.close(campaign.id))
        seen["closing_again"] = await done(admin.campaigns.close(campaign.id))

        draft = await done(admin.settlements.create(datetime.now(UTC)))  # not later than now
        seen["settlement"] = await done(admin.settlements.get(draft.id))
        approved = await done(admin.settlements.approve(draft.id))
        references = {line.distributor_id: f"T-{run}" for line in approved.lines}
        seen["paid"] = await done(admin.settlements.paid(draft.id, references))
        seen["csv"] = await done(admin.settlements.export(draft.id))
        seen["csv_again"] = await done(admin.settlements.export(draft.id))
        seen["xlsx"] = await done(admin.settlements.export(draft.id, format="xlsx"))
        seen["csv_en"] = await done(admin.settlements.export(draft.id, lang="en"))
        seen["payout"] = await done(admin.settlements.payout_file(draft.id, "wechat_transfer"))

        seen["errors"] = errors = {}
        await done(app.links.create(alice, idempotency_key=run))
        for name, call in [
            ("sdk key on admin route", lambda: app.settlements.create(now)),
            ("unknown distributor", lambda: app.distributors.get(f"nobody-{run}")),
            ("over-refund", lambda: app.orders.refund(order_id, f"big-{run}", 10**9)),
            ("key reused, other body", lambda: app.links.create(bob, idempotency_key=run)),
        ]:
            try:
                await done(call())
            except sdk.APIError as error:
                errors[name] = error
        bad = target.client(kind, "sk_wrong")
        try:
            await done(bad.distributors.get(alice))
        except sdk.APIError as error:
            errors["wrong key"] = error
        finally:
            await close(bad)
    finally:
        await close(admin)
        await close(app)
    seen.update(alice_id=alice, carol_id=carol, bob_id=bob)
    return seen


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_method_end_to_end(target: Target, kind: str) -> None:
    seen = asyncio.run(scenario(target, kind))
    alice, carol, bob = seen["alice_id"], seen["carol_id"], seen["bob_id"]

    assert seen["program"].commission_bps == seen["program_again"].commission_bps == [1000, 500]
    assert seen["campaign"].metric == "invites"
    assert seen["alice"].distributor_id == alice and seen["alice"].tier == "koc"
    assert seen["same_link"].code
    assert seen["carol_bound"].outcome == "bound" and seen["carol_bound"].inviter_id == alice
    assert seen["bob_bound"].upline == [carol, alice]
    assert carol in [m.user_id for m in seen["team1"].members]
    assert bob in [m.user_id for m in seen["team2"].members]

    earned = {(c.distributor_id, c.level, c.amount_fen) for c in seen["order"].commissions}
    assert earned == {(carol, 1, 1990), (alice, 2, 995)}
    reversed_fen = {r.distributor_id: abs(r.amount_fen) for r in seen["refund"].reversals}
    assert reversed_fen == {carol: 500, alice: 250}
    assert seen["explain"].order_id.startswith("order-")
    balance = seen["profile"].balance
    assert seen["ledger"].entries and balance.pending_fen + balance.available_fen == 995 - 250

    assert seen["rank"].rank == 1 and seen["rank"].score == 1
    assert seen["board"].entries[0].distributor_id == alice
    assert seen["poster"][:4] == b"\x89PNG"
    assert seen["closing"] == seen["closing_again"]
    assert [a.distributor_id for a in seen["closing"].awards if a.kind == "prize"] == [alice]

    settlement = seen["settlement"]
    assert settlement.total_fen == sum(line.net_fen for line in settlement.lines)
    assert seen["paid"].status == "paid"
    assert seen["csv"] == seen["csv_again"] and seen["csv"].startswith(b"\xef\xbb\xbf")
    assert seen["xlsx"][:2] == b"PK"
    assert seen["csv_en"].decode("utf-8-sig").startswith("distributor_id,")
    assert seen["csv"].decode("utf-8-sig").startswith("分销员ID,")
    assert seen["payout"].decode("utf-8-sig").startswith("商家明细单号,")

    errors = seen["errors"]
    assert isinstance(errors["sdk key on admin route"], sdk.PermissionDeniedError)
    assert isinstance(errors["unknown distributor"], sdk.NotFoundError)
    assert isinstance(errors["over-refund"], sdk.ValidationError)
    assert isinstance(errors["key reused, other body"], sdk.ConflictError)
    assert isinstance(errors["wrong key"], sdk.AuthenticationError)
