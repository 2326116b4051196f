"""Commission (佣金): per-level split of a paid order and pro-rata reversal on refunds.

Units: amounts in integer fen, rates in basis points (1 bp = 0.01 %, 10000 bp = 100 %).
Rounding always floors; the leftover fen stay with the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.errors import RefundExceedsOrderError, RewardConfigError
from rewards.money import require_fen

__all__ = [
    "BPS_DENOMINATOR",
    "MAX_LEVELS",
    "cumulative_reversal",
    "split_commission",
    "validate_commission_rates",
]

MAX_LEVELS = 3
"""Deepest upline that may earn commission; deeper schemes are refused (see below)."""

BPS_DENOMINATOR = 10_000

_TOO_DEEP = (
    "at most {max} commission levels are allowed, got {n}. Commission paid on the sales of a "
    "downline team 3 or more levels deep (团队计酬) is treated as pyramid selling (传销) under "
    "Chinese law, and WeChat bans accounts that run it; use 1 to {max} levels (2 is the default)."
)


def validate_commission_rates(rates_bps: Sequence[int]) -> None:
    """Check a program's per-level commission rates; raise ``RewardConfigError`` if refused.

    ``rates_bps[0]`` is the direct inviter's rate, ``rates_bps[1]`` the inviter's inviter's, and
    so on. Valid: 1 to ``MAX_LEVELS`` levels, each an int in 0..10000 bp, summing to <= 10000 bp.
    Every refusal names ``field="commission_bps"`` and says how to fix it.
    """
    field = "commission_bps"
    n = len(rates_bps)
    if n == 0:
        raise RewardConfigError(field, "give at least one level rate in basis points, e.g. [1000]")
    if n > MAX_LEVELS:
        raise RewardConfigError(field, _TOO_DEEP.format(max=MAX_LEVELS, n=n))
    for level, rate in enumerate(rates_bps, start=1):
        if isinstance(rate, bool) or not isinstance(rate, int):
            raise RewardConfigError(field, f"level {level} rate must be an integer number of bp")
        if not 0 <= rate <= BPS_DENOMINATOR:
            raise RewardConfigError(
                field, f"level {level} rate is {rate} bp; each rate must be 0..10000 bp (0-100 %)"
            )
    total = sum(rates_bps)
    if total > BPS_DENOMINATOR:
        raise RewardConfigError(
            field,
            f"the level rates add up to {total} bp; their sum may not exceed 10000 bp (100 %) "
            "of the order amount",
        )


def split_commission(amount_fen: int, rates_bps: Sequence[int]) -> list[int]:
    """Commission per upline level for a paid order of ``amount_fen`` fen.

    Returns ``[floor(amount_fen * rate / 10000) for rate in rates_bps]`` in fen, level 1 first.
    The sum never exceeds ``amount_fen``. Raises ``RewardConfigError`` for invalid rates and
    ``ValueError``/``TypeError`` for a negative or non-integer amount.
    """
    require_fen("amount_fen", amount_fen)
    validate_commission_rates(rates_bps)
    return [amount_fen * rate // BPS_DENOMINATOR for rate in rates_bps]


def cumulative_reversal(
    commission_fen: int, order_amount_fen: int, refunded_before_fen: int, refund_fen: int
) -> int:
    """Fen of ``commission_fen`` to reverse now, for a refund of ``refund_fen`` on the order.

    Reversals are cumulative: after refunds totalling ``R`` the total reversed is
    ``floor(commission * R / amount)``, so this returns
    ``floor(c * (R + r) / A) - floor(c * R / A)`` (>= 0). Summed over any sequence of partial
    refunds it never exceeds the commission, and once the whole order is refunded it equals the
    commission to the fen. Raises ``RefundExceedsOrderError`` (a ``ValueError``) if ``R + r > A``.
    """
    require_fen("commission_fen", commission_fen)
    require_fen("order_amount_fen", order_amount_fen)
    require_fen("refunded_before_fen", refunded_before_fen)
    require_fen("refund_fen", refund_fen)
    refunded_after = refunded_before_fen + refund_fen
    if refunded_after > order_amount_fen:
        raise RefundExceedsOrderError(order_amount_fen, refunded_after)
    if order_amount_fen == 0:
        return 0
    before = commission_fen * refunded_before_fen // order_amount_fen
    after = commission_fen * refunded_after // order_amount_fen
    return after - before
