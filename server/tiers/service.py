"""Tiers in the server: the program's tiers as rules, the rates of an upline, promotion.

Promotion is evaluated only for the distributors an event can move: the inviter of a new
binding (team size), the credited upline and the buyer of an order (team and own sales). A
refund only lowers those figures and demotion is an operator's, so a refund evaluates nothing.
An event is evaluated only if it can cross a threshold: an order only when some tier has a
sales condition, a binding only when some tier has a team-size condition; one figures
statement reads every candidate (on PostgreSQL's one-statement order, the statement itself
returns them), and a transaction is opened only when someone moves. That transaction raises
the tier and writes ``distributor.tier_changed`` to the outbox together, and raises nobody
already at or above the target, so a promotion is announced exactly once. It follows the
event's own write; a crash in between leaves the promotion to the distributor's next event.
Nothing ever scans every distributor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from rewards.tiers import (
    Conditions,
    Metrics,
    TierRule,
    qualifying_level,
    rates_for,
    windows_above,
)
from server.common import now_us
from server.db import Connection, Database
from server.errors import InvalidInput
from server.ledger.totals import with_shard
from server.program.schemas import Program, ProgramIn
from server.queries import DAY_US
from server.tiers.queries import ADD_SALES, Shape, figures_sql
from server.webhooks.outbox import enqueue_event

__all__ = [
    "Promotion",
    "apply_promotions",
    "binding_counts",
    "figures_of",
    "promote",
    "promote_after_order",
    "promote_from_figures",
    "qualifying",
    "record_sales",
    "sales_count",
    "set_tier",
    "shape_of",
    "tier_name",
    "tier_rules",
    "upline_rates",
    "wants_promotion",
    "window_starts",
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


@dataclass(frozen=True, slots=True)
class Promotion:
    """A distributor who qualifies for a higher tier (indexes into the program's tiers)."""

    distributor_id: str
    current: int
    target: int


def shape_of(program: Program) -> Shape:
    """Which figures the program's promotion conditions read (cached with the rules)."""
    conditions = [r.promote_when for r in tier_rules(program)[1:] if r.promote_when is not None]
    windows = windows_above(tier_rules(program), 0)
    return _shape(
        any(c.team_size_l1 is not None for c in conditions),
        tuple(sorted(windows, key=lambda d: -1 if d is None else d)),
        any(c.own_sales_fen is not None for c in conditions),
    )


@lru_cache(maxsize=256)
def _shape(team_size: bool, windows: tuple[int | None, ...], own: bool) -> Shape:
    return Shape(team_size, windows, own)


def sales_count(program: Program) -> bool:
    """Whether an order can lift anyone: some tier has a sales condition (then orders and
    refunds are counted in ``tier_sales``; else nothing is written or evaluated)."""
    return any(
        r.promote_when is not None
        and (r.promote_when.team_sales_fen is not None or r.promote_when.own_sales_fen is not None)
        for r in tier_rules(program)[1:]
    )


def binding_counts(program: Program) -> bool:
    """Whether a new binding can lift its inviter: some tier has a team-size condition."""
    return wants_promotion(program) and shape_of(program).team_size


def window_starts(program: Program, now: int) -> list[int]:
    """The first UTC day each team-sales window counts, in :func:`shape_of` order."""
    return [
        -(2**31) if d is None else (now - d * DAY_US) // DAY_US for d in shape_of(program).windows
    ]


def qualifying(program: Program, figures: Iterable[Sequence[Any]]) -> list[Promotion]:
    """Who moves up, from figure rows ``(id, tier_level, team_size_l1, own_sales_fen,
    team_0..)`` (the windows in :func:`shape_of` order); the rule is rewards.tiers'."""
    rules = tier_rules(program)
    windows = shape_of(program).windows
    promotions = []
    for row in figures:
        current = int(row[1])
        metrics = {
            days: Metrics(
                team_size_l1=int(row[2]),
                team_sales_fen=int(row[4 + i]),
                own_sales_fen=int(row[3]),
            )
            for i, days in enumerate(windows)
        } or {None: Metrics(team_size_l1=int(row[2]), own_sales_fen=int(row[3]))}
        target = qualifying_level(rules, current, metrics)
        if target > current:
            promotions.append(Promotion(str(row[0]), current, target))
    return promotions


async def figures_of(
    db: Connection, tenant_id: str, program: Program, distributor_ids: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The figure rows of those of ``distributor_ids`` below the top tier: one statement."""
    ids = list(dict.fromkeys(distributor_ids))
    if not ids:
        return []
    shape = shape_of(program)
    now = now_us()
    rows = await db.fetch(
        figures_sql(shape, len(ids)),
        tenant_id,
        now,
        len(tier_rules(program)) - 1,
        *window_starts(program, now),
        *ids,
    )
    windows = range(len(shape.windows))
    return [
        (r["distributor_id"], r["tier_level"], r["team_size_l1"], r["own_sales_fen"],
         *(r[f"team_{i}"] for i in windows))
        for r in rows
    ]  # fmt: skip


async def apply_promotions(
    tx: Connection,
    tenant_id: str,
    program: Program,
    promotions: Sequence[Promotion],
    cause: Mapping[str, str],
) -> dict[str, int]:
    """Raise each distributor to their target tier unless already there or higher (so a
    concurrent promotion is never undone, nor announced twice), and send
    ``distributor.tier_changed`` through the outbox in this transaction for each raise;
    returns {distributor_id: new tier index}."""
    done: dict[str, int] = {}
    lock = " FOR UPDATE" if tx.engine == "postgres" else ""
    for p in sorted(promotions, key=lambda p: p.distributor_id):
        before = await tx.fetchval(
            "SELECT tier_level FROM distributors WHERE tenant_id = $1 AND distributor_id = $2"
            + lock,
            tenant_id,
            p.distributor_id,
        )
        if before is None or int(before) >= p.target:
            continue
        await _change(tx, tenant_id, program, p.distributor_id, int(before), p.target,
                      {"via": "promotion", **cause})  # fmt: skip
        done[p.distributor_id] = p.target
    return done


async def _change(tx: Connection, tenant_id: str, program: Program, distributor_id: str,
                  before: int, after: int, cause: Mapping[str, str]) -> None:  # fmt: skip
    now = now_us()
    await tx.execute(
        "UPDATE distributors SET tier_level = $3, updated_at_us = $4"
        " WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        distributor_id,
        after,
        now,
    )
    await enqueue_event(
        tx,
        tenant_id,
        "distributor.tier_changed",
        f"{distributor_id}:{before}:{after}:{now}",
        {
            "distributor_id": distributor_id,
            "from_level": before,
            "from_tier": tier_name(program, before),
            "to_level": after,
            "to_tier": tier_name(program, after),
            **cause,
        },
    )


async def promote(
    db: Connection, tenant_id: str, program: Program, distributor_ids: Iterable[str],
    cause: Mapping[str, str] | None = None,
) -> dict[str, int]:  # fmt: skip
    """Promote each of ``distributor_ids`` whose figures meet a higher tier's conditions (one
    figures statement for all; a transaction only when someone moves); returns
    {distributor_id: new tier index} of those promoted. ``cause`` goes into the webhook."""
    if not wants_promotion(program):
        return {}
    found = qualifying(
        program, await figures_of(db, tenant_id, program, list(distributor_ids))
    )
    if not found:
        return {}
    if not isinstance(db, Database):  # already inside the event's transaction
        return await apply_promotions(db, tenant_id, program, found, cause or {})
    async with db.transaction() as tx:
        return await apply_promotions(tx, tenant_id, program, found, cause or {})


async def promote_from_figures(
    db: Database, tenant_id: str, program: Program, figures: str | None, order_id: str
) -> dict[str, int]:
    """Promotion after PostgreSQL's one-statement order, from the figures it returned
    (JSON rows, the order included); a transaction only when someone moves."""
    if not figures:
        return {}
    found = qualifying(program, msgspec.json.decode(figures))
    if not found:
        return {}
    async with db.transaction() as tx:
        return await apply_promotions(tx, tenant_id, program, found, {"order_id": order_id})


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
    it credited (team sales) and of its buyer (own sales), on the day it was paid, in this
    connection's shard. Only while some tier has a sales condition (docs/domain.md: sales
    before that are not counted)."""
    if not sales_count(program):
        return
    day = paid_at_us // DAY_US
    rows = {d: (tenant_id, d, day, amount_fen, 0) for d in dict.fromkeys(credited)}
    own = rows.get(buyer)
    rows[buyer] = (tenant_id, buyer, day, own[3] if own else 0, amount_fen)
    # Sorted, so that concurrent writers take the row locks in one order.
    await db.executemany(with_shard(db, ADD_SALES), [rows[k] for k in sorted(rows)])


async def promote_after_order(
    db: Database,
    tenant_id: str,
    program: Program,
    order_id: str,
    buyer: str,
    credited: Sequence[str],
    amount_fen: int,
    paid_at_us: int,
) -> dict[str, int]:
    """The full path's promotion step: count the order's sales, read the candidates' figures
    and raise whoever qualifies, in one transaction."""
    if not sales_count(program):
        return {}
    async with db.transaction() as tx:
        await record_sales(tx, tenant_id, program, buyer, credited, amount_fen, paid_at_us)
        found = qualifying(
            program, await figures_of(tx, tenant_id, program, [*credited, buyer])
        )
        return await apply_promotions(tx, tenant_id, program, found, {"order_id": order_id})


async def set_tier(tx: Connection, tenant_id: str, program: Program, distributor_id: str,
                   name: str) -> None:  # fmt: skip
    """An operator sets a distributor's tier by name, up or down (the only way down)."""
    names = [r.name for r in tier_rules(program)]
    if name not in names:
        known = ", ".join(names) or "none: the program has no tiers"
        raise InvalidInput("name", f"{name!r} is not a tier of the program (tiers: {known})")
    before = await tx.fetchval(
        "SELECT tier_level FROM distributors WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        distributor_id,
    )
    after = names.index(name)
    if before is not None and int(before) != after:
        await _change(tx, tenant_id, program, distributor_id, int(before), after,
                      {"via": "operator"})  # fmt: skip
