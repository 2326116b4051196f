"""Red packets (红包): fixed or random (拼手气) per invite, or a pool split (瓜分) at close.

Units: every amount is integer fen. Every split sums to its budget exactly, keeps each packet in
``[min_fen, max_fen]`` and is reproducible from its seed (see ``rewards._draw`` for the method).
Configurations that cannot meet those promises are refused up front by
``validate_red_packet_config`` with the offending field and a fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards._draw import derive_seed, double_mean_excess, new_rng, split_excess
from rewards._proportional import bounded_proportional
from rewards.errors import RewardConfigError
from rewards.money import require_fen
from rewards.red_packet_config import (
    PER_INVITE_MODES,
    POOL_MODES,
    RedPacketConfig,
    RedPacketMode,
    planned_count,
    validate_red_packet_config,
)

__all__ = [
    "PER_INVITE_MODES",
    "POOL_MODES",
    "RedPacketConfig",
    "RedPacketMode",
    "budget_exhausted",
    "draw_per_invite",
    "planned_count",
    "split_pool_proportional",
    "split_pool_random",
    "validate_red_packet_config",
]


def budget_exhausted(cfg: RedPacketConfig, remaining_fen: int, remaining_count: int) -> bool:
    """True when no further per-invite packet can be paid: the plan is used up or less than
    ``min_fen`` fen remains. Exactly the cases where ``draw_per_invite`` returns 0."""
    return remaining_count <= 0 or remaining_fen < cfg.min_fen


def draw_per_invite(
    cfg: RedPacketConfig, seed: int, index: int, remaining_fen: int, remaining_count: int
) -> int:
    """Fen for the next per-invite packet, or 0 when the budget is exhausted.

    ``index`` is the packet's 0-based position in the campaign, ``remaining_fen`` the budget not
    yet paid and ``remaining_count`` the planned packets not yet drawn (``planned_count(cfg)``
    minus the packets drawn so far). The caller must read and update both atomically. The draw
    depends only on its arguments: the generator is seeded from ``(seed, index)``.

    ``fixed_per_invite`` pays ``amount_fen``, or the remainder if it is below that but at least
    ``min_fen``. ``random_per_invite`` draws by the double-mean method over the remaining count
    (each draw's expectation is ``remaining_fen / remaining_count``, and the rest always stays
    payable within bounds); the last planned packet takes what remains, up to ``max_fen``.
    Raises ``RewardConfigError`` for an invalid or pool-mode ``cfg``. Returns 0 (exhausted: stop
    offering packets) when ``remaining_count <= 0`` or less than ``min_fen`` remains.
    """
    validate_red_packet_config(cfg)
    if cfg.mode not in PER_INVITE_MODES:
        raise RewardConfigError("mode", f"{cfg.mode} is split at campaign close, not per invite")
    require_fen("remaining_fen", remaining_fen)
    if budget_exhausted(cfg, remaining_fen, remaining_count):
        return 0
    if cfg.mode == "fixed_per_invite":
        return min(_fixed_amount(cfg), remaining_fen)
    # Never plan more packets than the remainder can floor, whatever the caller's count says.
    left = min(remaining_count, remaining_fen // cfg.min_fen)
    span = None if cfg.max_fen is None else cfg.max_fen - cfg.min_fen
    excess = remaining_fen - left * cfg.min_fen
    randrange = new_rng(derive_seed(seed, index)).randrange
    return cfg.min_fen + double_mean_excess(randrange, excess, left, span)


def split_pool_random(
    budget_fen: int, n: int, min_fen: int, max_fen: int | None, seed: int
) -> list[int]:
    """Split ``budget_fen`` into ``n`` random packets (拼手气 瓜分) by the double-mean method.

    The packets sum to ``budget_fen`` exactly, each is within ``[min_fen, max_fen]`` (``None``: no
    ceiling), each position's expected value is ``budget_fen / n`` when the ceiling does not bind,
    and the same arguments always give the same list. Raises ``RewardConfigError`` when no such
    split exists.
    """
    _check_pool(budget_fen, n, min_fen, max_fen)
    span = None if max_fen is None else max_fen - min_fen
    excess = split_excess(new_rng(seed), budget_fen - n * min_fen, n, span)
    return [min_fen + x for x in excess]


def split_pool_proportional(
    budget_fen: int, scores: Sequence[int], min_fen: int, max_fen: int | None
) -> list[int]:
    """Split ``budget_fen`` in proportion to integer ``scores``, position by position.

    Shares sum to ``budget_fen`` exactly and lie in ``[min_fen, max_fen]``; where a bound binds,
    the difference is redistributed over the others in proportion. Fractions of a fen go by
    largest remainder, ties to the earlier position, so the result is deterministic and a higher
    score never gets less. Raises ``RewardConfigError`` when no such split exists and
    ``ValueError`` for a negative score.
    """
    n = len(scores)
    _check_pool(budget_fen, n, min_fen, max_fen)
    for score in scores:
        require_fen("score", score)
    return bounded_proportional(budget_fen, scores, min_fen, max_fen)


def _fixed_amount(cfg: RedPacketConfig) -> int:
    if cfg.amount_fen is None:  # validate_red_packet_config refuses this; keeps mypy honest
        raise RewardConfigError("amount_fen", "fixed_per_invite needs amount_fen")
    return cfg.amount_fen


def _check_pool(budget_fen: int, n: int, min_fen: int, max_fen: int | None) -> None:
    require_fen("budget_fen", budget_fen)
    require_fen("min_fen", min_fen, minimum=1)
    if n < 1:
        raise RewardConfigError("count", "a pool split needs at least one packet")
    if max_fen is not None and max_fen < min_fen:
        raise RewardConfigError("max_fen", f"max_fen {max_fen} is below min_fen {min_fen}")
    if n * min_fen > budget_fen:
        raise RewardConfigError(
            "min_fen",
            f"{n} packets of at least {min_fen} fen need {n * min_fen} fen, more than the "
            f"budget of {budget_fen} fen; lower min_fen or raise the budget",
        )
    if max_fen is not None and n * max_fen < budget_fen:
        raise RewardConfigError(
            "max_fen",
            f"{n} packets of at most {max_fen} fen cannot spend the budget of {budget_fen} fen; "
            "raise max_fen or lower the budget",
        )
