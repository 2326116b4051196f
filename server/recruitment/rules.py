"""The recruitment rule, in one place: who may share under which mode.

A distributor row carries a recruitment state: ``new`` (registered, not a distributor yet),
``applied`` (awaiting an operator), ``approved`` or ``rejected``. Under the ``open`` mode
everyone registered shares except a rejected user; under ``approval`` and ``threshold`` only an
approved one. Holds and freezes (``status``) are a separate, operator's matter.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["RecruitmentState", "binding_reason", "initial_state", "refusal"]

RecruitmentState = Literal["new", "applied", "approved", "rejected"]

_NAMED = {
    "new": "is not a distributor",
    "applied": "has applied and awaits approval",
    "rejected": "was rejected",
}


def initial_state(mode: str) -> RecruitmentState:
    """The state of a distributor row made under ``mode``."""
    return "approved" if mode == "open" else "new"


def refusal(mode: str, state: str) -> str | None:
    """``None`` when a user in ``state`` may share under ``mode``; else why not (the state)."""
    if state == "approved" or (mode == "open" and state != "rejected"):
        return None
    return _NAMED.get(state, "is not a distributor")


def binding_reason(mode: str, state: str | None) -> str | None:
    """The attribution reason for an arrival through a user who may not share, else ``None``."""
    if state is None:
        return "inviter_not_distributor"
    if refusal(mode, state) is None:
        return None
    return {"applied": "inviter_applied", "rejected": "inviter_rejected"}.get(
        state, "inviter_not_distributor"
    )
