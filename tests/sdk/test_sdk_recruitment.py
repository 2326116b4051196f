"""The SDK's recruitment methods against the real app: apply, approve, reject (typed models)."""

from __future__ import annotations

import asyncio
import uuid

import liebian_sdk as sdk
import pytest
from sdk_testing import Target, close, done


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_apply_approve_reject_round_trip(target: Target, kind: str) -> None:
    asyncio.run(scenario(target, kind))


async def scenario(target: Target, kind: str) -> None:
    run = uuid.uuid4().hex[:8]
    ann, ben = f"ann-{run}", f"ben-{run}"
    admin, app = target.client(kind, target.admin_key), target.client(kind, target.sdk_key)
    try:
        program = await done(
            admin.program.put(
                bind_mode="first",
                commission_bps=[1000],
                recruitment={"mode": "approval", "form_fields": [{"name": "phone"}]},
            )
        )
        assert program.recruitment is not None and program.recruitment["mode"] == "approval"
        new = await done(app.distributors.upsert(ann, "Ann"))
        assert new.recruitment is not None and new.recruitment.state == "new"
        with pytest.raises(sdk.ConflictError) as refused:
            await done(app.links.create(ann))
        assert refused.value.errors[0].field == "distributor_id"
        applied = await done(app.distributors.apply(ann, {"phone": "138"}))
        assert isinstance(applied.recruitment, sdk.Recruitment)
        assert applied.recruitment.state == "applied"
        assert applied.recruitment.form == {"phone": "138"}
        approved = await done(admin.distributors.approve(ann))
        assert approved.recruitment is not None and approved.recruitment.state == "approved"
        assert (await done(app.links.create(ann))).code
        await done(app.distributors.upsert(ben, "Ben"))
        await done(app.distributors.apply(ben))
        rejected = await done(admin.distributors.reject(ben, "资料不全"))
        assert rejected.recruitment is not None
        assert (rejected.recruitment.state, rejected.recruitment.reason) == ("rejected", "资料不全")
        with pytest.raises(sdk.ValidationError):
            await done(app.distributors.apply(ben, {"unknown": "x"}))
    finally:
        await done(admin.program.put(bind_mode="first", commission_bps=[1000, 500]))
        await close(admin)
        await close(app)
