"""Applications, approvals and the threshold promotion (docs/domain.md, "Recruitment")."""

from __future__ import annotations

from typing import Any

import msgspec

from server.common import from_us, now_us
from server.db import Connection
from server.errors import Conflict, FieldError, InvalidInput, NotFound
from server.program.schemas import Program
from server.recruitment.rules import refusal
from server.recruitment.schemas import ApplicationIn, RecruitmentOut
from server.webhooks.outbox import enqueue_event

__all__ = [
    "THRESHOLD_CTE",
    "THRESHOLD_SQL",
    "apply",
    "decide",
    "recruitment_of",
    "require_sharing",
]

_encoder = msgspec.json.Encoder()
_form = msgspec.json.Decoder(dict[str, str])

# A buyer's own paid orders, net of refunds. The PostgreSQL order statement adds the order it
# is inserting (not yet visible to its own snapshot); the SQLite path runs after writing it.
_OWN_NET_FEN = (
    "COALESCE((SELECT SUM(ow.amount_fen) FROM orders ow"
    " WHERE ow.tenant_id = {tenant} AND ow.user_id = {user}), 0)"
    " - COALESCE((SELECT SUM(rf.amount_fen) FROM refunds rf JOIN orders ro"
    " ON ro.tenant_id = rf.tenant_id AND ro.order_id = rf.order_id"
    " WHERE rf.tenant_id = {tenant} AND ro.user_id = {user}), 0)"
)
# Promote a buyer whose own net reaches the threshold: make their distributor row (nickname =
# their id until the SDK registers them) or approve a new/applied one. A rejected user stays
# rejected (an operator decided); a hold stays a hold.
_PROMOTE = (
    "INSERT INTO distributors (tenant_id, distributor_id, nickname, avatar_url, tier, status,"
    " created_at_us, updated_at_us, recruitment, application, recruitment_at_us)"
    " SELECT {tenant}, {user}, {user}, NULL, 'member', 'active', {now}, {now}, 'approved', '',"
    " {now} {source} WHERE {threshold} IS NOT NULL"
    " AND {extra} + " + _OWN_NET_FEN + " >= {threshold}"
    " ON CONFLICT (tenant_id, distributor_id) DO UPDATE"
    " SET recruitment = 'approved', recruitment_at_us = excluded.recruitment_at_us,"
    " recruitment_reason = NULL, updated_at_us = excluded.updated_at_us"
    " WHERE distributors.recruitment IN ('new', 'applied')"
)
# A CTE step of server.orders.store's PostgreSQL statement (runs only if the order was new):
# $1 tenant, $3 user, $4 amount, $11 now, $28 threshold.
THRESHOLD_CTE = (
    _PROMOTE.format(
        tenant="$1",
        user="$3::text",
        now="$11",
        source="FROM o",
        threshold="$28::bigint",
        extra="$4::bigint",
    )
    + " RETURNING 1"
)
# Standalone, once the order row is written: $1 tenant, $2 user, $3 now, $4 threshold.
THRESHOLD_SQL = _PROMOTE.format(
    tenant="$1", user="$2", now="$3", source="", threshold="$4", extra="0"
)


def _state_problem(distributor_id: str, why: str) -> Conflict:
    message = f"{distributor_id!r} {why}"
    return Conflict(
        f"distributor_id: {message}; links and posters wait for approval",
        [FieldError("distributor_id", message)],
    )


def require_sharing(program: Program, distributor_id: str, row: Any) -> None:
    """Refuse (409 naming the state) a link or poster for a user who may not share."""
    why = refusal(program.recruitment.mode, row["recruitment"])
    if why is not None:
        raise _state_problem(distributor_id, why)


def recruitment_of(row: Any) -> RecruitmentOut:
    at = row["recruitment_at_us"]
    return RecruitmentOut(
        state=row["recruitment"],
        reason=row["recruitment_reason"],
        form=_form.decode(row["application"]) if row["application"] else {},
        updated_at=from_us(int(at)).isoformat() if at is not None else None,
    )


async def _row(tx: Connection, tenant_id: str, distributor_id: str) -> Any:
    row = await tx.fetchrow(
        "SELECT recruitment, application, recruitment_reason, recruitment_at_us"
        " FROM distributors WHERE tenant_id = $1 AND distributor_id = $2"
        + (" FOR UPDATE" if tx.engine == "postgres" else ""),
        tenant_id,
        distributor_id,
    )
    if row is None:
        raise NotFound(f"distributor {distributor_id!r} does not exist; register it with PUT first")
    return row


def _check_form(program: Program, form: dict[str, str]) -> None:
    fields = {f.name: f for f in program.recruitment.form_fields}
    for name in form:
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise InvalidInput(f"form.{name}", f"is not a field of the form (fields: {known})")
    for f in fields.values():
        if f.required and not form.get(f.name, "").strip():
            raise InvalidInput(f"form.{f.name}", "is required by the program's application form")


async def apply(
    tx: Connection, tenant_id: str, program: Program, distributor_id: str, data: ApplicationIn
) -> None:
    """A user applies (approval mode); a rejected user may apply again."""
    row = await _row(tx, tenant_id, distributor_id)
    if program.recruitment.mode != "approval":
        raise Conflict(
            f"recruitment.mode is {program.recruitment.mode!r}: applications are taken only "
            "in the 'approval' mode",
            [FieldError("distributor_id", "the program takes no applications")],
        )
    if row["recruitment"] == "approved":
        raise Conflict(
            f"distributor_id: {distributor_id!r} is already an approved distributor",
            [FieldError("distributor_id", f"{distributor_id!r} is already approved")],
        )
    _check_form(program, data.form)
    now = now_us()
    await tx.execute(
        "UPDATE distributors SET recruitment = 'applied', application = $3,"
        " recruitment_reason = NULL, recruitment_at_us = $4, updated_at_us = $4"
        " WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        distributor_id,
        _encoder.encode(data.form).decode(),
        now,
    )


async def decide(
    tx: Connection, tenant_id: str, distributor_id: str, approve: bool, reason: str | None
) -> None:
    """An operator approves (from any state) or rejects (a new or applied user, with a
    reason); the webhook ``distributor.approved|rejected`` goes out with the change."""
    row = await _row(tx, tenant_id, distributor_id)
    state = row["recruitment"]
    target = "approved" if approve else "rejected"
    if state == target:
        return  # deciding twice changes nothing and sends nothing
    if not approve:
        if reason is None:
            raise InvalidInput("reason", "say why the application is rejected (1-200 chars)")
        if state == "approved":
            raise Conflict(
                f"distributor_id: {distributor_id!r} is an approved distributor; hold or "
                "freeze them (status) instead of rejecting",
                [FieldError("distributor_id", f"{distributor_id!r} is already approved")],
            )
    now = now_us()
    await tx.execute(
        "UPDATE distributors SET recruitment = $3, recruitment_reason = $4,"
        " recruitment_at_us = $5, updated_at_us = $5"
        " WHERE tenant_id = $1 AND distributor_id = $2",
        tenant_id,
        distributor_id,
        target,
        reason,
        now,
    )
    await enqueue_event(
        tx,
        tenant_id,
        f"distributor.{target}",
        f"{distributor_id}:{now}",
        {
            "distributor_id": distributor_id,
            "state": target,
            "reason": reason,
            "previous_state": state,
            "via": "operator",
        },
    )
