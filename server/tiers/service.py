"""Tiers in the server: the program's tiers as rules, the rates of an upline, promotion.

Promotion is evaluated only for the distributors an event can move: the inviter of a new
binding (team size), the credited upline and the buyer of an order (team and own sales). A
refund only lowers those figures and demotion is an operator's, so a refund evaluates nothing.
It runs after the event's own write; a crash in between leaves the promotion to the
distributor's next event. Nothing ever scans every distributor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rewards.tiers import (
    Conditions,
    Metrics,
    TierRule,
    qualifying_level,
    rates_for,
    windows_above,
)
from server.common import now_us
from server.db import Connection
from server.errors import InvalidInput
from server.program.schemas import Program, ProgramIn
from server.queries import DAY_US, binding_active

__all__ = [
    "METRICS_SQL",
    "metrics_sql",
    "promote",
    "record_sales",
    "set_tier",
    "tier_name",
    "tier_rules",
    "upline_rates",
    "wants_promotion",
]

_rules: dict[int, tuple[ProgramIn, tuple[TierRule, ...]]] = {}


def tier_rules(program: ProgramIn) -> tuple[TierRule, ...]:
    """The program's tiers as :class:`rewards.tiers.TierRule` (cached per program object)."""
    hit = _rules.get(id(program))
    if hit is not None and hit[0] is program:
        return hit[1]
    rules = tuple(
        TierRule(
            name=t.name,
            commission_bps=tuple(t.commission_bps),
            promote_when=None
            if t.promote_when is None
            else Conditions(
                team_size_l1=t.promote_when.team_size_l1,
                team_sales_fen=t.promote_when.team_sales_fen,
                team_sales_days=t.promote_when.team_sales_days,
                own_sales_fen=t.promote_when.own_sales_fen,
            ),
        )
        for t in program.tiers
    )
    if len(_rules) > 1000:
        _rules.clear()
    _rules[id(program)] = (program, rules)
    return rules


def upline_rates(program: Program, levels: Sequence[int]) -> list[int]:
    """The rate at each upline level, from each earner's tier index (``levels``)."""
    return rates_for(program.commission_bps, tier_rules(program), levels)


def tier_name(program: Program, level: int) -> str | None:
    rules = tier_rules(program)
    return rules[min(max(level, 0), len(rules) - 1)].name if rules else None


def wants_promotion(program: Program) -> bool:
    """Whether any tier can be reached by promotion (else nothing is evaluated)."""
    return any(
        r.promote_when is not None and not r.promote_when.empty() for r in tier_rules(program)
    )


# A distributor's tier and figures: $1 tenant, $2 distributor, $3 now; team sales once per
# window the program's conditions use ($4, $5 ...: the first day counted). Sales come from
# tier_sales (one row a day), never from every order.
_METRICS = f"""
SELECT d.tier_level,
  (SELECT COUNT(*) FROM user_bindings b WHERE b.tenant_id = $1 AND b.inviter_id = $2
     AND {binding_active("b", "$3")}) AS team_size_l1,
  {{team}}
  (SELECT COALESCE(SUM(s.own_fen), 0) FROM tier_sales s
   WHERE s.tenant_id = $1 AND s.distributor_id = $2) AS own_sales_fen
FROM distributors d WHERE d.tenant_id = $1 AND d.distributor_id = $2
"""
_TEAM = (
    "(SELECT COALESCE(SUM(s.team_fen), 0) FROM tier_sales s WHERE s.tenant_id = $1"
    " AND s.distributor_id = $2 AND s.day >= ${n}) AS team_{i},"
)


def metrics_sql(windows: int) -> str:
    """The figures query with ``windows`` team-sales columns (team_0 ...)."""
    return _METRICS.format(team=" ".join(_TEAM.format(n=4 + i, i=i) for i in range(windows)))


METRICS_SQL = metrics_sql(1)
_ADD_SALES = (
    "INSERT INTO tier_sales (tenant_id, distributor_id, day, team_fen, own_fen)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, distributor_id, day) DO UPDATE"
    " SET team_fen = tier_sales.team_fen + excluded.team_fen,"
    " own_fen = tier_sales.own_fen + excluded.own_fen"
)


async def record_sales(
    db: Connection,
    tenant_id: str,
    program: Program,
    buyer: str,
    credited: Iterable[str],
    amount_fen: int,
    paid_at_us: int,
) -> None:
    """Count an order (``amount_fen`` > 0) or a refund (< 0) in the figures of the distributors
    it credited (team sales) and of its buyer (own sales), on the day it was paid. Only while
    the program has promotion conditions; sales before that are not counted."""
    if not wants_promotion(program):
        return
    day = paid_at_us // DAY_US
    rows = {d: (tenant_id, d, day, amount_fen, 0) for d in dict.fromkeys(credited)}
    own = rows.get(buyer)
    rows[buyer] = (tenant_id, buyer, day, own[3] if own else 0, amount_fen)
    # Sorted, so that concurrent orders take the row locks in one order.
    await db.executemany(_ADD_SALES, [rows[k] for k in sorted(rows)])


async def promote(
    db: Connection, tenant_id: str, program: Program, distributor_ids: Iterable[str]
) -> dict[str, int]:
    """Promote each of ``distributor_ids`` whose figures meet a higher tier's conditions;
    returns {distributor_id: new tier index} of those promoted."""
    rules = tier_rules(program)
    if not wants_promotion(program):
        return {}
    now = now_us()
    promoted: dict[str, int] = {}
    windows = sorted(windows_above(rules, 0), key=lambda d: -1 if d is None else d)
    sql = metrics_sql(len(windows))
    since = [-(2**31) if d is None else (now - d * DAY_US) // DAY_US for d in windows]
    for distributor_id in dict.fromkeys(distributor_ids):
        # One round trip per candidate: their tier and every figure the conditions use.
        row: Any = await db.fetchrow(sql, tenant_id, distributor_id, now, *since)
        if row is None or int(row["tier_level"]) >= len(rules) - 1:
            continue
        current = int(row["tier_level"])
        metrics = {
            days: Metrics(
                team_size_l1=int(row["team_size_l1"]),
                team_sales_fen=int(row[f"team_{i}"]),
                own_sales_fen=int(row["own_sales_fen"]),
            )
            for i, days in enumerate(windows)
        }
        target = qualifying_level(rules, current, metrics)
        if target > current:
            # Monotonic: a concurrent promotion to a higher tier is never undone.
            await db.execute(
                "UPDATE distributors SET tier_level = $3, updated_at_us = $4"
                " WHERE tenant_id = $1 AND distributor_id = $2 AND tier_level < $3",
                tenant_id,
                distributor_id,
                target,
                now,
            )
            promoted[distributor_id] = target
    return promoted


async def set_tier(tx: Connection, tenant_id: str, program: Program, distributor_id: str,
                   name: str) -> None:  # fmt: skip
    """An operator sets a distributor's tier by name, up or down (the only way down)."""
    names = [r.name for r in tier_rules(program)]
    if name not in names:
        known = ", ".join(names) or "none: the program has no tiers"
        raise InvalidInput("name", f"{name!r} is not a tier of the program (tiers: {known})")
    await tx.execute(
        "UPDATE distributors SET tier_level = $3, updated_at_us = $4"
        " WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        distributor_id,
        names.index(name),
        now_us(),
    )
