"""Daily figures: folded once from append-only rows into aggregates, per tenant, by local day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.stats import service as stats
from tests.conftest import TenantKeys


def _traffic(tenant: TenantKeys, prefix: str) -> None:
    tenant.put("/v1/program", {"commission_bps": [1000], "freeze_days": 0})
    tenant.put(f"/v1/distributors/{prefix}a", {"nickname": "甲"})
    code = tenant.post("/v1/links", {"distributor_id": f"{prefix}a"}).json()["code"]
    tenant.client.get(f"/s/{code}", follow_redirects=False)
    tenant.post("/v1/referrals", {"user_id": f"{prefix}u1", "code": code})
    tenant.post("/v1/referrals", {"user_id": f"{prefix}a", "code": code})  # rejected: self
    paid = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    response = tenant.post("/v1/orders", {"order_id": f"{prefix}o1", "user_id": f"{prefix}u1",
                                          "amount_fen": 10_000, "paid_at": paid})  # fmt: skip
    assert response.status_code == 201, response.text


def test_roll_up_counts_each_row_once_per_tenant(
    client: Any, tenant: TenantKeys, other_tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "LAG_US", 0)
    _traffic(tenant, "s")
    tenant.call(stats.roll_up)
    first = tenant.call(stats.daily_figures, tenant.tenant_id)
    tenant.call(stats.roll_up)  # nothing new: nothing counted twice
    again = tenant.call(stats.daily_figures, tenant.tenant_id)
    assert first == again
    assert len(first.days) == 30
    assert {m: first.today(m) for m in stats.METRICS} == {
        "clicks": 1, "bindings": 1, "orders": 1, "gmv_fen": 10_000, "commission_fen": 1_000,
    }  # fmt: skip
    other = tenant.call(stats.daily_figures, other_tenant.tenant_id)
    assert all(other.today(m) == 0 for m in stats.METRICS)


def test_rows_younger_than_the_lag_wait_for_the_next_run(
    client: Any, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "LAG_US", 0)
    tenant.call(stats.roll_up)  # everything before this test is folded
    monkeypatch.setattr(stats, "LAG_US", 3_600_000_000)
    _traffic(tenant, "y")
    tenant.call(stats.roll_up)
    assert tenant.call(stats.daily_figures, tenant.tenant_id).today("orders") == 0
    monkeypatch.setattr(stats, "LAG_US", 0)
    tenant.call(stats.roll_up)
    assert tenant.call(stats.daily_figures, tenant.tenant_id).today("orders") == 1


def test_roll_up_reads_at_most_a_batch_per_source(
    client: Any, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "LAG_US", 0)
    tenant.call(stats.roll_up)
    for n in range(3):
        tenant.put(f"/v1/distributors/b{n}", {"nickname": "乙"})
        code = tenant.post("/v1/links", {"distributor_id": f"b{n}"}).json()["code"]
        tenant.client.get(f"/s/{code}", follow_redirects=False)
    assert tenant.call(stats.roll_up, 2) == 2  # link_clicks: two of three
    assert tenant.call(stats.roll_up, 2) == 1
    assert tenant.call(stats.daily_figures, tenant.tenant_id).today("clicks") == 3
