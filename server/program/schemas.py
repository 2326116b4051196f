"""The program: a tenant's standing distribution rules (API.md, "Program")."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["BindMode", "Clawback", "Program", "ProgramIn"]

BindMode = Literal["first", "new_user_only", "last"]
Clawback = Literal["net_off", "absorb"]
Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class ProgramIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PUT /v1/program``: every field optional; an omitted one takes its default."""

    bind_mode: BindMode = "first"
    # 关系有效期 / 锁客期: days a binding lasts; null = forever.
    bind_validity_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    # Level 1 first. 1–3 levels, sum <= 10000 bps (4+ levels are refused: see rewards).
    commission_bps: list[Bps] = msgspec.field(default_factory=lambda: [1000, 500])
    freeze_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 7
    self_purchase_commission: bool = False
    clawback: Clawback = "net_off"
    payout_threshold_fen: Annotated[int, msgspec.Meta(ge=0)] = 0
    timezone: str = "Asia/Shanghai"
    landing_url: str = "https://example.com/landing"
    # Hosts avatars may be fetched from for posters (exact host or ".suffix").
    avatar_hosts: list[Annotated[str, msgspec.Meta(min_length=1, max_length=253)]] = msgspec.field(
        default_factory=lambda: [".qlogo.cn", ".qpic.cn"]
    )


class Program(ProgramIn, kw_only=True):
    updated_at: str | None = None
