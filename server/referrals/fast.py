"""PostgreSQL's one-statement binding for the common case: a user seen for the first time.

Such a user is bound under every bind mode, cannot close a cycle (nobody is under them yet),
and moves no campaign when no open campaign counts invites or pays per invite. Then the
binding, its attribution event and the new upline are one statement: one round trip instead
of a transaction of several; the inviter's team counts are steps of the same statement
(:mod:`server.referrals.teams`). Anything else (a known user, an inactive inviter, campaigns to
move) returns ``None`` and takes the full path in :func:`server.referrals.service.bind_referral`.
"""

from __future__ import annotations

from typing import Any

from rewards.red_packet_config import PER_INVITE_MODES
from server.campaigns.scores import active_campaigns, matching
from server.common import now_us
from server.db import Database
from server.program.schemas import Program
from server.referrals.schemas import ReferralOut
from server.referrals.teams import PG_NEW_LEAF_COUNTS, PG_NEW_LEAF_STEPS

__all__ = ["bind_new_user"]

DAY_US = 86_400_000_000
_ACTIVE = "(b{n}.expires_at_us IS NULL OR b{n}.expires_at_us > $3)"

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
LEFT JOIN user_bindings b1 ON b1.tenant_id = $1 AND b1.user_id = $4
  AND b1.inviter_id IS NOT NULL AND {_ACTIVE.format(n=1)}
LEFT JOIN user_bindings b2 ON b2.tenant_id = $1 AND b2.user_id = b1.inviter_id
  AND b2.inviter_id IS NOT NULL AND {_ACTIVE.format(n=2)}
"""


async def bind_new_user(
    db: Database,
    tenant_id: str,
    program: Program,
    user_id: str,
    link: Any,
    occurred_us: int,
    scene: str | None,
) -> ReferralOut | None:
    """Bind a first-seen user in one statement, or ``None`` when the full path is needed."""
    candidate: str = link["distributor_id"]
    if db.engine != "postgres" or candidate == user_id:
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
    row = await db.fetchrow(
        BIND_NEW_USER_SQL,
        tenant_id,
        user_id,
        occurred_us,
        candidate,
        None if validity is None else occurred_us + validity * DAY_US,
        now_us(),
        link["code"],
        scene,
        link["channel"] or None,
        link["campaign_id"] or None,
    )
    if row is None:
        return None
    upline = [candidate]
    for level in ("c1", "c2"):
        if row[level] is None:
            break
        upline.append(row[level])
    upline = upline[: len(program.commission_bps)]
    return ReferralOut(
        outcome="bound", reason=None, inviter_id=candidate, upline=upline, event_id=int(row["id"])
    )
