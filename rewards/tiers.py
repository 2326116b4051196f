"""Distributor tiers (分销员等级): rates by the earner's tier, promotion by conditions.

A program may list tiers, lowest first. Each has per-level rates in basis points and, above the
first, conditions for promotion. The rate paid at upline level k is the rate at level k of the
tier of the distributor who earns it. Promotion moves a distributor up to the highest tier whose
conditions all hold; it never moves anyone down (only an operator does that).

Rules that keep every combination within the caps: every tier has the program's number of
levels, each tier passes :func:`rewards.commission.validate_commission_rates`, and a higher tier
pays at least as much as a lower one at every level. So the top tier bounds any mix of tiers
in one upline, and a promotion never lowers a rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rewards.commission import validate_commission_rates
from rewards.errors import RewardConfigError

__all__ = [
    "Conditions",
    "Metrics",
    "TierRule",
    "qualifying_level",
    "rates_for",
    "validate_tiers",
    "windows_above",
]


@dataclass(frozen=True, slots=True)
class Conditions:
    """What promotion into a tier needs; every condition given must hold (None: not needed).

    ``team_size_l1``: users bound directly to the distributor now; ``team_sales_fen``: orders
    credited to the distributor at any level, net of refunds, paid within ``team_sales_days``
    (None: ever); ``own_sales_fen``: the distributor's own paid orders, net of refunds.
    """

    team_size_l1: int | None = None
    team_sales_fen: int | None = None
    team_sales_days: int | None = None
    own_sales_fen: int | None = None

    def empty(self) -> bool:
        return (
            self.team_size_l1 is None
            and self.team_sales_fen is None
            and (self.own_sales_fen is None)
        )


@dataclass(frozen=True, slots=True)
class TierRule:
    name: str
    commission_bps: tuple[int, ...]
    promote_when: Conditions | None = None


@dataclass(frozen=True, slots=True)
class Metrics:
    """A distributor's figures for the conditions (fen and counts)."""

    team_size_l1: int = 0
    team_sales_fen: int = 0
    own_sales_fen: int = 0


def validate_tiers(depth: int, tiers: Sequence[TierRule]) -> None:
    """Refuse tiers that break the caps; raise ``RewardConfigError`` naming ``tiers[i]...``."""
    seen: set[str] = set()
    for i, tier in enumerate(tiers):
        field = f"tiers[{i}].commission_bps"
        if tier.name in seen:
            raise RewardConfigError(
                f"tiers[{i}].name", f"{tier.name!r} is used twice; names differ"
            )
        seen.add(tier.name)
        if len(tier.commission_bps) != depth:
            raise RewardConfigError(
                field,
                f"has {len(tier.commission_bps)} levels; every tier has the program's "
                f"{depth} (commission_bps)",
            )
        try:
            validate_commission_rates(tier.commission_bps)
        except RewardConfigError as exc:
            raise RewardConfigError(field, exc.message) from None
        if i > 0:
            lower = tiers[i - 1].commission_bps
            for level, (below, rate) in enumerate(zip(lower, tier.commission_bps, strict=True), 1):
                if rate < below:
                    raise RewardConfigError(
                        field,
                        f"level {level} pays {rate} bp, less than the tier below "
                        f"({tiers[i - 1].name!r}, {below} bp); a promotion may never lower a rate",
                    )
            if tier.promote_when is not None:
                days = tier.promote_when.team_sales_days
                if days is not None and tier.promote_when.team_sales_fen is None:
                    raise RewardConfigError(
                        f"tiers[{i}].promote_when.team_sales_days",
                        "is the window of team_sales_fen; give team_sales_fen too",
                    )


def rates_for(base: Sequence[int], tiers: Sequence[TierRule], levels: Sequence[int]) -> list[int]:
    """The rate at each upline level: ``levels[k]`` is the tier index of the level-(k+1) earner
    (clamped to the list, so a shortened tier list never fails); no tiers: ``base``."""
    if not tiers:
        return list(base[: len(levels)])
    top = len(tiers) - 1
    return [tiers[min(max(t, 0), top)].commission_bps[k] for k, t in enumerate(levels)]


def _holds(c: Conditions, m: Metrics) -> bool:
    return (
        (c.team_size_l1 is None or m.team_size_l1 >= c.team_size_l1)
        and (c.team_sales_fen is None or m.team_sales_fen >= c.team_sales_fen)
        and (c.own_sales_fen is None or m.own_sales_fen >= c.own_sales_fen)
    )


def windows_above(tiers: Sequence[TierRule], current: int) -> set[int | None]:
    """The team-sales windows (days; None: ever) the tiers above ``current`` look at."""
    return {
        r.promote_when.team_sales_days
        for r in tiers[current + 1 :]
        if r.promote_when is not None and not r.promote_when.empty()
    }


def qualifying_level(
    tiers: Sequence[TierRule], current: int, metrics: Mapping[int | None, Metrics]
) -> int:
    """The tier a distributor at ``current`` moves to: the highest whose conditions all hold,
    never below ``current``. ``metrics`` holds the distributor's figures per team-sales window
    (:func:`windows_above`). A tier without conditions is reached only by an operator."""
    for i in range(len(tiers) - 1, current, -1):
        rule = tiers[i].promote_when
        if rule is None or rule.empty():
            continue
        figures = metrics.get(rule.team_sales_days)
        if figures is not None and _holds(rule, figures):
            return i
    return current
