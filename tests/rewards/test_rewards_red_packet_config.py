"""Impossible or inconsistent red-packet configurations are refused up front, naming the field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from rewards import RedPacketConfig, RewardConfigError, planned_count, validate_red_packet_config

FIX = "fixed_per_invite"
RND = "random_per_invite"
POOL = "pool_split_random"
PROP = "pool_split_proportional"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "lottery", "budget_fen": 100}, "mode"),
        ({"mode": RND, "budget_fen": 0, "max_fen": 10}, "budget_fen"),
        ({"mode": RND, "budget_fen": -5, "max_fen": 10}, "budget_fen"),
        ({"mode": RND, "budget_fen": 1.5, "max_fen": 10}, "budget_fen"),
        ({"mode": RND, "budget_fen": 1000, "min_fen": 0, "max_fen": 10}, "min_fen"),
        ({"mode": RND, "budget_fen": 1000, "min_fen": 50, "max_fen": 10}, "max_fen"),
        ({"mode": RND, "budget_fen": 99, "min_fen": 100, "max_fen": 200}, "budget_fen"),
        ({"mode": RND, "budget_fen": 1000, "max_fen": 100, "count": 0}, "count"),
        ({"mode": RND, "budget_fen": 1000, "min_fen": 100, "max_fen": 200, "count": 11}, "count"),
        ({"mode": RND, "budget_fen": 1000, "min_fen": 100, "max_fen": 200, "count": 4}, "count"),
        ({"mode": RND, "budget_fen": 1000}, "count"),
        ({"mode": RND, "budget_fen": 100, "min_fen": 30, "max_fen": 30}, "budget_fen"),
        ({"mode": RND, "budget_fen": 1000, "max_fen": 100, "amount_fen": 10}, "amount_fen"),
        ({"mode": RND, "budget_fen": 1000, "max_fen": 100, "seed": -1}, "seed"),
        ({"mode": RND, "budget_fen": 1000, "max_fen": 100, "seed": 2**63}, "seed"),
        ({"mode": FIX, "budget_fen": 1000}, "amount_fen"),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 0}, "amount_fen"),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 50, "min_fen": 100}, "amount_fen"),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 500, "max_fen": 200}, "amount_fen"),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 1001}, "amount_fen"),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 100, "count": 11}, "count"),
        ({"mode": POOL, "budget_fen": 1000, "min_fen": 100, "count": 11}, "count"),
        ({"mode": POOL, "budget_fen": 1000, "max_fen": 100, "count": 9}, "count"),
        ({"mode": PROP, "budget_fen": 1000, "amount_fen": 100}, "amount_fen"),
        ({"mode": PROP, "budget_fen": 100, "min_fen": 40, "max_fen": 45}, "budget_fen"),
    ],
)
def test_refusals_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(RewardConfigError) as info:
        validate_red_packet_config(RedPacketConfig(**kwargs))
    assert info.value.field == field
    assert info.value.message  # a human-readable reason and fix
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": FIX, "budget_fen": 1000, "amount_fen": 100},
        {"mode": FIX, "budget_fen": 1000, "amount_fen": 1000, "max_fen": 1000},
        {"mode": FIX, "budget_fen": 1000, "amount_fen": 100, "count": 10},
        {"mode": RND, "budget_fen": 1000, "min_fen": 100, "max_fen": 200, "count": 5},
        {"mode": RND, "budget_fen": 1000, "min_fen": 100, "max_fen": 200, "count": 10},
        {"mode": RND, "budget_fen": 1000, "count": 3},
        {"mode": RND, "budget_fen": 1000, "max_fen": 1000, "seed": 2**63 - 1},
        {"mode": POOL, "budget_fen": 1000},
        {"mode": POOL, "budget_fen": 1000, "min_fen": 100, "max_fen": 300, "count": 4},
        {"mode": PROP, "budget_fen": 88800, "min_fen": 100, "max_fen": 20000},
    ],
)
def test_feasible_configs_pass(kwargs: dict[str, Any]) -> None:
    validate_red_packet_config(RedPacketConfig(**kwargs))


def test_decoding_refuses_unknown_fields_and_modes() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"mode":"fixed_per_invite","budget_fen":1,"amout_fen":1}',
                            type=RedPacketConfig)  # fmt: skip
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"mode":"lottery","budget_fen":1}', type=RedPacketConfig)


@pytest.mark.parametrize(
    ("kwargs", "count"),
    [
        ({"mode": RND, "budget_fen": 1000, "min_fen": 100, "max_fen": 200, "count": 7}, 7),
        ({"mode": RND, "budget_fen": 10000, "min_fen": 100, "max_fen": 300}, 50),
        ({"mode": RND, "budget_fen": 10001, "min_fen": 100, "max_fen": 300}, 50),
        # budget // mean would be 3, but 3 packets of at most 40 fen cannot spend 130 fen.
        ({"mode": RND, "budget_fen": 130, "min_fen": 30, "max_fen": 40}, 4),
        ({"mode": RND, "budget_fen": 50, "min_fen": 100 // 4, "max_fen": 1000}, 1),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 300}, 4),
        ({"mode": FIX, "budget_fen": 1000, "amount_fen": 300, "min_fen": 200}, 3),
        ({"mode": FIX, "budget_fen": 900, "amount_fen": 300}, 3),
        ({"mode": POOL, "budget_fen": 1000, "min_fen": 30}, 33),
    ],
)
def test_planned_count(kwargs: dict[str, Any], count: int) -> None:
    assert planned_count(RedPacketConfig(**kwargs)) == count
