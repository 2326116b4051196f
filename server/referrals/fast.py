"""One short write for the common binding: a user seen for the first time.

Such a user is bound under every bind mode, cannot close a cycle (nobody is under them yet),
and moves no campaign when no open campaign counts invites or pays per invite. Then the
binding, its attribution event, the new upline and the inviters' team counts
(:mod:`server.referrals.teams`) are written at once:

- PostgreSQL: one statement (one round trip instead of a transaction of several), shared by
  the first bindings that arrive together (:mod:`server.referrals.batch`);
- SQLite: one short transaction of one read and three writes (the full path runs about a dozen
  statements); SQLite transactions are serialised by the store, so the read cannot go stale.

Anything else (a known user, an inactive inviter, campaigns to move) returns ``None`` and takes
the full path in :func:`server.referrals.service.bind_referral`, which must give the same result
(the suite checks both paths agree, tests/server/test_referrals.py).
"""

from __future__ import annotations

from typing import Any

from rewards.red_packet_config import PER_INVITE_MODES
from server.campaigns.scores import active_campaigns, matching
from server.common import now_us
from server.db import Connection, Database
from server.program.schemas import Program
from server.queries import DAY_US, binding_active, upline_joins
from server.referrals.batch import BatchBinding, BindingBatcher
from server.referrals.schemas import ReferralOut
from server.referrals.service import Arrival, record_arrival
from server.referrals.teams import (
    PG_NEW_LEAF_COUNTS,
    PG_NEW_LEAF_STEPS,
    add_counts,
    add_leaf_ancestors,
)

__all__ = ["bind_new_user"]


BIND_NEW_USER_SQL = f"""
WITH next_event AS (SELECT nextval('attribution_events_id_seq') AS id),{PG_NEW_LEAF_STEPS},
u AS (
  INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us, inviter_id, bound_at_us,
                             expires_at_us, event_id, team_inviter_id)
  SELECT $1::text, $2::text, $3::bigint, $4::text, $3::bigint, $5::bigint, next_event.id,
         $4::text
  FROM next_event CROSS JOIN tok
  WHERE EXISTS (SELECT 1 FROM distributors d WHERE d.tenant_id = $1
                           AND d.distributor_id = $4 AND d.status = 'active'
                           AND d.recruitment = 'approved')
  ON CONFLICT (tenant_id, user_id) DO NOTHING
  RETURNING event_id
),{PG_NEW_LEAF_COUNTS},
ev AS (
  INSERT INTO attribution_events (id, tenant_id, user_id, occurred_at_us, recorded_at_us,
                                  link_code, scene, channel, campaign_id, candidate_inviter_id,
                                  previous_inviter_id, outcome, reason)
  SELECT u.event_id, $1::text, $2::text, $3::bigint, $6::bigint, $7::text, $8::text,
         $9::text, $10::text, $4::text, NULL, 'bound', NULL FROM u
  RETURNING id
)
SELECT ev.id, b1.inviter_id AS c1, b2.inviter_id AS c2 FROM ev
{upline_joins("$4", "$3", levels=2)}
"""


async def bind_new_user(
    db: Database, tenant_id: str, program: Program, arrival: Arrival
) -> ReferralOut | None:
    """Bind a first-seen user in one short write, or ``None`` when the full path is needed."""
    user_id, link, occurred_us, scene = arrival
    candidate: str = link["distributor_id"]
    if candidate == user_id:
        return None
    campaigns = matching(
        await active_campaigns(db, tenant_id),
        occurred_us,
        link["campaign_id"] or None,
        ("invites", "orders", "gmv", "commission"),
    )
    if any(
        c.metric == "invites"
        or (c.red_packet is not None and c.red_packet.mode in PER_INVITE_MODES)
        for c in campaigns
    ):
        return None
    validity = program.bind_validity_days
    expires = None if validity is None else occurred_us + validity * DAY_US
    if db.engine != "postgres":
        async with db.transaction() as tx:
            return await _bind_new_user_serialised(
                tx, tenant_id, program, user_id, link, occurred_us, expires, scene
            )
    if (batcher := BindingBatcher.of(db)) is not None:
        # The common case: written with the first bindings that arrive meanwhile.
        bound = await batcher.write(
            tenant_id,
            BatchBinding(user_id, occurred_us, candidate, expires, link["code"], scene,
                         link["channel"] or None, link["campaign_id"] or None),
        )  # fmt: skip
        if bound is None:
            return None
        return _bound(program, candidate, (bound.c1, bound.c2), bound.event_id)
    row = await db.fetchrow(
        BIND_NEW_USER_SQL,
        tenant_id,
        user_id,
        occurred_us,
        candidate,
        expires,
        now_us(),
        link["code"],
        scene,
        link["channel"] or None,
        link["campaign_id"] or None,
    )
    if row is None:
        return None
    return _bound(program, candidate, (row["c1"], row["c2"]), int(row["id"]))


