"""Distributors, share links and the binding decision (docs/domain.md, "Referral graph")."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections import OrderedDict
from typing import Any, NamedTuple
from urllib.parse import unquote

from server.campaigns.invites import RedPacketResult, on_bound
from server.common import decode_cursor, encode_cursor, from_us, now_us
from server.db import Connection, Database
from server.errors import InvalidInput, NotFound
from server.ledger.balances import balance_of
from server.program.schemas import Program
from server.program.service import get_program
from server.queries import DAY_US, binding_active
from server.recruitment.rules import RecruitmentState, binding_reason
from server.recruitment.service import recruitment_of, require_sharing
from server.referrals.graph import is_ancestor, upline_of
from server.referrals.schemas import (
    Balance,
    Counts,
    Distributor,
    DistributorIn,
    DistributorPage,
    DistributorSummary,
    Link,
    LinkIn,
    Outcome,
    ReferralOut,
    TeamMember,
    TeamPage,
)
from server.referrals.teams import apply_due_lapses, apply_lapses, move_user, read_counts
from server.tiers.service import tier_name

__all__ = [
    "Arrival",
    "bind_referral",
    "get_distributor_row",
    "list_distributors",
    "create_link",
    "ensure_link",
    "get_distributor",
    "get_link",
    "is_link_code",
    "parse_scene",
    "resolve_code",
    "team_of",
    "upsert_distributor",
]

_CODE_ALPHABET = string.ascii_letters + string.digits
_CODE_LENGTH = 8  # 62^8 ≈ 2.2e14: not guessable in sequence
_CODE_RE = re.compile(r"^[0-9A-Za-z]{4,16}$")
SCENE_PREFIX = "lb="


# ------------------------------------------------------------------ distributors


async def upsert_distributor(
    tx: Connection,
    tenant_id: str,
    distributor_id: str,
    data: DistributorIn,
    recruitment: RecruitmentState = "approved",
) -> None:
    """Insert or update; call inside a transaction. A new row starts in ``recruitment``
    (:func:`server.recruitment.rules.initial_state` of the program's mode); an update keeps
    the row's recruitment state."""
    now = now_us()
    await tx.execute(
        "INSERT INTO distributors (tenant_id, distributor_id, nickname, avatar_url, tier, status,"
        " created_at_us, updated_at_us, recruitment)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $10)"
        " ON CONFLICT (tenant_id, distributor_id) DO UPDATE SET nickname = excluded.nickname,"
        " avatar_url = excluded.avatar_url,"
        " tier = CASE WHEN $8 THEN excluded.tier ELSE distributors.tier END,"
        " status = CASE WHEN $9 THEN excluded.status ELSE distributors.status END,"
        " updated_at_us = excluded.updated_at_us",
        tenant_id,
        distributor_id,
        data.nickname,
        data.avatar_url,
        data.tier or "member",
        data.status or "active",
        now,
        data.tier is not None,
        data.status is not None,
        recruitment,
    )
    mirror = tx.board_mirror
    if mirror is not None and data.status is not None:
        held = data.status != "active"
        tx.after_commit(lambda: mirror.set_held(tenant_id, distributor_id, held))
    # A distributor is a known user: they keep their own inviter, and arriving later
    # through someone's link does not make them a "new user".
    await tx.execute(
        "INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id, user_id) DO NOTHING",
        tenant_id,
        distributor_id,
        now,
    )


async def get_distributor_row(db: Connection, tenant_id: str, distributor_id: str) -> Any:
    row = await db.fetchrow(
        "SELECT distributor_id, nickname, avatar_url, tier, status, created_at_us, updated_at_us,"
        " recruitment, application, recruitment_reason, recruitment_at_us, tier_level"
        " FROM distributors WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        distributor_id,
    )
    if row is None:
        raise NotFound(f"distributor {distributor_id!r} does not exist; register it with PUT first")
    return row


async def get_distributor(db: Connection, tenant_id: str, distributor_id: str) -> Distributor:
    row = await get_distributor_row(db, tenant_id, distributor_id)
    now = now_us()
    upline, _ = await upline_of(db, tenant_id, distributor_id, now, depth=1)
    l1, l2, l3 = await read_counts(db, tenant_id, distributor_id, now)
    balance = await balance_of(db, tenant_id, distributor_id, now)
    return Distributor(
        distributor_id=row["distributor_id"],
        nickname=row["nickname"],
        avatar_url=row["avatar_url"],
        tier=row["tier"],
        status=row["status"],
        inviter_id=upline[0] if upline else None,
        counts=Counts(
            direct_invitees=l1, indirect_invitees=l2 + l3, level2_invitees=l2, level3_invitees=l3
        ),
        balance=Balance(**balance),
        recruitment=recruitment_of(row),
        tier_level=int(row["tier_level"]),
        tier_name=tier_name(await get_program(db, tenant_id), int(row["tier_level"])),
        created_at=from_us(row["created_at_us"]).isoformat(),
        updated_at=from_us(row["updated_at_us"]).isoformat(),
    )


# Every level reads the counted tree on a keyset index: level 1 the bindings'
# ``team_inviter_id`` (equal to the inviter while a binding is active, cleared once its lapse
# is applied; ix_bindings_team), levels 2 and 3 the maintained ``team_ancestors`` (ancestor2 /
# ancestor3, bound_at_us, user_id; server.referrals.teams): a keyset range, whatever the team's
# size. Level 1 filters a lapse not yet applied on the row itself; levels 2 and 3 apply due
# lapses first (one probe when none), as an intermediate's lapse moves them.
_TEAM_ROOT = {1: "b1.team_inviter_id", 2: "t.ancestor2", 3: "t.ancestor3"}
_TEAM_KEY = {1: "b1", 2: "t", 3: "t"}
_TEAM_FROM = {
    1: "user_bindings b1",
    # CROSS JOIN: SQLite keeps the ancestors' index outermost, so the page is read in its order
    # (PostgreSQL plans it as any inner join)
    2: "team_ancestors t CROSS JOIN user_bindings b1",
}
_TEAM_FROM[3] = _TEAM_FROM[2]
# $1 tenant, $2 distributor, $3 now, ($4, $5) the cursor, $6 the page size + 1.
TEAM_PAGE_SQL = {
    level: f"SELECT b1.user_id, b1.inviter_id, {key}.bound_at_us,"
    # a subquery, not a LEFT JOIN: with one, SQLite sorted the whole level for each page
    " EXISTS (SELECT 1 FROM distributors d WHERE d.tenant_id = b1.tenant_id"
    " AND d.distributor_id = b1.user_id) AS is_distributor"
    f" FROM {_TEAM_FROM[level]}"
    f" WHERE {key}.tenant_id = $1 AND {_TEAM_ROOT[level]} = $2"
    + (" AND b1.tenant_id = t.tenant_id AND b1.user_id = t.user_id" if key == "t" else "")
    + f" AND {binding_active('b1', '$3')}"
    f" AND ({key}.bound_at_us, {key}.user_id) > ($4, $5)"
    f" ORDER BY {key}.bound_at_us, {key}.user_id LIMIT $6"
    for level, key in _TEAM_KEY.items()
}


async def team_of(
    db: Connection,
    tenant_id: str,
    distributor_id: str,
    level: int,
    limit: int,
    cursor: str | None,
) -> TeamPage:
    """我的团队: members ``level`` steps below the distributor, oldest binding first."""
    await get_distributor_row(db, tenant_id, distributor_id)
    after = decode_cursor(cursor, int, str) or [-1, ""]
    now = now_us()
    if level > 1:
        await apply_due_lapses(db, tenant_id, now)
    rows = await db.fetch(
        TEAM_PAGE_SQL[level],
        tenant_id,
        distributor_id,
        now,
        int(after[0]),
        str(after[1]),
        limit + 1,
    )
    members = [
        TeamMember(
            user_id=r["user_id"],
            level=level,
            inviter_id=r["inviter_id"],
            bound_at=from_us(r["bound_at_us"]).isoformat(),
            is_distributor=bool(r["is_distributor"]),
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["bound_at_us"], last["user_id"])
    return TeamPage(members=members, next_cursor=next_cursor)


async def list_distributors(
    db: Connection,
    tenant_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
    recruitment: str | None = None,
) -> DistributorPage:
    """By id; ``status`` (holds) and ``recruitment`` (e.g. ``applied``: the approval queue)
    filter when given."""
    after = decode_cursor(cursor, str) or [""]
    rows = await db.fetch(
        "SELECT distributor_id, nickname, tier, status, updated_at_us, recruitment"
        " FROM distributors WHERE tenant_id = $1 AND ($2 = '' OR status = $2)"
        " AND ($5 = '' OR recruitment = $5) AND distributor_id > $3"
        " ORDER BY distributor_id LIMIT $4",
        tenant_id,
        status or "",
        str(after[0]),
        limit + 1,
        recruitment or "",
    )
    return DistributorPage(
        distributors=[
            DistributorSummary(
                distributor_id=r[0],
                nickname=r[1],
                tier=r[2],
                status=r[3],
                updated_at=from_us(int(r[4])).isoformat(),
                recruitment=r[5],
            )
            for r in rows[:limit]
        ],
        next_cursor=encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None,
    )


# ------------------------------------------------------------------ links


def _link_out(row: Any, base_url: str, clicks: int = 0, page: str | None = None) -> Link:
    code = row["code"]
    return Link(
        code=code,
        scene=SCENE_PREFIX + code,
        url=f"{base_url.rstrip('/')}/s/{code}",
        distributor_id=row["distributor_id"],
        campaign_id=row["campaign_id"] or None,
        channel=row["channel"] or None,
        clicks=clicks,
        page=page,
    )


async def create_link(db: Connection, tenant_id: str, data: LinkIn, base_url: str) -> Link:
    """The distributor's link for (campaign, channel); the same input returns the same link."""
    return (await ensure_link(db, tenant_id, data, base_url))[0]


async def ensure_link(
    db: Connection, tenant_id: str, data: LinkIn, base_url: str, page: str | None = None
) -> tuple[Link, bool]:
    """:func:`create_link`, and whether this call created it. ``base_url`` is the tenant's
    public base (server.public_urls), ``page`` the program's mini-program page. A user who
    may not share yet (recruitment) is refused with a 409 naming their state."""
    row = await get_distributor_row(db, tenant_id, data.distributor_id)
    require_sharing(await get_program(db, tenant_id), data.distributor_id, row)
    if data.campaign_id is not None:
        exists = await db.fetchval(
            "SELECT 1 FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2",
            tenant_id,
            data.campaign_id,
        )
        if exists is None:
            raise NotFound(f"campaign {data.campaign_id!r} does not exist")
    key = (tenant_id, data.distributor_id, data.campaign_id or "", data.channel or "")
    select = (
        "SELECT code, distributor_id, campaign_id, channel FROM links"
        " WHERE tenant_id = $1 AND distributor_id = $2 AND campaign_id = $3 AND channel = $4"
    )
    row = await db.fetchrow(select, *key)
    created = row is None
    for _ in range(5):
        if row is not None:
            break
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
        # A share code is global (the public /s/{code} knows no tenant): it is claimed in the
        # link_codes reference table first; a code another link holds is drawn again.
        claimed = await db.fetchval(
            "INSERT INTO link_codes (code, tenant_id) VALUES ($1, $2)"
            " ON CONFLICT (code) DO NOTHING RETURNING code",
            code,
            tenant_id,
        )
        if claimed is None:
            row = await db.fetchrow(select, *key)
            continue
        # No conflict target: a concurrent create of the same link does nothing; the
        # re-select tells, and the code claimed for nothing is given back.
        await db.execute(
            "INSERT INTO links (tenant_id, code, distributor_id, campaign_id, channel,"
            " created_at_us) VALUES ($1, $5, $2, $3, $4, $6) ON CONFLICT DO NOTHING",
            *key,
            code,
            now_us(),
        )
        row = await db.fetchrow(select, *key)
        if row is not None and row["code"] != code:
            await db.execute(
                "DELETE FROM link_codes WHERE code = $1 AND tenant_id = $2", code, tenant_id
            )
    if row is None:
        raise RuntimeError("could not allocate a link code")
    return _link_out(row, base_url, page=page), created


def is_link_code(text: str) -> bool:
    return _CODE_RE.match(text) is not None


def parse_scene(scene: str) -> str:
    """The link code in a mini-program ``scene``: ``lb=CODE`` (alone or among ``&`` pairs,
    URL-encoded or not) or a bare code."""
    decoded = unquote(scene).strip()
    for part in decoded.split("&"):
        name, sep, value = part.partition("=")
        if sep and name == SCENE_PREFIX[:-1] and _CODE_RE.match(value):
            return value
    if _CODE_RE.match(decoded):
        return decoded
    raise InvalidInput(
        "scene",
        f"{scene!r} carries no link code; pass the scene of a link from POST /v1/links (lb=<code>)",
    )


# Links are never updated or deleted once created, so a found link can be kept: a share code is
# followed by many users in a row, and the look-up was a round trip per binding as costly (in
# the app) as the binding statement itself. Bounded (LINK_CACHE_SIZE entries, least recently
# used dropped); misses are not kept (a code may be created later); keyed by tenant.
LINK_CACHE_SIZE = 10_000
_links: OrderedDict[tuple[str, str], Any] = OrderedDict()


async def resolve_code(db: Connection, tenant_id: str, code: str) -> Any:
    key = (tenant_id, code)
    row = _links.get(key)
    if row is not None:
        _links.move_to_end(key)
        return row
    row = await db.fetchrow(
        "SELECT code, distributor_id, campaign_id, channel FROM links"
        " WHERE tenant_id = $1 AND code = $2",
        tenant_id,
        code,
    )
    if row is None:
        raise NotFound(f"no link with code {code!r}")
    _links[key] = row
    if len(_links) > LINK_CACHE_SIZE:
        _links.popitem(last=False)
    return row


async def link_clicks(db: Connection, tenant_id: str, code: str) -> int:
    return int(
        await db.fetchval(
            "SELECT COUNT(*) FROM link_clicks WHERE tenant_id = $1 AND code = $2", tenant_id, code
        )
    )


async def get_link(
    db: Connection, tenant_id: str, code: str, base_url: str, page: str | None
) -> Link:
    """A link with its click count (404 for an unknown code)."""
    row = await resolve_code(db, tenant_id, code)
    return _link_out(row, base_url, await link_clicks(db, tenant_id, code), page)


async def record_click(db: Database, code: str, client: str, at_us: int) -> tuple[str, str] | None:
    """Count a click on ``code`` once per client address and minute; return (tenant_id, code)."""
    row = await db.fetchrow("SELECT tenant_id FROM link_codes WHERE code = $1", code)
    if row is None:
        return None
    client_hash = hashlib.sha256(client.encode()).hexdigest()[:32]
    await db.execute(
        "INSERT INTO link_clicks (tenant_id, code, client_hash, minute) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant_id, code, client_hash, minute) DO NOTHING",
        row["tenant_id"],
        code,
        client_hash,
        at_us // 60_000_000,
    )
    return row["tenant_id"], code


# ------------------------------------------------------------------ binding


async def record_arrival(
    tx: Connection,
    tenant_id: str,
    user_id: str,
    occurred_us: int,
    link: Any,
    scene: str | None,
    previous: str | None,
    outcome: Outcome,
    reason: str | None,
) -> int:
    """Append the arrival's attribution event (through ``link``, decided ``outcome``); its id."""
    event_id = await tx.fetchval(
        "INSERT INTO attribution_events (tenant_id, user_id, occurred_at_us, recorded_at_us,"
        " link_code, scene, channel, campaign_id, candidate_inviter_id, previous_inviter_id,"
        " outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " RETURNING id",
        tenant_id,
        user_id,
        occurred_us,
        now_us(),
        link["code"],
        scene,
        link["channel"] or None,
        link["campaign_id"] or None,
        link["distributor_id"],
        previous,
        outcome,
        reason,
    )
    return int(event_id)


class Arrival(NamedTuple):
    """A user arriving through a share link (or its scene) at a time."""

    user_id: str
    link: Any  # the links row: code, distributor_id, campaign_id, channel
    occurred_us: int
    scene: str | None


async def bind_referral(
    tx: Connection, tenant_id: str, program: Program, arrival: Arrival
) -> ReferralOut:
    """Apply the program's bind mode to one arrival; record the arrival and the decision.
    Call inside a transaction."""
    user_id, link, occurred_us, scene = arrival
    candidate: str = link["distributor_id"]
    depth = len(program.commission_bps)
    created = await tx.fetchval(
        "INSERT INTO user_bindings (tenant_id, user_id, first_seen_at_us) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id, user_id) DO NOTHING RETURNING id",
        tenant_id,
        user_id,
        occurred_us,
    )
    current = await tx.fetchrow(
        "SELECT inviter_id, expires_at_us FROM user_bindings WHERE tenant_id = $1 AND user_id = $2"
        + (" FOR UPDATE" if tx.engine == "postgres" else ""),
        tenant_id,
        user_id,
    )
    if current is None:  # the INSERT above (ON CONFLICT DO NOTHING) left the row either way
        raise RuntimeError("invariant broken: current is None")
    active = current["inviter_id"] is not None and (
        current["expires_at_us"] is None or current["expires_at_us"] > occurred_us
    )
    existing = current["inviter_id"] if active else None
    outcome, reason = await _decide(
        tx, tenant_id, program, user_id, candidate, existing, created is not None, occurred_us
    )
    event_id = await record_arrival(
        tx, tenant_id, user_id, occurred_us, link, scene, existing, outcome, reason
    )
    packets: list[RedPacketResult] = []
    if outcome == "bound":
        validity = program.bind_validity_days
        if created is None:  # the counted tree must be today's before a subtree moves
            await apply_lapses(tx, tenant_id, now_us())
        await tx.execute(
            "UPDATE user_bindings SET inviter_id = $3, bound_at_us = $4, expires_at_us = $5,"
            " event_id = $6 WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
            candidate,
            occurred_us,
            None if validity is None else occurred_us + validity * DAY_US,
            event_id,
        )
        await move_user(tx, tenant_id, user_id, candidate, leaf=created is not None)
        packets = await on_bound(
            tx,
            tenant_id,
            program,
            candidate,
            user_id,
            occurred_us,
            int(event_id),
            link["campaign_id"] or None,
        )
    upline, _ = await upline_of(tx, tenant_id, user_id, occurred_us, depth)
    return ReferralOut(
        outcome=outcome,
        reason=reason,
        inviter_id=upline[0] if upline else None,
        upline=upline,
        event_id=int(event_id),
        red_packets=packets,
    )


async def _decide(
    tx: Connection,
    tenant_id: str,
    program: Program,
    user_id: str,
    candidate: str,
    existing: str | None,
    is_new: bool,
    at_us: int,
) -> tuple[Outcome, str | None]:
    if candidate == user_id:
        return "rejected", "self_referral"
    inviter = await tx.fetchrow(
        "SELECT status, recruitment FROM distributors WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        candidate,
    )
    not_sharing = binding_reason(
        program.recruitment.mode, None if inviter is None else inviter["recruitment"]
    )
    if not_sharing is not None:
        return "rejected", not_sharing
    if inviter is None or inviter["status"] != "active":
        return "rejected", "inviter_not_active"
    if existing == candidate:
        return "kept", "already_bound_to_inviter"
    if existing is not None and program.bind_mode != "last":
        return "kept", "already_bound"
    if program.bind_mode == "new_user_only" and not is_new:
        return "rejected", "not_new_user"
    if is_new:
        # A user first seen in this very transaction has never been a distributor, so nobody
        # is bound under them yet (binding needs their link; registering them waits on this
        # transaction's row): no cycle is possible, and no lock or walk is needed.
        return "bound", None
    if tx.engine == "postgres":
        # Two concurrent bindings can close a cycle that neither sees alone (u1->c1 while
        # u2->c2, with c1 above u2 and c2 above u1). Serialise the check-and-bind within the
        # tenant; SQLite transactions are serialised by the store already.
        await tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", tenant_id)
    if await is_ancestor(tx, tenant_id, user_id, candidate, at_us):
        return "rejected", "cycle"
    return "bound", "rebound" if existing is not None else None
