"""Webhook endpoint schemas."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["Endpoint", "EndpointIn", "EndpointPage", "EventType"]

EventType = Literal[
    "commission.created",
    "refund.reversed",
    "campaign.closed",
    "settlement.approved",
    "settlement.paid",
    "distributor.approved",
    "distributor.rejected",
    "distributor.tier_changed",
    "withdrawal.requested",
    "withdrawal.approved",
    "withdrawal.paid",
    "withdrawal.rejected",
]


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]
    events: Annotated[list[EventType], msgspec.Meta(min_length=1)]


class Endpoint(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    created_at: str
    # Shown once: in the response that created or rotated it (never in a read or a replay).
    secret: str | None = None
    # Set on an Idempotency-Key replay of a creation or rotation, whose secret is withheld.
    note: str | None = None


class EndpointPage(msgspec.Struct):
    endpoints: list[Endpoint]
    next_cursor: str | None = None
