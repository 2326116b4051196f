"""The SDK's withdrawal methods against the real app (typed models)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import liebian_sdk as sdk
import pytest
from sdk_testing import Target, close, done


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_withdraw_and_list(target: Target, kind: str) -> None:
    asyncio.run(scenario(target, kind))


async def scenario(target: Target, kind: str) -> None:
    run = uuid.uuid4().hex[:8]
    dee, buyer = f"dee-{run}", f"buyer-{run}"
    admin, app = target.client(kind, target.admin_key), target.client(kind, target.sdk_key)
    try:
        await done(admin.program.put(bind_mode="first", commission_bps=[1000], freeze_days=0))
        await done(app.distributors.upsert(dee, "Dee"))
        link = await done(app.links.create(dee))
        await done(app.referrals.bind(buyer, code=link.code))
        paid = datetime.now(UTC) - timedelta(days=1)
        await done(app.orders.paid(f"o-{run}", buyer, 10_000, paid))
        with pytest.raises(sdk.ConflictError):  # the program takes no withdrawals yet
            await done(app.distributors.withdraw(dee, 500))
        await done(
            admin.program.put(
                bind_mode="first", commission_bps=[1000], freeze_days=0,
                withdrawal={"min_fen": 100, "fee_bps": 100},
            )
        )  # fmt: skip
        made = await done(app.distributors.withdraw(dee, 500, idempotency_key=f"w-{run}"))
        assert isinstance(made, sdk.Withdrawal)
        assert (made.amount_fen, made.fee_fen, made.net_fen, made.status) == (
            500,
            5,
            495,
            "requested",
        )
        again = await done(app.distributors.withdraw(dee, 500, idempotency_key=f"w-{run}"))
        assert again.id == made.id
        page = await done(app.distributors.withdrawals(dee))
        assert [w.id for w in page.withdrawals] == [made.id]
        with pytest.raises(sdk.ValidationError) as too_much:
            await done(app.distributors.withdraw(dee, 10_000))
        assert too_much.value.errors[0].field == "amount_fen"
        profile = await done(app.distributors.get(dee))
        assert profile.balance.available_fen == 500 and profile.balance.settled_fen == 495
    finally:
        await close(admin)
        await close(app)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_finance_works_the_queue(target: Target, kind: str) -> None:
    asyncio.run(finance(target, kind))


async def finance(target: Target, kind: str) -> None:
    """list, approve, reject, export and paid: typed pages, batches, errors by field."""
    run = uuid.uuid4().hex[:8]
    dee, buyer = f"fin-{run}", f"fbuyer-{run}"
    admin, app = target.client(kind, target.admin_key), target.client(kind, target.sdk_key)
    try:
        await done(admin.program.put(
            bind_mode="first", commission_bps=[1000], freeze_days=0,
            withdrawal={"min_fen": 100, "fee_bps": 100, "cooldown_seconds": 0}))  # fmt: skip
        await done(app.distributors.upsert(dee, "Fin"))
        link = await done(app.links.create(dee))
        await done(app.referrals.bind(buyer, code=link.code))
        paid = datetime.now(UTC) - timedelta(days=1)
        await done(app.orders.paid(f"fo-{run}", buyer, 30_000, paid))
        made = [await done(app.distributors.withdraw(dee, n)) for n in (1_000, 500, 300)]
        ids = [w.id for w in made]
        queue = await done(admin.withdrawals.list("requested", limit=500))
        assert isinstance(queue, sdk.WithdrawalPage)
        assert set(ids) <= {w.id for w in queue.withdrawals}
        approved = await done(admin.withdrawals.approve(ids[:2], idempotency_key=f"a-{run}"))
        assert [(w.id, w.status) for w in approved.withdrawals] == [
            (ids[0], "approved"), (ids[1], "approved")]  # fmt: skip
        rejected = await done(admin.withdrawals.reject([ids[2]], "资料不符"))
        assert rejected.withdrawals[0].status == "rejected"
        assert rejected.withdrawals[0].reason == "资料不符"
        with pytest.raises(sdk.ConflictError):
            await done(admin.withdrawals.approve([ids[2]]))
        with pytest.raises(sdk.ValidationError) as unknown:
            await done(admin.withdrawals.approve(["wd_nope"]))
        assert unknown.value.errors[0].field == "ids"
        exported = await done(admin.withdrawals.export("approved"))
        assert isinstance(exported, bytes) and exported.startswith(b"\xef\xbb\xbf")
        assert ids[0].encode() in exported and ids[2].encode() not in exported
        refs = {ids[0]: f"WX-{run}-1", ids[1]: f"WX-{run}-2"}
        done_page = await done(admin.withdrawals.paid(refs, idempotency_key=f"p-{run}"))
        assert {(w.id, w.status, w.transfer_ref) for w in done_page.withdrawals} == {
            (i, "paid", r) for i, r in refs.items()}  # fmt: skip
        with pytest.raises(sdk.ConflictError):
            await done(admin.withdrawals.reject([ids[0]], "too late"))
        with pytest.raises(sdk.PermissionDeniedError):
            await done(app.withdrawals.list())
        paid_page = await done(admin.withdrawals.list("paid", limit=500))
        assert {ids[0], ids[1]} <= {w.id for w in paid_page.withdrawals}
        profile = await done(app.distributors.get(dee))
        assert profile.balance.paid_fen == (1_000 - 10) + (500 - 5)
    finally:
        await close(admin)
        await close(app)
