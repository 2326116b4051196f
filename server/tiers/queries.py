"""The SQL of tier promotion: the sharded daily sales figures and a candidate's figures.

``tier_sales`` holds, per distributor, UTC day of payment and shard, the sales the conditions
count (fen, net of refunds): ``team_fen`` of orders credited to them, ``own_fen`` of their own.
A distributor's figure is the sum of their rows; each pooled PostgreSQL connection writes its
own shard (:data:`server.ledger.totals.PG_SHARD`), so concurrent orders crediting one top
distributor never wait for one row lock. A figure read sums at most shards × days rows of
one distributor, through the unique index, never the orders.

The figure expressions are written once (:func:`figure_columns`) and used twice: by the
stand-alone figures query (bindings, and orders on the full path) and inside PostgreSQL's
one-statement order (:func:`order_steps`), which adds the order being inserted (its own
snapshot does not see it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from server.ledger.totals import PG_SHARD
from server.queries import DAY_US, binding_active

__all__ = [
    "ADD_SALES",
    "Shape",
    "figures_sql",
    "order_steps",
]

ADD_SALES = (
    "INSERT INTO tier_sales (tenant_id, distributor_id, day, shard, team_fen, own_fen)"
    " VALUES ($1, $2, $3, {shard}, $4, $5)"
    " ON CONFLICT (tenant_id, distributor_id, day, shard) DO UPDATE"
    " SET team_fen = tier_sales.team_fen + excluded.team_fen,"
    " own_fen = tier_sales.own_fen + excluded.own_fen"
)


@dataclass(frozen=True, slots=True)
class Shape:
    """Which figures the program's conditions read: team size, the team-sales windows (days,
    None: ever; sorted, None first) and own sales. Figures no condition reads are 0."""

    team_size: bool
    windows: tuple[int | None, ...]
    own: bool


_TEAM_SIZE = (
    "(SELECT COUNT(*) FROM user_bindings b WHERE b.tenant_id = {tenant} AND b.inviter_id = {who}"
    " AND " + binding_active("b", "{now}") + ")"
)
_TEAM = (
    "(SELECT COALESCE(SUM(s.team_fen), 0) FROM tier_sales s WHERE s.tenant_id = {tenant}"
    " AND s.distributor_id = {who} AND s.day >= {since})"
)
_OWN = (
    "(SELECT COALESCE(SUM(s.own_fen), 0) FROM tier_sales s WHERE s.tenant_id = {tenant}"
    " AND s.distributor_id = {who})"
)


def figure_columns(
    shape: Shape, tenant: str, who: str, now: str, first_since: int, extra: tuple[str, str] | None
) -> str:
    """``team_size_l1, team_0.., own_sales_fen`` of distributor ``who``; windows' first days
    are parameters ``$first_since``...; ``extra`` (team, own) adds an order not yet visible
    (its team part only to the windows its day falls in: ``{day}`` in the team expression)."""
    cols = [
        (_TEAM_SIZE.format(tenant=tenant, who=who, now=now) if shape.team_size else "0")
        + " AS team_size_l1"
    ]
    for i in range(len(shape.windows)):
        since = f"${first_since + i}"
        team = _TEAM.format(tenant=tenant, who=who, since=since)
        if extra is not None:
            team += f" + CASE WHEN {{day}} >= {since} THEN {extra[0]} ELSE 0 END"
        cols.append(f"{team} AS team_{i}")
    own = _OWN.format(tenant=tenant, who=who) if shape.own else "0"
    if extra is not None and shape.own:
        own += f" + {extra[1]}"
    cols.append(f"{own} AS own_sales_fen")
    return ",\n  ".join(cols)


@lru_cache(maxsize=64)
def figures_sql(shape: Shape, candidates: int) -> str:
    """Figures of up to ``candidates`` distributors below the top tier, in one statement:
    $1 tenant, $2 now, $3 top tier index, $4.. the windows' first days, then the ids."""
    first_id = 4 + len(shape.windows)
    ids = ", ".join(f"${first_id + i}" for i in range(candidates))
    return (
        "SELECT d.distributor_id, d.tier_level,\n  "
        + figure_columns(shape, "$1", "d.distributor_id", "$2", 4, None)
        + f"\nFROM distributors d WHERE d.tenant_id = $1 AND d.distributor_id IN ({ids})"
        " AND d.tier_level < $3"
    )


@lru_cache(maxsize=64)
def order_steps(shape: Shape, first_param: int) -> tuple[str, str]:
    """CTE steps for PostgreSQL's one-statement order (``chain`` of d, lvl, rate, amt; ``o``
    the inserted order; $1 tenant, $3 buyer, $4 amount, $5 paid_at, $10 now) and the column
    of the final SELECT that returns the candidates' figures as JSON rows
    ``[id, tier_level, team_size_l1, own_sales_fen, team_0..]``. Parameters from
    ``first_param``: the top tier index, then each window's first day."""
    top = f"${first_param}"
    day = f"($5::bigint / {DAY_US})"
    cols = figure_columns(
        shape, "$1", "c.d", "$10", first_param + 1, ("c.team", "c.own")
    ).replace("{day}", day)
    steps = f""",
tier_candidates AS (
  SELECT x.d, SUM(x.team)::bigint AS team, SUM(x.own)::bigint AS own FROM (
    SELECT chain.d, $4::bigint AS team, 0::bigint AS own FROM chain WHERE chain.amt > 0
    UNION ALL SELECT $3::text, 0::bigint, $4::bigint
  ) AS x GROUP BY x.d
),
tier_add AS (
  INSERT INTO tier_sales (tenant_id, distributor_id, day, shard, team_fen, own_fen)
  SELECT $1, c.d, {day}, {PG_SHARD}, c.team, c.own
  FROM o CROSS JOIN tier_candidates c ORDER BY c.d
  ON CONFLICT (tenant_id, distributor_id, day, shard) DO UPDATE
  SET team_fen = tier_sales.team_fen + excluded.team_fen,
      own_fen = tier_sales.own_fen + excluded.own_fen
  RETURNING 1
),
tier_figures AS (
  SELECT c.d, dd.tier_level,
  {cols}
  FROM tier_candidates c
  JOIN distributors dd ON dd.tenant_id = $1 AND dd.distributor_id = c.d
  WHERE dd.tier_level < {top} AND EXISTS (SELECT 1 FROM o)
)"""
    teams = "".join(f", f.team_{i}" for i in range(len(shape.windows)))
    column = (
        "(SELECT json_agg(json_build_array(f.d, f.tier_level, f.team_size_l1,"
        f" f.own_sales_fen{teams})) FROM tier_figures f) AS tier_figures"
    )
    return steps, column
