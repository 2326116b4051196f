"""PostgreSQL: first bindings that arrive together, written by one statement (server.batching).

The statement is the single first binding's (:data:`server.referrals.fast.BIND_NEW_USER_SQL`)
over arrays with one element per user: the same eligibility test of the inviter, the same tree
guard (taken once for the batch, :data:`server.referrals.teams.PG_TREE_GUARD`), the same
binding, attribution event, counted chain and team counts (summed per distributor: a row is
written once per statement) and the same upline read. ``n``, the user's place in the batch, ties
its rows together. A batch is one tenant's. Rules:

- a user is in a batch at most once, and never beside the binding of its own inviter (a user
  bound in the batch whose link another user of the batch followed): one after the other, the
  second would count under the first's chain; in one statement it could not see it. Such a
  binding takes the full path;
- a user the batch did not bind (known already, an inviter that may not bind, a tree move in
  progress) takes the full path, which decides it as before;
- users are inserted in id order, so two batches in flight that both hold a user (sent again
  meanwhile) never wait for each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from server.batching import Batcher
from server.common import now_us
from server.db import Connection
from server.ledger.totals import PG_SHARD
from server.queries import upline_joins
from server.referrals.teams import COUNTS_ADD, PG_TREE_GUARD

__all__ = ["BatchBinding", "BindingBatcher", "Bound"]

BATCH_BIND_SQL = f"""
WITH x AS (
  SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
                       $7::text[], $8::text[], $9::text[]) WITH ORDINALITY
    AS x(user_id, occurred, inviter, expires, code, scene, channel, campaign_id, n)
),
tch AS (
  SELECT x.n, cb.team_inviter_id AS t1, pb.team_inviter_id AS t2
  FROM x
  LEFT JOIN user_bindings cb ON cb.tenant_id = $1 AND cb.user_id = x.inviter
  LEFT JOIN user_bindings pb ON pb.tenant_id = $1 AND pb.user_id = cb.team_inviter_id
),{PG_TREE_GUARD},
u AS (
  INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us, inviter_id, bound_at_us,
                             expires_at_us, event_id, team_inviter_id)
  SELECT $1::text, x.user_id, x.occurred, x.inviter, x.occurred, x.expires,
         nextval('attribution_events_id_seq'), x.inviter
  FROM x CROSS JOIN tok
  WHERE EXISTS (SELECT 1 FROM distributors d WHERE d.tenant_id = $1
                           AND d.distributor_id = x.inviter AND d.status = 'active'
                           AND d.recruitment = 'approved')
  ORDER BY x.user_id
  ON CONFLICT (tenant_id, user_id) DO NOTHING
  RETURNING user_id, event_id
),
ux AS (
  SELECT x.*, u.event_id, tch.t1, tch.t2
  FROM u JOIN x ON x.user_id = u.user_id JOIN tch ON tch.n = x.n
),
tc AS (
  INSERT INTO team_counts (tenant_id, user_id, shard, level1, level2, level3)
  SELECT $1, y.d, {PG_SHARD}, SUM(y.a), SUM(y.b), SUM(y.c)
  FROM ux
  CROSS JOIN LATERAL (VALUES (ux.inviter, 1, 0, 0), (ux.t1, 0, 1, 0), (ux.t2, 0, 0, 1))
    AS y(d, a, b, c)
  WHERE y.d IS NOT NULL GROUP BY y.d ORDER BY y.d
  {COUNTS_ADD}
  RETURNING 1
),
ta AS (
  INSERT INTO team_ancestors (tenant_id, user_id, ancestor2, ancestor3, bound_at_us)
  SELECT $1, ux.user_id, ux.t1, ux.t2, ux.occurred FROM ux WHERE ux.t1 IS NOT NULL
  RETURNING 1
),
ev AS (
  INSERT INTO attribution_events (id, tenant_id, user_id, occurred_at_us, recorded_at_us,
                                  link_code, scene, channel, campaign_id, candidate_inviter_id,
                                  previous_inviter_id, outcome, reason)
  SELECT ux.event_id, $1::text, ux.user_id, ux.occurred, $10::bigint, ux.code, ux.scene,
         ux.channel, ux.campaign_id, ux.inviter, NULL, 'bound', NULL FROM ux
  RETURNING id, user_id
)
SELECT ev.user_id, ev.id, b1.inviter_id AS c1, b2.inviter_id AS c2
FROM ev JOIN ux ON ux.user_id = ev.user_id
{upline_joins("ux.inviter", "ux.occurred", levels=2)}
"""


class BatchBinding(NamedTuple):
    user_id: str
    occurred_us: int
    inviter_id: str
    expires_at_us: int | None
    code: str
    scene: str | None
    channel: str | None
    campaign_id: str | None


class Bound(NamedTuple):
    """A binding the batch made: its attribution event and the inviter's active upline."""

    event_id: int
    c1: str | None
    c2: str | None


class BindingBatcher(Batcher[str, BatchBinding, Bound]):
    """Keyed by tenant."""

    def conflicts(self, item: BatchBinding, waiting: Sequence[BatchBinding]) -> bool:
        return any(
            item.user_id in (w.user_id, w.inviter_id) or item.inviter_id == w.user_id
            for w in waiting
        )

    async def run(
        self, conn: Connection, key: str, items: Sequence[BatchBinding]
    ) -> Sequence[Bound | None]:
        rows = await conn.fetch(
            BATCH_BIND_SQL,
            key,
            *([getattr(b, f) for b in items] for f in BatchBinding._fields),
            now_us(),
        )
        bound = {r["user_id"]: Bound(int(r["id"]), r["c1"], r["c2"]) for r in rows}
        return [bound.get(b.user_id) for b in items]
