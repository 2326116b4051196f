"""Errors raised by the reward rules.

Hierarchy::

    RewardError                      base of everything raised on purpose here
    ├── RewardConfigError            a configuration is refused; names the field and the fix
    │                                (also a ValueError; the server answers 422 naming `field`)
    └── RefundExceedsOrderError      refunds would add up to more than the order (also a ValueError)

Plain ``ValueError``/``TypeError`` is still raised for programming mistakes such as negative
amounts passed by the caller, because no end user can fix those.
"""

from __future__ import annotations

__all__ = ["RefundExceedsOrderError", "RewardConfigError", "RewardError"]


class RewardError(Exception):
    """Base class of the errors the reward rules raise on purpose."""


class RewardConfigError(RewardError, ValueError):
    """A reward configuration is impossible or forbidden.

    ``field`` is the name of the offending setting as the API spells it (for example
    ``"commission_bps"``, ``"max_fen"``, ``"prizes[2].rank_to"``); ``message`` says what is wrong
    and how to fix it, in words an operator can act on.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RefundExceedsOrderError(RewardError, ValueError):
    """The refunds of an order would add up to more than the amount paid."""

    def __init__(self, order_amount_fen: int, refunded_fen: int) -> None:
        super().__init__(
            f"refunds would total {refunded_fen} fen, more than the order's {order_amount_fen} fen"
        )
        self.order_amount_fen = order_amount_fen
        self.refunded_fen = refunded_fen
