"""Errors raised by the SDK.

```
LiebianError
├── APIError                     a problem document: status, type, title, detail, errors
│   ├── ValidationError          400, 422: `.errors` lists (field, message) pairs
│   ├── AuthenticationError      401: missing or wrong API key
│   ├── PermissionDeniedError    403: right key, wrong scope (an `sdk` key on an admin endpoint)
│   ├── NotFoundError            404: absent, or another tenant's object
│   ├── ConflictError            409: e.g. an Idempotency-Key reused with a different body
│   ├── RateLimitError           429: `.retry_after` seconds, when the server said
│   └── ServerError              5xx
├── APIConnectionError           no answer: connect/read failures (alias: ConnectionError)
│   └── APITimeoutError          no answer in time
├── APIResponseValidationError   a 2xx body that does not fit the response model
└── WebhookSignatureError        a webhook delivery failed signature or freshness checks
```

Retryable errors (connection failures, timeouts, 429 and 5xx) are raised only after the
client's `max_retries` are used up.
"""

from __future__ import annotations

from typing import NamedTuple

import httpx
import msgspec

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AuthenticationError",
    "ConflictError",
    "ConnectionError",
    "FieldError",
    "LiebianError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
    "WebhookSignatureError",
]


class FieldError(NamedTuple):
    """One entry of a problem document's `errors`: which input field, and what is wrong."""

    field: str
    message: str


class _ProblemFieldError(msgspec.Struct):
    field: str = ""
    message: str = ""


class _Problem(msgspec.Struct):
    type: str = "about:blank"
    title: str = ""
    status: int | None = None
    detail: str | None = None
    errors: list[_ProblemFieldError] = []


_decode_problem = msgspec.json.Decoder(_Problem).decode


class LiebianError(Exception):
    """Base class of every error the SDK raises."""


class APIError(LiebianError):
    """The API answered with a non-2xx status and (usually) an `application/problem+json` body."""

    status: int
    type: str
    title: str
    detail: str | None
    errors: list[FieldError]
    response: httpx.Response | None

    def __init__(
        self,
        status: int,
        *,
        type: str = "about:blank",
        title: str = "",
        detail: str | None = None,
        errors: list[FieldError] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = list(errors or ())
        self.response = response
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status} {self.title}".rstrip()
        if self.detail:
            text += f": {self.detail}"
        if self.errors:
            text += " (" + "; ".join(f"{e.field}: {e.message}" for e in self.errors) + ")"
        return text

    @property
    def problem(self) -> dict[str, object]:
        """The problem document as a dict (`type`, `title`, `status`, `detail`, `errors`)."""
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }


class ValidationError(APIError):
    """400 or 422: the request was understood but its content is invalid; see `.errors`."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """403: the key is valid but its scope does not allow this call."""


class NotFoundError(APIError):
    """404: no such object for this tenant."""


class ConflictError(APIError):
    """409: the request conflicts with the current state (never retried)."""


class RateLimitError(APIError):
    """429: too many requests; `retry_after` is the server's hint in seconds, if it gave one."""

    retry_after: float | None = None


class ServerError(APIError):
    """5xx: the service failed; safe to retry writes with the same Idempotency-Key."""


class APIConnectionError(LiebianError):
    """No HTTP answer: DNS, connect, TLS or read failure."""


class APITimeoutError(APIConnectionError):
    """No HTTP answer within the client's timeout."""


# The name issue 9 promises; it shadows the builtin on star-imports, so prefer APIConnectionError.
ConnectionError = APIConnectionError


class APIResponseValidationError(LiebianError):
    """A 2xx response whose body does not fit the SDK's model (a server/SDK version mismatch)."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


class WebhookSignatureError(LiebianError):
    """A webhook payload's `Liebian-Signature` is missing, malformed, wrong or stale."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}


def error_from_response(response: httpx.Response, retry_after: float | None = None) -> APIError:
    """Build the error for a non-2xx response from its problem document (or its raw text)."""
    status = response.status_code
    try:
        problem = _decode_problem(response.content)
    except msgspec.DecodeError:
        # Not a problem document (a proxy's HTML page, an empty body): keep what can be kept.
        problem = _Problem(detail=response.text[:500] or None)
    if status == 429:
        cls: type[APIError] = RateLimitError
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, APIError)
    error = cls(
        status,
        type=problem.type,
        title=problem.title or response.reason_phrase,
        detail=problem.detail,
        errors=[FieldError(e.field, e.message) for e in problem.errors],
        response=response,
    )
    if isinstance(error, RateLimitError):
        error.retry_after = retry_after
    return error
