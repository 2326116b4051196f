"""PostgreSQL writes the first bindings that arrive together in one statement
(server.referrals.batch): the same bindings, events, uplines and team counts as one at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from server.referrals import batch as batch_module
from tests.conftest import TenantKeys
from tests.server.test_referrals import arrive, link_of, register

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    write = batch_module.BindingBatcher._write

    async def spy(self: Any, key: Any, batch: Any) -> None:
        sizes.append(len(batch))
        await write(self, key, batch)

    monkeypatch.setattr(batch_module.BindingBatcher, "_write", spy)
    return sizes


def _arrive_all(tenant: TenantKeys, jobs: list[tuple[str, dict]]) -> list[dict]:
    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(lambda j: arrive(tenant, j[0], j[1]), jobs))


def _differences(tenant: TenantKeys) -> list[Any]:
    from server.ledger.reconcile import verify

    async def run(db: Any) -> list[Any]:
        return [d async for d in verify(db, tenant.tenant_id, batch=50)]

    return tenant.call(run)


def _counts(tenant: TenantKeys, who: str) -> tuple[int, int]:
    counts = tenant.get(f"/v1/distributors/{who}", scope="sdk").json()["counts"]
    return counts["direct_invitees"], counts["indirect_invitees"]


def test_concurrent_first_bindings_are_batched_and_counted(tenant, batch_sizes):
    assert tenant.put("/v1/program", {"commission_bps": [1000, 500, 200]}).status_code == 200
    for name in ("top", "mid", "low", "side"):
        register(tenant, name)
    arrive(tenant, "mid", link_of(tenant, "top"))
    arrive(tenant, "low", link_of(tenant, "mid"))
    links = {name: link_of(tenant, name) for name in ("top", "mid", "low", "side")}
    uplines = {"top": ["top"], "mid": ["mid", "top"], "low": ["low", "mid", "top"],
               "side": ["side"]}  # fmt: skip
    jobs = [(f"u{n}", name) for n, name in enumerate(["low", "mid", "side", "top", "low"] * 24)]
    out = _arrive_all(tenant, [(user, links[name]) for user, name in jobs])
    for (_, name), result in zip(jobs, out, strict=True):
        assert (result["outcome"], result["inviter_id"], result["upline"]) == (
            "bound", name, uplines[name])
    assert max(batch_sizes) > 1, batch_sizes
    assert len({r["event_id"] for r in out}) == len(jobs)  # one attribution event each
    per = {name: sum(1 for _, n in jobs if n == name) for name in links}
    # direct: the new users (plus the seeded chain); indirect: levels 2 and 3 below
    assert _counts(tenant, "low") == (per["low"], 0)
    assert _counts(tenant, "mid") == (per["mid"] + 1, per["low"])
    assert _counts(tenant, "top") == (per["top"] + 1, per["mid"] + 1 + per["low"])
    assert _counts(tenant, "side") == (per["side"], 0)
    assert _differences(tenant) == []  # team counts and ancestors agree with the tree


def test_a_user_sent_many_times_at_once_is_bound_once(tenant, batch_sizes):
    for name in ("a", "b"):
        register(tenant, name)
    la, lb = link_of(tenant, "a"), link_of(tenant, "b")
    out = _arrive_all(tenant, [("same", la if n % 2 else lb) for n in range(30)])
    bound = [r for r in out if r["outcome"] == "bound"]
    assert len({r["inviter_id"] for r in bound}) == 1  # bind mode "first": one inviter wins
    inviter = bound[0]["inviter_id"]
    assert _counts(tenant, inviter) == (1, 0) and _counts(tenant, "ab".replace(inviter, "")) == (
        0, 0)
    assert _differences(tenant) == []


def test_a_user_and_its_invitee_in_flight_together(tenant, batch_sizes):
    """A user bound while a user arriving through its own link is bound: never in one
    statement (the second must count under the first's chain)."""
    register(tenant, "root")
    root = link_of(tenant, "root")
    for n in range(10):
        register(tenant, f"d{n}")
    links = {n: link_of(tenant, f"d{n}") for n in range(10)}
    jobs = [(f"d{n}", root) for n in range(10)] + [(f"x{n}", links[n]) for n in range(10)]
    out = _arrive_all(tenant, jobs)
    assert all(r["outcome"] == "bound" for r in out)
    assert _counts(tenant, "root")[0] == 10
    assert _differences(tenant) == []
