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
