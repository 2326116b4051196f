"""The program: a tenant's standing distribution rules (docs/api.md, "Program")."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "BindMode",
    "Clawback",
    "PayoutColumn",
    "PayoutField",
    "PayoutLayout",
    "Program",
    "ProgramIn",
    "PromoteWhen",
    "Recruitment",
    "RecruitmentMode",
    "TierIn",
    "WithdrawalRules",
]

BindMode = Literal["first", "new_user_only", "last"]
Clawback = Literal["net_off", "absorb"]
Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
# What a payout file column holds (one settlement line per row): see server.settlements.payout.
PayoutField = Literal[
    "line_no", "detail_no", "distributor_id", "nickname", "amount", "transfer_ref",
    "settlement_id", "remark",
]  # fmt: skip


class PayoutColumn(msgspec.Struct, forbid_unknown_fields=True):
    field: PayoutField
    header: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class PayoutLayout(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The column layout of the payout file finance uploads to the brand's payout channel."""

    columns: Annotated[list[PayoutColumn], msgspec.Meta(min_length=1, max_length=16)]
    amount_unit: Literal["fen", "yuan"] = "yuan"
    # utf-8-sig: UTF-8 with a BOM (Excel, WeChat Pay); gbk: what most Chinese banks' batch
    # upload pages expect. Characters GBK lacks (emoji) become "?".
    encoding: Literal["utf-8-sig", "gbk"] = "utf-8-sig"
    header_row: bool = True
    # Text of the ``remark`` column; ``{settlement_id}`` and ``{cutoff_date}`` are filled in.
    remark: Annotated[str, msgspec.Meta(max_length=64)] = "佣金结算 {settlement_id}"


RecruitmentMode = Literal["open", "approval", "threshold"]
FormFieldName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class FormField(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A field of the distributor application form (姓名, 手机号 ...), a string of ≤ 500 chars."""

    name: FormFieldName
    label: Annotated[str, msgspec.Meta(max_length=64)] = ""
    required: bool = False


class Recruitment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who becomes a distributor: ``open`` (人人分销: anyone registered), ``approval``
    (指定分销: a user applies, an operator approves), ``threshold`` (满额分销: a user whose own
    paid orders, net of refunds, reach ``threshold_fen``)."""

    mode: RecruitmentMode = "open"
    threshold_fen: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
    # The application form (approval mode): at most 20 named fields.
    form_fields: Annotated[list[FormField], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )


class PromoteWhen(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Conditions of promotion into a tier; every one given must hold (see rewards.tiers)."""

    team_size_l1: Annotated[int, msgspec.Meta(ge=1, le=10**9)] | None = None
    team_sales_fen: Annotated[int, msgspec.Meta(ge=1, le=10**14)] | None = None
    team_sales_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None
    own_sales_fen: Annotated[int, msgspec.Meta(ge=1, le=10**14)] | None = None


class TierIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A distributor tier (分销员等级): its per-level rates and how one is promoted into it."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    commission_bps: list[Bps]
    promote_when: PromoteWhen | None = None


class WithdrawalRules(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """提现: what a distributor may ask for. Amounts in fen, the fee in bps (rounded down)."""

    min_fen: Annotated[int, msgspec.Meta(ge=1, le=10**12)] = 100
    # At most this much a day (the program's time zone), requests not rejected; null: no cap.
    max_per_day_fen: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
    fee_bps: Bps = 0
    # Seconds between a distributor's requests (not counting rejected ones).
    cooldown_seconds: Annotated[int, msgspec.Meta(ge=0, le=31 * 86_400)] = 0


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
    # The tenant's payout file layout; null = the ``generic_bank`` preset.
    payout_layout: PayoutLayout | None = None
    # The tenant's own short domain (e.g. https://go.brand.cn) for its share links, poster QR
    # codes and signed poster URLs; null: the service's LIEBIAN_PUBLIC_URL.
    short_link_base_url: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    # The mini-program page a share opens (wxacode.getUnlimited's `page`), returned with each
    # link beside its scene: a relative path such as "pages/index/index".
    mini_program_page: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    rate_limit_per_minute: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=1_000_000,
            description="Requests a minute each of the tenant's API keys may send; "
            "past it, 429 with Retry-After.",
        ),
    ] = 6000
    recruitment: Recruitment = msgspec.field(default_factory=Recruitment)
    # Tiers, lowest first (at most 10); empty: everyone earns commission_bps. The first tier
    # is where every distributor starts.
    tiers: Annotated[list[TierIn], msgspec.Meta(max_length=10)] = msgspec.field(
        default_factory=list
    )
    # Withdrawal rules; null: distributors cannot ask (money moves by settlements only).
    withdrawal: WithdrawalRules | None = None


class Program(ProgramIn, kw_only=True):
    updated_at: str | None = None
