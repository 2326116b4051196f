"""Schemathesis over the served OpenAPI document: the responses are what it describes.

Every operation gets a bounded number of generated requests, valid and invalid ones (with a
valid admin key, on the engine of the current pass), and each response is checked: no 5xx, a
documented status, the documented content type (problem+json for errors), documented headers
and the documented schema. It grows by itself as endpoints are added.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import make_tenant

EXAMPLES = int(os.environ.get("LIEBIAN_SCHEMATHESIS_EXAMPLES", "12"))
NEGATIVE_EXAMPLES = max(2, EXAMPLES // 3)


def _operations(client) -> list:
    raw = client.get("/schema/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    return [result.ok() for result in schema.get_all_operations()]


def _takes_input(operation) -> bool:
    """Whether the operation reads a body, a query string or a header (not only a path id)."""
    definition = operation.definition.raw
    parameters = definition.get("parameters", [])
    return "requestBody" in definition or any(p["in"] != "path" for p in parameters)


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


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_generated_requests_never_5xx_and_match_the_schema(client):
    tenant = make_tenant(client, "schemathesis")
    tenant.put("/v1/distributors/alice", {"nickname": "alice"}, scope="sdk")
    auth = {"Authorization": f"Bearer {tenant.admin_key}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    def run(operation, mode: GenerationMode, examples: int) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def check(case) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver.local")
            kwargs.pop("cookies", None)
            if isinstance(kwargs.get("data"), bytes | str):  # raw (invalid) bodies
                kwargs["content"] = kwargs.pop("data")
            kwargs["headers"] = {**kwargs["headers"], **auth}  # a real key, not a generated one
            response = client.request(**kwargs)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:  # nothing of this operation can be made invalid (no parameters)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (AssertionError, FailureGroup) as exc:  # schemathesis failures: collect all
            failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])

    operations = _operations(client)
    for operation in operations:
        run(operation, GenerationMode.POSITIVE, EXAMPLES)
        if _takes_input(operation):  # an id alone in the path is any string: nothing invalid
            run(operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
    assert not failures, "\n\n".join(failures[:8])
    # The run did exercise the API: successes and client errors, never a server error.
    assert sum(statuses.values()) >= 10 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and not any(s >= 500 for s in statuses)
    assert any(400 <= s < 500 for s in statuses)
