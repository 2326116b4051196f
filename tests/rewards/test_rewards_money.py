from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import fen_to_yuan_str


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (5, "0.05"),
        (-5, "-0.05"),
        (100, "1.00"),
        (12345, "123.45"),
        (-12345, "-123.45"),
        (-100, "-1.00"),
        (10**20 + 7, "1000000000000000000.07"),
    ],
)
def test_fen_to_yuan_str_table(fen: int, text: str) -> None:
    assert fen_to_yuan_str(fen) == text


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_fen_to_yuan_str_round_trips_exactly(fen: int) -> None:
    text = fen_to_yuan_str(fen)
    assert Decimal(text) * 100 == fen
    assert text.split(".")[1].isdigit() and len(text.split(".")[1]) == 2


@pytest.mark.parametrize("bad", [1.0, "1", True, None])
def test_fen_to_yuan_str_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        fen_to_yuan_str(bad)  # type: ignore[arg-type]
