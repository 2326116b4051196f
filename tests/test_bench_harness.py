"""The app/bare ratio every API figure is reported as: the median of back-to-back pairs."""

from __future__ import annotations

from bench.harness import Comparison, Result, Side, _median_side


def _side(*rps: float) -> Side:
    return _median_side(
        [Result(requests=int(r), seconds=1.0, p50_ms=1.0, p99_ms=2.0, errors=0) for r in rps]
    )


def test_the_ratio_is_the_median_of_the_pairs_not_of_the_sides() -> None:
    # Runs go bare, app, bare, app ...; the machine halves its speed in the middle of the
    # second pair (after its bare run) and stays slow.
    c = Comparison("s", "sqlite", _side(800, 400, 400), _side(1000, 1000, 500), 0.8, 1000)
    assert c.pair_ratios == [0.8, 0.4, 0.8]
    assert c.ratio == 0.8 and c.ok
    assert c.app.rps / c.bare.rps == 0.4  # the sides' medians would say 40 %
