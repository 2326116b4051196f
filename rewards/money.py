"""Money formatting. All amounts in this package are integer fen (分, 1/100 yuan)."""

from __future__ import annotations

__all__ = ["fen_to_yuan_str", "require_fen"]


def require_fen(name: str, value: object, *, minimum: int | None = 0) -> int:
    """Return ``value`` if it is an int fen amount (not a bool) at least ``minimum``.

    ``minimum=None`` allows any integer (reversals are negative). Raises ``TypeError`` for a
    non-integer (floats never enter money math) and ``ValueError`` below the minimum.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int number of fen, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum} fen, got {value}")
    return value


def fen_to_yuan_str(fen: int) -> str:
    """Format integer fen as yuan with exactly two decimals: 12345 -> "123.45", -5 -> "-0.05".

    Exact (integer arithmetic only); no thousands separators, no currency sign.
    """
    require_fen("fen", fen, minimum=None)
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"
