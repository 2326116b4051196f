"""``POST /v1/referrals``: from a scene or link code to a binding decision, then promotion.

A request without an ``Idempotency-Key`` first tries the one-statement path for a user seen
for the first time (:func:`server.referrals.fast.bind_new_user`); every other case, and a
keyed request, takes the full rules (:func:`server.referrals.service.bind_referral`) inside
the write's transaction. Either way a new binding may promote the inviter (tiers).
"""

from __future__ import annotations

from server.db import Connection, Database
from server.errors import InvalidInput
from server.program.schemas import Program
from server.referrals.fast import bind_new_user
from server.referrals.schemas import ReferralIn, ReferralOut
from server.referrals.service import Arrival, bind_referral, is_link_code, parse_scene
from server.tiers.service import binding_counts, promote

__all__ = ["bind_first_time", "bind_in", "referral_code"]


def referral_code(data: ReferralIn) -> str:
    """The link code the request names: ``code`` itself or the one inside ``scene`` (exactly
    one of them); else a 422 naming the field to fix."""
    if data.code is not None and data.scene is None:
        if not is_link_code(data.code):
            raise InvalidInput("code", f"{data.code!r} is not a link code (4-16 letters/digits)")
        return data.code
    if data.scene is not None and data.code is None:
        return parse_scene(data.scene)
    raise InvalidInput("scene", "send exactly one of scene or code")


async def bind_first_time(
    db: Database, tenant_id: str, program: Program, arrival: Arrival
) -> ReferralOut | None:
    """The binding of a user seen for the first time, in one short write; None when the user
    is known (or the path does not apply) and the full rules must decide."""
    fast = await bind_new_user(db, tenant_id, program, arrival)
    if fast is not None:
        await _promote_inviter(db, tenant_id, program, arrival.user_id, fast)
    return fast


async def bind_in(
    tx: Connection, tenant_id: str, program: Program, arrival: Arrival
) -> ReferralOut:
    """The full rules (rebinding, cycles, protection windows), inside ``tx``."""
    result = await bind_referral(tx, tenant_id, program, arrival)
    await _promote_inviter(tx, tenant_id, program, arrival.user_id, result)
    return result


async def _promote_inviter(
    db: Connection, tenant_id: str, program: Program, user_id: str, result: ReferralOut
) -> None:
    """A new binding grows the inviter's level-1 team: evaluate their promotion (only when
    some tier has a team-size condition); the webhook names the bound ``user_id``."""
    if result.outcome == "bound" and result.inviter_id is not None and binding_counts(program):
        await promote(db, tenant_id, program, [result.inviter_id], {"user_id": user_id})
