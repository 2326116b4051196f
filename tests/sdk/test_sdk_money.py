"""Money arguments are integer fen: the SDK refuses floats, bools, strings and Decimals before
sending anything (a client passing yuan would otherwise be off by 100x, or rounded)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import liebian_sdk as sdk
import pytest
from sdk_testing import Recorder, Run

PAID = datetime(2024, 11, 11, 10, tzinfo=UTC)
NOT_FEN = [199.0, 19900.0, "19900", "199.00", True, Decimal("199.00")]

CALLS = {
    "orders.paid amount_fen": lambda v: lambda c: c.orders.paid("o", "u", v, PAID),
    "orders.refund amount_fen": lambda v: lambda c: c.orders.refund("o", "r", v),
    "program.put payout_threshold_fen": lambda v: lambda c: c.program.put(
        bind_mode="first", commission_bps=[1000], payout_threshold_fen=v
    ),
    "program.put commission_bps[0]": lambda v: lambda c: c.program.put(
        bind_mode="first", commission_bps=[v]
    ),
    "campaigns.create prizes[0].amount_fen (mapping)": lambda v: lambda c: c.campaigns.create(
        "c", PAID, PAID, "invites", prizes=[{"rank_from": 1, "rank_to": 1, "amount_fen": v}]
    ),
    "campaigns.create prizes[0].amount_fen (Prize)": lambda v: lambda c: c.campaigns.create(
        "c", PAID, PAID, "invites", prizes=[sdk.Prize(rank_from=1, rank_to=1, amount_fen=v)]
    ),
    "campaigns.create red_packet.budget_fen": lambda v: lambda c: c.campaigns.create(
        "c", PAID, PAID, "invites", red_packet=sdk.RedPacket(mode="pool_split_random",
                                                             budget_fen=v)
    ),
    "campaigns.create red_packet.min_fen (mapping)": lambda v: lambda c: c.campaigns.create(
        "c", PAID, PAID, "invites",
        red_packet={"mode": "random_per_invite", "budget_fen": 10000, "min_fen": v},
    ),
}


@pytest.mark.parametrize("value", NOT_FEN, ids=repr)
@pytest.mark.parametrize("call", list(CALLS), ids=str)
def test_money_arguments_must_be_int_fen(call: str, value: Any, run: Run, recorder: Recorder):
    recorder.replies.append(httpx.Response(201, json={}))
    with pytest.raises(TypeError) as info:
        run(recorder, CALLS[call](value))
    field = call.split(" ")[1]
    assert str(info.value).startswith(field + " must be an int"), info.value
    assert ("fen" if "_fen" in field else "basis points") in str(info.value)
    assert recorder.requests == []


def test_int_fen_is_sent_as_a_json_integer(run: Run, recorder: Recorder):
    reply = {"order_id": "o", "commissions": []}
    recorder.replies.append(httpx.Response(201, json=reply))
    run(recorder, lambda c: c.orders.paid("o", "u", 19900, PAID))
    assert b'"amount_fen":19900' in recorder.requests[0].content
