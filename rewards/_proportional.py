"""Bounded proportional split in integers. Private: use ``rewards.red_packets``.

Find the scale ``t`` with ``sum(clamp(t * score_i, lo, hi)) == budget``; that sum is continuous
and non-decreasing in ``t`` with breakpoints at ``lo / score`` (leaves the floor) and ``hi / score``
(reaches the ceiling). Both kinds of breakpoint come in order of descending score, so one sort and
a merge sweep find ``t`` exactly, comparing fractions by cross-multiplication. The shares left
between the bounds are then rounded by largest remainder, ties going to the earlier position.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["bounded_proportional"]


def bounded_proportional(budget: int, scores: Sequence[int], lo: int, hi: int | None) -> list[int]:
    """Integer shares of ``budget`` in proportion to ``scores`` within ``[lo, hi]``.

    Preconditions (checked by the caller): ``scores`` non-empty, all >= 0, ``0 <= lo``, and
    ``len(scores) * lo <= budget <= len(scores) * hi``. Zero scores get ``lo`` unless the positive
    scores are all at ``hi`` and budget remains, which the zero scores then share equally.
    """
    n = len(scores)
    order = sorted((i for i in range(n) if scores[i] > 0), key=lambda i: -scores[i])
    m = len(order)
    shares = [lo] * n
    if budget == n * lo:
        return shares
    # order[:capped] sit at hi, order[capped:freed] scale with t, the rest (and zeros) sit at lo.
    ceiling = 0 if hi is None else hi
    capped = freed = mid_sum = 0
    solved = False
    while freed < m or (hi is not None and capped < m):
        take_free = freed < m and (
            hi is None or lo * scores[order[capped]] <= hi * scores[order[freed]]
        )
        bound, score = (lo, scores[order[freed]]) if take_free else (ceiling, scores[order[capped]])
        base = (n - freed) * lo + capped * ceiling
        if base * score + bound * mid_sum >= budget * score:
            solved = True  # the sum reaches the budget before this breakpoint
            break
        if take_free:
            mid_sum += score
            freed += 1
        else:
            mid_sum -= score
            capped += 1
    if not solved and (hi is not None or mid_sum == 0):
        return _positives_full(budget, scores, order, shares, lo, hi)
    for i in order[:capped]:
        shares[i] = ceiling
    numerator = budget - (n - freed) * lo - capped * ceiling
    middle = order[capped:freed]
    remainders: list[tuple[int, int]] = []
    for i in middle:
        q, r = divmod(scores[i] * numerator, mid_sum)
        shares[i] = q
        remainders.append((-r, i))
    leftover = numerator - sum(shares[i] for i in middle)
    remainders.sort()
    for _, i in remainders[:leftover]:
        shares[i] += 1
    return shares


def _positives_full(
    budget: int, scores: Sequence[int], order: list[int], shares: list[int], lo: int, hi: int | None
) -> list[int]:
    """Every positive score is at ``hi`` (or there is none): zero scores share what is left."""
    for i in order:
        shares[i] = lo if hi is None else hi
    zeros = [i for i in range(len(scores)) if scores[i] == 0]
    rest = budget - sum(shares[i] for i in order)
    for i, share in zip(zeros, bounded_proportional(rest, [1] * len(zeros), lo, hi), strict=True):
        shares[i] = share
    return shares
