"""Seeded double-mean (二倍均值) draws, in integer fen. Private: use ``rewards.red_packets``.

The double-mean method is applied to the *excess* above the per-packet floor: every packet first
gets ``min_fen``, then the excess ``E`` left over ``n`` packets is drawn uniformly from
``[0, 2E/n]``; when ``max_fen`` would cut that range, it shrinks symmetrically around ``E/n``
instead. Either way each draw's expectation is exactly ``remaining / n``, so every position has
the same mean, ``budget / count``; the textbook ``[min, 2 * remaining / n]`` would bias early
packets up by ``min / 2`` and a cut range would bias them down, piling the difference on the last
packets. ``E/n`` is usually fractional, so the draw is taken on the grid of ``1/n`` and randomly
rounded, which keeps the mean exact in integers. The bounds then hold by construction (a final
clamp only guards the caller's inputs).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

__all__ = ["derive_seed", "double_mean_excess", "new_rng", "split_excess"]


def new_rng(seed: int) -> random.Random:
    """A generator for reproducible reward draws.

    Not for secrets: red packets need replayable draws from a stored seed, not unpredictability.
    """
    return random.Random(seed)  # noqa: S311 - reproducibility is the requirement


def derive_seed(seed: int, index: int) -> int:
    """A 64-bit seed for draw ``index`` of a campaign seeded with ``seed``.

    Hashing (seed, index) lets any single per-invite draw be replayed on its own.
    """
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def double_mean_excess(
    randrange: Callable[[int], int], excess: int, left: int, span: int | None
) -> int:
    """Excess above the floor for the next of ``left`` packets sharing ``excess`` fen.

    ``span`` is ``max_fen - min_fen`` (``None``: no ceiling); if ``excess > left * span``
    (only an inconsistent caller gets there) the packet is simply ``span``. The draw is
    uniform on ``[m - w, m + w]`` where ``m = excess/left`` and ``w = min(m, span - m)``: the
    textbook ``[0, 2m]`` unless the ceiling binds, in which case the interval shrinks around
    ``m`` instead of being cut, so the expectation stays ``m``. Any such draw leaves the rest
    payable within bounds, so no later packet is forced to an extreme. The last packet
    (``left <= 1``) takes all the excess.
    """
    if left <= 1 or (span is not None and excess > left * span):
        return excess if span is None else min(excess, span)
    width = excess if span is None else min(excess, left * span - excess)  # w, in 1/left units
    # s uniform on (excess - width)..(excess + width) in 1/left units; round s/left up with
    # probability (s % left) / left so the mean stays exact in integers.
    s, v = divmod(randrange((2 * width + 1) * left), left)
    drawn = (excess - width + s + v) // left
    if span is None:
        return min(drawn, excess)
    return min(max(drawn, excess - (left - 1) * span), span, excess)


def split_excess(rng: random.Random, excess: int, n: int, span: int | None) -> list[int]:
    """Draw ``n`` excesses summing to ``excess`` exactly (feasibility checked by the caller).

    The hot loop of a pool split: one generator for the whole split, no per-draw hashing.
    """
    randrange = rng.randrange
    out: list[int] = []
    append = out.append
    # double_mean_excess inlined (a call per packet costs a third of the time); its final clamp
    # is dropped because the draw interval already keeps the rest payable.
    if span is None:
        for left in range(n, 1, -1):
            s, v = divmod(randrange((2 * excess + 1) * left), left)
            x = (s + v) // left
            append(x)
            excess -= x
    else:
        for left in range(n, 1, -1):
            width = min(excess, left * span - excess)
            s, v = divmod(randrange((2 * width + 1) * left), left)
            x = (excess - width + s + v) // left
            append(x)
            excess -= x
    append(excess)
    return out
