"""Red-packet configuration, its validation and the planned packet count.

Units: integer fen. ``validate_red_packet_config`` refuses, before any money moves, every
configuration whose promises (sum equals budget, each packet within ``[min_fen, max_fen]``)
cannot be kept, raising ``RewardConfigError(field, message)``.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from rewards.errors import RewardConfigError

__all__ = [
    "PER_INVITE_MODES",
    "POOL_MODES",
    "RedPacketConfig",
    "RedPacketMode",
    "planned_count",
    "validate_red_packet_config",
]

RedPacketMode = Literal[
    "fixed_per_invite", "random_per_invite", "pool_split_random", "pool_split_proportional"
]
PER_INVITE_MODES: frozenset[str] = frozenset({"fixed_per_invite", "random_per_invite"})
POOL_MODES: frozenset[str] = frozenset({"pool_split_random", "pool_split_proportional"})
_MAX_SEED = 2**63  # seeds are stored in a signed 64-bit column


class RedPacketConfig(msgspec.Struct, forbid_unknown_fields=True):
    """How a campaign pays red packets. Amounts in fen.

    - ``fixed_per_invite``: ``amount_fen`` per invite until ``budget_fen`` (or ``count``
      packets) is used up; a final remainder of at least ``min_fen`` is paid as a smaller packet.
    - ``random_per_invite``: 拼手气 per invite over ``count`` planned packets (default
      ``budget_fen`` / mean(min_fen, max_fen)).
    - ``pool_split_random`` / ``pool_split_proportional``: ``budget_fen`` split at campaign close
      among the qualifiers, at random or in proportion to score; ``count`` (optional) caps how
      many of the top qualifiers share it.

    ``seed`` makes random draws reproducible; the server stores one when the campaign is created.
    """

    mode: RedPacketMode
    budget_fen: int
    amount_fen: int | None = None
    min_fen: int = 1
    max_fen: int | None = None
    count: int | None = None
    seed: int | None = None


def _require_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RewardConfigError(field, "must be a whole number (fen and counts are integers)")
    if value < minimum:
        raise RewardConfigError(field, f"must be at least {minimum}, got {value}")
    return value


def validate_red_packet_config(cfg: RedPacketConfig) -> None:
    """Raise ``RewardConfigError`` naming the field if ``cfg`` cannot be honoured.

    Checks: known mode; budget >= 1 fen; 1 <= min_fen <= max_fen; budget can pay one packet;
    ``amount_fen`` given for (and only for) fixed packets, within ``[min_fen, max_fen]``; a
    random per-invite plan has ``max_fen`` or ``count``; ``count * min_fen <= budget_fen`` (and
    ``count * amount_fen`` for fixed); ``count * max_fen >= budget_fen`` for random and pool
    modes; some packet count fits the bounds at all; seed in 0..2**63-1.
    """
    if cfg.mode not in get_args(RedPacketMode):
        raise RewardConfigError(
            "mode", f"unknown mode {cfg.mode!r}; use one of " + ", ".join(get_args(RedPacketMode))
        )
    budget = _require_int("budget_fen", cfg.budget_fen, 1)
    low = _require_int("min_fen", cfg.min_fen, 1)
    high = None if cfg.max_fen is None else _require_int("max_fen", cfg.max_fen, low)
    if budget < low:
        raise RewardConfigError(
            "budget_fen", f"a budget of {budget} fen cannot pay one packet of min_fen {low} fen"
        )
    count = None if cfg.count is None else _require_int("count", cfg.count, 1)
    if cfg.seed is not None and not 0 <= _require_int("seed", cfg.seed, 0) < _MAX_SEED:
        raise RewardConfigError("seed", "must be below 2**63 (it is stored as a 64-bit integer)")
    if cfg.mode == "fixed_per_invite":
        _validate_fixed(cfg, budget, low, high, count)
        return
    if cfg.amount_fen is not None:
        raise RewardConfigError(
            "amount_fen", f"only fixed_per_invite uses amount_fen; remove it for {cfg.mode}"
        )
    if high is not None and -(-budget // high) > budget // low:
        raise RewardConfigError(
            "budget_fen",
            f"no number of packets between {low} and {high} fen adds up to {budget} fen; "
            "widen [min_fen, max_fen] or change the budget",
        )
    if cfg.mode == "random_per_invite" and count is None and high is None:
        raise RewardConfigError(
            "count", "random_per_invite needs count or max_fen to plan how many packets to draw"
        )
    if count is not None:
        if count * low > budget:
            raise RewardConfigError(
                "count",
                f"{count} packets of at least {low} fen need {count * low} fen, more "
                f"than the budget of {budget} fen; lower count or min_fen",
            )
        if high is not None and count * high < budget:
            raise RewardConfigError(
                "count",
                f"{count} packets of at most {high} fen cannot spend the budget of "
                f"{budget} fen; raise count or max_fen",
            )


def _validate_fixed(
    cfg: RedPacketConfig, budget: int, low: int, high: int | None, count: int | None
) -> None:
    if cfg.amount_fen is None:
        raise RewardConfigError("amount_fen", "fixed_per_invite needs amount_fen, in fen")
    amount = _require_int("amount_fen", cfg.amount_fen, low)
    if high is not None and amount > high:
        raise RewardConfigError("amount_fen", f"{amount} fen is above max_fen {high} fen")
    if amount > budget:
        raise RewardConfigError(
            "amount_fen", f"{amount} fen is more than the whole budget of {budget} fen"
        )
    if count is not None and count * amount > budget:
        raise RewardConfigError(
            "count",
            f"{count} packets of {amount} fen need {count * amount} fen, more than the "
            f"budget of {budget} fen; lower count or leave it empty",
        )


def planned_count(cfg: RedPacketConfig) -> int:
    """How many packets the budget is planned for (validates ``cfg`` first).

    An explicit ``count`` wins. Otherwise: fixed, ``budget // amount`` plus one for a remainder
    of at least ``min_fen``; random per invite, ``budget`` / mean(min, max) rounded down, moved
    into the range of counts that can spend the budget within bounds, at least 1; pool modes,
    the most packets the budget can floor (``budget // min_fen``), an upper bound on sharers.
    """
    validate_red_packet_config(cfg)
    if cfg.count is not None:
        return cfg.count
    budget, low = cfg.budget_fen, cfg.min_fen
    if cfg.mode == "fixed_per_invite":
        amount = cfg.amount_fen if cfg.amount_fen is not None else low
        whole, rest = divmod(budget, amount)
        return whole + (1 if rest >= low else 0)
    if cfg.mode in POOL_MODES or cfg.max_fen is None:
        return budget // low
    high = cfg.max_fen
    by_mean = 2 * budget // (low + high)
    return max(1, -(-budget // high), min(by_mean, budget // low))
