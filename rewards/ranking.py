"""Leaderboard order: score descending, then earliest time reached, then distributor id.

Times are epoch microseconds (UTC); scores are integers in the metric's unit (invites, orders,
or fen for ``gmv``/``commission``). Ranks are dense positions 1..n with no shared ranks, so a
prize table by rank range always has a single winner per rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

__all__ = ["Ranked", "Standing", "neighbours", "rank_standings", "sort_key"]


class Standing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A distributor's score on one board; ``reached_at_us``: epoch µs when it was reached."""

    distributor_id: str
    score: int
    reached_at_us: int


class Ranked(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A standing with its 1-based rank on the board."""

    rank: int
    distributor_id: str
    score: int
    reached_at_us: int


def sort_key(s: Standing | Ranked) -> tuple[int, int, str]:
    """Key that sorts the best standing first: ``(-score, reached_at_us, distributor_id)``."""
    return (-s.score, s.reached_at_us, s.distributor_id)


def rank_standings(standings: Iterable[Standing]) -> list[Ranked]:
    """Rank ``standings`` 1..n in ``sort_key`` order.

    Raises ``ValueError`` if a distributor appears twice (a board holds one standing each).
    Excluding held or frozen distributors is the caller's job, before ranking.
    """
    ordered = sorted(standings, key=sort_key)
    seen: set[str] = set()
    ranked: list[Ranked] = []
    for rank, s in enumerate(ordered, start=1):
        if s.distributor_id in seen:
            raise ValueError(f"distributor {s.distributor_id!r} has more than one standing")
        seen.add(s.distributor_id)
        ranked.append(Ranked(rank, s.distributor_id, s.score, s.reached_at_us))
    return ranked


def neighbours(
    ranked: Sequence[Ranked], distributor_id: str, above: int = 2, below: int = 2
) -> list[Ranked]:
    """The distributor's own ranked row with up to ``above``/``below`` rows around it.

    ``ranked`` must be in rank order (as ``rank_standings`` returns it). Returns ``[]`` when the
    distributor is not on the board.
    """
    if above < 0 or below < 0:
        raise ValueError("above and below must be >= 0")
    for i, row in enumerate(ranked):
        if row.distributor_id == distributor_id:
            return list(ranked[max(0, i - above) : i + below + 1])
    return []
