"""Templates that failed to render, remembered by content so a public link cannot make the same
template fail again and again (each try would cost a render up to the deadline).

A template over the render budget (or one that crashed or exhausted a worker) fails the same
way every time: it is remembered until it leaves the bounded memo; a new ``PUT`` of different
content is a different key. A render that ran past the deadline may have met a busy machine,
so that is remembered for ``RETRY_AFTER_S`` only.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from server.errors import FieldError, ServiceError

__all__ = ["Failure", "PosterUnavailable", "RenderFailures", "template_key"]

RETRY_AFTER_S = 120.0
KEPT = 1000


def template_key(document: str) -> str:
    """The content hash of a stored template document."""
    return hashlib.blake2b(document.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Failure:
    status: int  # 422: the template cannot be drawn; 503: it did not finish in time
    field: str  # JSON path in the template ("views[3].css.width"), or "template"
    message: str
    expires: float  # time.monotonic(); inf for failures that repeat


class PosterUnavailable(ServiceError):
    """A poster that cannot be drawn now (422) or did not render in time (503)."""

    def __init__(self, status: int, title: str, detail: str,
                 errors: list[FieldError] | None = None) -> None:  # fmt: skip
        super().__init__(detail, errors)
        self.status = status
        self.title = title
        self.slug = "poster-unavailable"


class RenderFailures:
    """A bounded memo: template content hash -> how it failed."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._failures: OrderedDict[str, Failure] = OrderedDict()

    def get(self, key: str) -> Failure | None:
        failure = self._failures.get(key)
        if failure is None:
            return None
        if failure.expires < time.monotonic():
            del self._failures[key]
            return None
        return failure

    def remember(self, key: str, status: int, field: str, message: str, *,
                 retry_after: float | None = None) -> Failure:  # fmt: skip
        expires = float("inf") if retry_after is None else time.monotonic() + retry_after
        failure = Failure(status, field.removeprefix("$.").removeprefix("$") or "template",
                          message, expires)  # fmt: skip
        self._failures[key] = failure
        self._failures.move_to_end(key)
        while len(self._failures) > self.kept:
            self._failures.popitem(last=False)
        return failure

    def __len__(self) -> int:
        return len(self._failures)