def _bound(
    program: Program, candidate: str, chain: tuple[str | None, str | None], event_id: int
) -> ReferralOut:
    """The answer: the inviter and its active upline (``chain``: c1, c2)."""
    upline = [candidate]
    for inviter in chain:
        if inviter is None:
            break
        upline.append(inviter)
    upline = upline[: len(program.commission_bps)]
    return ReferralOut(
        outcome="bound", reason=None, inviter_id=candidate, upline=upline, event_id=event_id
    )


# SQLite's read: $1 tenant, $2 user, $3 occurred at, $4 inviter. Whether the user is known,
# whether the inviter may bind (active and approved), the inviter's active upline (c1, c2) and
# counted chain (t1, t2: team_inviter_id, as server.referrals.teams reads it).
_NEW_USER_CONTEXT_SQL = f"""
SELECT
  (SELECT 1 FROM user_bindings s WHERE s.tenant_id = $1 AND s.user_id = $2) AS seen,
  (SELECT 1 FROM distributors d WHERE d.tenant_id = $1 AND d.distributor_id = $4
     AND d.status = 'active' AND d.recruitment = 'approved') AS eligible,
  CASE WHEN {binding_active("cb", "$3")} THEN cb.inviter_id END AS c1,
  b2.inviter_id AS c2, cb.team_inviter_id AS t1, pb.team_inviter_id AS t2
FROM (SELECT 1) AS one
LEFT JOIN user_bindings cb ON cb.tenant_id = $1 AND cb.user_id = $4
LEFT JOIN user_bindings b2 ON b2.tenant_id = $1 AND b2.user_id = cb.inviter_id
  AND {binding_active("cb", "$3")} AND {binding_active("b2", "$3")}
LEFT JOIN user_bindings pb ON pb.tenant_id = $1 AND pb.user_id = cb.team_inviter_id
"""
_BINDING_SQL = """
INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us, inviter_id, bound_at_us,
                           expires_at_us, event_id, team_inviter_id)
VALUES ($1, $2, $3, $4, $3, $5, $6, $4)
"""


async def _bind_new_user_serialised(
    tx: Connection,
    tenant_id: str,
    program: Program,
    user_id: str,
    link: Any,
    occurred_us: int,
    expires: int | None,
    scene: str | None,
) -> ReferralOut | None:
    """The fast path inside a serialised transaction (SQLite): nothing can change between
    its read and its writes."""
    candidate: str = link["distributor_id"]
    row = await tx.fetchrow(_NEW_USER_CONTEXT_SQL, tenant_id, user_id, occurred_us, candidate)
    if row is None or row["seen"] is not None or row["eligible"] is None:
        return None
    event_id = await record_arrival(
        tx, tenant_id, user_id, occurred_us, link, scene, None, "bound", None
    )
    await tx.execute(_BINDING_SQL, tenant_id, user_id, occurred_us, candidate, expires, event_id)
    # The new leaf counts one level below each of its inviter's counted chain (3 at most).
    chain = [candidate]
    for parent in (row["t1"], row["t2"]):
        if parent is None or parent in chain:
            break
        chain.append(parent)
    await add_counts(
        tx, tenant_id, {d: [int(level == i) for level in range(3)] for i, d in enumerate(chain)}
    )
    await add_leaf_ancestors(tx, tenant_id, user_id, chain, occurred_us)
    return _bound(program, candidate, (row["c1"], row["c2"]), event_id)
