"""Schemathesis over the served OpenAPI document: no 5xx, and responses match their schemas.

Every operation gets a bounded number of generated requests (with a valid admin key, on the
engine of the current pass). It grows by itself as endpoints are added.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.conftest import make_tenant

EXAMPLES = int(os.environ.get("LIEBIAN_SCHEMATHESIS_EXAMPLES", "12"))


def _operations(client) -> list:
    raw = client.get("/schema/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    return [result.ok() for result in schema.get_all_operations()]


def test_openapi_document_covers_the_contract(client):
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in (
        "/v1/program",
        "/v1/distributors/{distributor_id}",
        "/v1/links",
        "/v1/referrals",
        "/v1/orders",
        "/v1/orders/{order_id}/refunds",
        "/v1/campaigns",
        "/v1/campaigns/{campaign_id}/leaderboard",
        "/v1/settlements",
        "/v1/posters/{distributor_id}",
        "/v1/webhook-endpoints",
        "/s/{code}",
    ):
        assert path in paths, path


@pytest.mark.slow
def test_generated_requests_never_5xx_and_match_the_schema(client):
    tenant = make_tenant(client, "schemathesis")
    tenant.put("/v1/distributors/alice", {"nickname": "alice"}, scope="sdk")
    auth = {"Authorization": f"Bearer {tenant.admin_key}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in _operations(client):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver.local")
            kwargs.pop("cookies", None)
            kwargs["headers"] = {**kwargs["headers"], **auth}  # a real key, not a generated one
            response = client.request(**kwargs)
            statuses[response.status_code] += 1
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            check()
        except AssertionError as exc:  # schemathesis failures: collect all, then report
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures[:6])
    # The run did exercise the API: successes and client errors, never a server error.
    assert sum(statuses.values()) >= 10 * len(_operations(client))
    assert any(200 <= s < 300 for s in statuses) and not any(s >= 500 for s in statuses)
