"""Distributor applications and the operator's decision (docs/api.md, "Recruitment")."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["ApplicationIn", "DecisionIn", "RecruitmentOut"]

FormValue = Annotated[str, msgspec.Meta(max_length=500)]


class ApplicationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The program's recruitment.form_fields, by name; at most 20, each ≤ 500 characters.
    form: Annotated[dict[str, FormValue], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=dict
    )


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Why the application is rejected (shown to the applicant), 1-200 characters.
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class RecruitmentOut(msgspec.Struct):
    """A distributor's recruitment: ``state`` new | applied | approved | rejected."""

    state: str
    reason: str | None = None
    form: dict[str, str] = msgspec.field(default_factory=dict)
    updated_at: str | None = None
