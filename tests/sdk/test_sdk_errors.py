"""Problem documents become one error class per status family, with the field errors."""

from __future__ import annotations

import asyncio

import httpx
import liebian_sdk as sdk
import pytest
from sdk_testing import Recorder, Run, Target, close, done

# A canned problem document: opaque text, for the status -> class mapping only (the app's own
# documents are read in test_field_errors_read_as_pairs_and_attributes and test_sdk_flow).
PROBLEM = {
    "type": "https://liebian.dev/problems/canned",
    "title": "Canned title",
    "status": 422,
    "detail": "canned detail",
    "errors": [{"field": "some_field", "message": "canned message"}],
}


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, sdk.ValidationError),
        (401, sdk.AuthenticationError),
        (403, sdk.PermissionDeniedError),
        (404, sdk.NotFoundError),
        (409, sdk.ConflictError),
        (418, sdk.APIError),
        (422, sdk.ValidationError),
        (429, sdk.RateLimitError),
        (500, sdk.ServerError),
        (502, sdk.ServerError),
        (503, sdk.ServerError),
    ],
)
def test_status_maps_to_error_class(
    status: int, error_class: type[sdk.APIError], run: Run, recorder: Recorder
) -> None:
    body = {**PROBLEM, "status": status}
    recorder.replies.append(
        httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})
    )
    with pytest.raises(error_class) as info:
        run(recorder, lambda c: c.orders.refund("wx-1", "rf-2", 10_000), max_retries=0)
    error = info.value
    assert type(error) is error_class
    assert isinstance(error, sdk.LiebianError)
    assert error.status == status
    assert error.type == PROBLEM["type"]
    assert error.title == PROBLEM["title"]
    assert error.detail == PROBLEM["detail"]
    assert error.errors == [("some_field", "canned message")]
    assert error.response is not None and error.response.status_code == status
    assert error.problem == body


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_field_errors_read_as_pairs_and_attributes(target: Target, kind: str) -> None:
    """The app's own problem document for a bad field, as the SDK exposes it."""

    async def scenario() -> sdk.ValidationError:
        app = target.client(kind, target.sdk_key)
        try:
            with pytest.raises(sdk.ValidationError) as info:
                await done(app.distributors.upsert("openid-alice", ""))
        finally:
            await close(app)
        return info.value

    error = asyncio.run(scenario())
    [(field, message)] = error.errors
    [pair] = error.errors
    assert isinstance(pair, sdk.FieldError)
    assert (pair.field, pair.message) == (field, message) and field == "nickname" and message
    assert f"nickname: {message}" in str(error) and "422" in str(error)
    assert error.response is not None and error.response.status_code == 422
    assert error.problem["errors"][0]["field"] == "nickname"


def test_non_json_error_body_keeps_status_and_text(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(sdk.ServerError) as info:
        run(recorder, lambda c: c.program.get(), max_retries=0)
    assert info.value.status == 502
    assert info.value.title == "Bad Gateway"
    assert info.value.detail == "<html>bad gateway</html>"
    assert info.value.errors == []


def test_sparse_problem_document(run: Run, recorder: Recorder) -> None:
    recorder.replies.append(httpx.Response(404, json={"status": 404}))
    with pytest.raises(sdk.NotFoundError) as info:
        run(recorder, lambda c: c.campaigns.get("cmp_99"))
    assert (info.value.type, info.value.title, info.value.detail) == (
        "about:blank",
        "Not Found",
        None,
    )


def test_hierarchy() -> None:
    for cls in (
        sdk.ValidationError,
        sdk.AuthenticationError,
        sdk.PermissionDeniedError,
        sdk.NotFoundError,
        sdk.ConflictError,
        sdk.RateLimitError,
        sdk.ServerError,
    ):
        assert issubclass(cls, sdk.APIError)
    for cls in (sdk.APIError, sdk.APIConnectionError, sdk.WebhookSignatureError):
        assert issubclass(cls, sdk.LiebianError)
    assert issubclass(sdk.APITimeoutError, sdk.APIConnectionError)
    assert issubclass(sdk.APIResponseValidationError, sdk.LiebianError)
