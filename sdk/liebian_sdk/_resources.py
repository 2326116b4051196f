"""The API's resources, written once for `Client` and `AsyncClient` (see `_core.endpoint`).

Each method returns a `Call`; on a `Client` the caller gets the decoded response, on an
`AsyncClient` a coroutine of it. Writes take `idempotency_key=`; without it one is generated per
call and reused by that call's retries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from . import webhooks as _webhooks
from ._core import Call, M, Resource, compact, decoder, endpoint, raw, rfc3339, segment
from ._models import (
    Campaign,
    CampaignClosing,
    Distributor,
    Leaderboard,
    LeaderboardRank,
    LedgerPage,
    Link,
    Order,
    OrderExplanation,
    Prize,
    Program,
    RedPacket,
    Referral,
    Refund,
    Settlement,
    TeamPage,
    Withdrawal,
    WithdrawalPage,
    Wxacode,
)

Tier = Literal["seed", "koc", "member"]
BindMode = Literal["first", "new_user_only", "last"]
Clawback = Literal["net_off", "absorb"]
Metric = Literal["invites", "orders", "gmv", "commission"]
Period = Literal["day", "week", "month", "campaign"]
ImageFormat = Literal["png", "jpeg"]
EnvVersion = Literal["release", "trial", "develop"]
ExportFormat = Literal["csv", "xlsx"]
ExportLang = Literal["zh", "en"]
DateTimeLike = datetime | str
"""A timezone-aware `datetime`, or an RFC 3339 string with an offset."""

_distributor = decoder(Distributor)
_settlement = decoder(Settlement)
_campaign = decoder(Campaign)
_program = decoder(Program)


class Distributors(Resource[M]):
    """Distributors (分销员), keyed by the tenant's own user id (openid/unionid, 1–64 chars)."""

    @endpoint
    def upsert(
        self,
        distributor_id: str,
        nickname: str,
        avatar_url: str | None = None,
        tier: Tier | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Distributor]:
        """Create or update a distributor (`PUT /v1/distributors/{distributor_id}`)."""
        body = compact(nickname=nickname, avatar_url=avatar_url, tier=tier)
        path = f"/v1/distributors/{segment(distributor_id)}"
        return Call("PUT", path, _distributor, json=body, idempotency_key=idempotency_key)

    @endpoint
    def get(self, distributor_id: str) -> Call[Distributor]:
        """Profile, inviter, counts and balance (fen) of a distributor."""
        return Call("GET", f"/v1/distributors/{segment(distributor_id)}", _distributor)

    @endpoint
    def ledger(
        self, distributor_id: str, limit: int | None = None, cursor: str | None = None
    ) -> Call[LedgerPage]:
        """One page of ledger entries, newest first (`limit` ≤ 500, server default 50)."""
        path = f"/v1/distributors/{segment(distributor_id)}/ledger"
        params = compact(limit=limit, cursor=cursor)
        return Call("GET", path, decoder(LedgerPage), params=params)

    @endpoint
    def team(
        self,
        distributor_id: str,
        level: int = 1,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Call[TeamPage]:
        """One page of the users `level` steps below a distributor (1 = invited directly)."""
        path = f"/v1/distributors/{segment(distributor_id)}/team"
        params = compact(level=level, limit=limit, cursor=cursor)
        return Call("GET", path, decoder(TeamPage), params=params)

    @endpoint
    def apply(
        self,
        distributor_id: str,
        form: Mapping[str, str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Distributor]:
        """Apply to become a distributor (the program's `approval` recruitment mode), with the
        program's form fields; `.recruitment.state` is then "applied"."""
        path = f"/v1/distributors/{segment(distributor_id)}/application"
        body = {"form": dict(form or {})}
        return Call("POST", path, _distributor, json=body, idempotency_key=idempotency_key)

    @endpoint
    def withdraw(
        self, distributor_id: str, amount_fen: int, *, idempotency_key: str | None = None
    ) -> Call[Withdrawal]:
        """提现: ask for `amount_fen` of the available balance (the program's withdrawal rules
        apply); the covered entries are locked at once. Pass the same `idempotency_key` when
        retrying a request the user made once."""
        path = f"/v1/distributors/{segment(distributor_id)}/withdrawals"
        body = {"amount_fen": amount_fen}
        return Call("POST", path, decoder(Withdrawal), json=body, idempotency_key=idempotency_key)

    @endpoint
    def withdrawals(
        self, distributor_id: str, limit: int | None = None, cursor: str | None = None
    ) -> Call[WithdrawalPage]:
        """One page of a distributor's withdrawals, oldest first."""
        path = f"/v1/distributors/{segment(distributor_id)}/withdrawals"
        params = compact(limit=limit, cursor=cursor)
        return Call("GET", path, decoder(WithdrawalPage), params=params)

    @endpoint
    def approve(
        self, distributor_id: str, *, idempotency_key: str | None = None
    ) -> Call[Distributor]:
        """Approve a user as a distributor (admin scope); webhook `distributor.approved`."""
        path = f"/v1/distributors/{segment(distributor_id)}/approve"
        return Call("POST", path, _distributor, idempotency_key=idempotency_key)

    @endpoint
    def reject(
        self, distributor_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> Call[Distributor]:
        """Reject an application with a reason (admin scope); webhook `distributor.rejected`."""
        path = f"/v1/distributors/{segment(distributor_id)}/reject"
        body = {"reason": reason}
        return Call("POST", path, _distributor, json=body, idempotency_key=idempotency_key)


class Links(Resource[M]):
    """Share links (推广链接); the same input returns the same link."""

    @endpoint
    def create(
        self,
        distributor_id: str,
        campaign_id: str | None = None,
        channel: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Link]:
        """A distributor's link: `.code`, `.scene` (≤ 32 chars, for a mini-program code), `.url`."""
        body = compact(distributor_id=distributor_id, campaign_id=campaign_id, channel=channel)
        return Call("POST", "/v1/links", decoder(Link), json=body, idempotency_key=idempotency_key)

    @endpoint
    def wxacode(
        self,
        code: str,
        page: str | None = None,
        width: int | None = None,
        env_version: EnvVersion | None = None,
        check_path: bool | None = None,
        is_hyaline: bool | None = None,
    ) -> Call[bytes]:
        """The link's mini-program code (小程序码) image bytes, scene = the link's `scene`.

        Generated by WeChat once per link and options, then stored (the tenant's credentials
        are set with `PUT /v1/wechat`), or the image uploaded with `upload_wxacode`. `page`: a
        page of the published mini-program without a leading "/" (default: its home page);
        `width` 280-1280 px (430); `env_version` "release" | "trial" | "develop".
        """
        flags = {"check_path": check_path, "is_hyaline": is_hyaline}
        booleans = {k: str(v).lower() for k, v in flags.items() if v is not None}
        params = compact(page=page, width=width, env_version=env_version, **booleans)
        return Call("GET", f"/v1/links/{segment(code)}/wxacode", raw, params=params)

    @endpoint
    def upload_wxacode(
        self, code: str, image: bytes, *, idempotency_key: str | None = None
    ) -> Call[Wxacode]:
        """Store the brand's own mini-program code image (PNG or JPEG, at most 2 MB and
        1280x1280 px) for a link, for brands that keep their AppSecret to themselves."""
        if not isinstance(image, bytes | bytearray):
            raise TypeError("image must be the PNG or JPEG file's bytes")
        media = "image/jpeg" if bytes(image[:3]) == b"\xff\xd8\xff" else "image/png"
        return Call("PUT", f"/v1/links/{segment(code)}/wxacode", decoder(Wxacode),
                    content=bytes(image), content_type=media,
                    idempotency_key=idempotency_key)  # fmt: skip


class Referrals(Resource[M]):
    """Bindings (推广关系): call when a user arrives through a share."""

    @endpoint
    def bind(
        self,
        user_id: str,
        scene: str | None = None,
        code: str | None = None,
        occurred_at: DateTimeLike | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Referral]:
        """Report an arrival by `scene` (mini-program code) or `code` (link); exactly one of them.

        Returns the decision: `.outcome` "bound" | "kept" | "rejected", `.reason`, `.inviter_id`,
        `.upline`.
        """
        if (scene is None) == (code is None):
            raise ValueError("pass exactly one of scene= or code=")
        at = None if occurred_at is None else rfc3339(occurred_at)
        body = compact(user_id=user_id, scene=scene, code=code, occurred_at=at)
        return Call(
            "POST", "/v1/referrals", decoder(Referral), json=body, idempotency_key=idempotency_key
        )


class Orders(Resource[M]):
    """Paid orders and refunds; replay-safe by order id and refund id."""

    @endpoint
    def paid(
        self,
        order_id: str,
        user_id: str,
        amount_fen: int,
        paid_at: DateTimeLike,
        campaign_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Order]:
        """Report a paid order of `amount_fen`; returns the `.commissions` it credited."""
        body = compact(
            order_id=order_id,
            user_id=user_id,
            amount_fen=amount_fen,
            paid_at=rfc3339(paid_at),
            campaign_id=campaign_id,
        )
        return Call(
            "POST", "/v1/orders", decoder(Order), json=body, idempotency_key=idempotency_key
        )

    @endpoint
    def refund(
        self, order_id: str, refund_id: str, amount_fen: int, *, idempotency_key: str | None = None
    ) -> Call[Refund]:
        """Report a (partial) refund; returns the `.reversals`. Over-refunding raises 422."""
        path = f"/v1/orders/{segment(order_id)}/refunds"
        body = {"refund_id": refund_id, "amount_fen": amount_fen}
        return Call("POST", path, decoder(Refund), json=body, idempotency_key=idempotency_key)

    @endpoint
    def explain(self, order_id: str) -> Call[OrderExplanation]:
        """The binding events, upline snapshot, rates and arithmetic behind an order's rewards."""
        return Call("GET", f"/v1/orders/{segment(order_id)}/explain", decoder(OrderExplanation))


class ProgramResource(Resource[M]):
    """The tenant's standing rules (admin scope to change)."""

    @endpoint
    def get(self) -> Call[Program]:
        """The current program."""
        return Call("GET", "/v1/program", _program)

    @endpoint
    def put(
        self,
        *,
        bind_mode: BindMode,
        commission_bps: Sequence[int],
        bind_validity_days: int | None = None,
        freeze_days: int | None = None,
        self_purchase_commission: bool | None = None,
        clawback: Clawback | None = None,
        payout_threshold_fen: int | None = None,
        timezone: str | None = None,
        landing_url: str | None = None,
        avatar_hosts: Sequence[str] | None = None,
        short_link_base_url: str | None = None,
        mini_program_page: str | None = None,
        recruitment: Mapping[str, Any] | None = None,
        withdrawal: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Program]:
        """Replace the program. `bind_validity_days=None` means bindings never lapse; other
        None arguments are left out, so the server's defaults apply (freeze_days 7,
        timezone Asia/Shanghai...)."""
        body = compact(
            bind_mode=bind_mode,
            commission_bps=list(commission_bps),
            freeze_days=freeze_days,
            self_purchase_commission=self_purchase_commission,
            clawback=clawback,
            payout_threshold_fen=payout_threshold_fen,
            timezone=timezone,
            landing_url=landing_url,
            avatar_hosts=None if avatar_hosts is None else list(avatar_hosts),
            short_link_base_url=short_link_base_url,
            mini_program_page=mini_program_page,
            recruitment=None if recruitment is None else dict(recruitment),
            withdrawal=None if withdrawal is None else dict(withdrawal),
        )
        body["bind_validity_days"] = bind_validity_days
        return Call("PUT", "/v1/program", _program, json=body, idempotency_key=idempotency_key)


class Campaigns(Resource[M]):
    """Time-boxed contests with leaderboards, TOP-N prizes and red packets (admin scope)."""

    @endpoint
    def create(
        self,
        name: str,
        starts_at: DateTimeLike,
        ends_at: DateTimeLike,
        metric: Metric,
        prizes: Sequence[Prize | Mapping[str, int]] = (),
        min_score: int | None = None,
        red_packet: RedPacket | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Campaign]:
        """Create a campaign; its metrics count inside [starts_at, ends_at)."""
        body = compact(
            name=name,
            starts_at=rfc3339(starts_at),
            ends_at=rfc3339(ends_at),
            metric=metric,
            prizes=list(prizes),
            min_score=min_score,
            red_packet=red_packet,
        )
        return Call("POST", "/v1/campaigns", _campaign, json=body, idempotency_key=idempotency_key)

    @endpoint
    def get(self, campaign_id: str) -> Call[Campaign]:
        """A campaign by id."""
        return Call("GET", f"/v1/campaigns/{segment(campaign_id)}", _campaign)

    @endpoint
    def close(
        self, campaign_id: str, *, idempotency_key: str | None = None
    ) -> Call[CampaignClosing]:
        """Close a campaign and award its prizes; closing twice returns the same awards."""
        path = f"/v1/campaigns/{segment(campaign_id)}/close"
        return Call("POST", path, decoder(CampaignClosing), idempotency_key=idempotency_key)


class Leaderboards(Resource[M]):
    """Campaign leaderboards, in the program's time zone."""

    @endpoint
    def get(
        self,
        campaign_id: str,
        period: Period = "campaign",
        limit: int = 50,
        at: DateTimeLike | None = None,
    ) -> Call[Leaderboard]:
        """The top `limit` entries for the `period` containing `at` (default: now)."""
        path = f"/v1/campaigns/{segment(campaign_id)}/leaderboard"
        params = compact(period=period, limit=limit, at=None if at is None else rfc3339(at))
        return Call("GET", path, decoder(Leaderboard), params=params)

    @endpoint
    def rank(
        self,
        campaign_id: str,
        distributor_id: str,
        period: Period = "campaign",
        at: DateTimeLike | None = None,
        around: int | None = None,
    ) -> Call[LeaderboardRank]:
        """A distributor's own rank and score, with `around` neighbours `above` and `below`."""
        path = f"/v1/campaigns/{segment(campaign_id)}/leaderboard/{segment(distributor_id)}"
        at_text = None if at is None else rfc3339(at)
        params = compact(period=period, at=at_text, around=around)
        return Call("GET", path, decoder(LeaderboardRank), params=params)


class Posters(Resource[M]):
    """Share posters whose QR code leads to the distributor's link."""

    @endpoint
    def get(
        self,
        distributor_id: str,
        campaign_id: str | None = None,
        template: str | None = None,
        format: ImageFormat = "png",
    ) -> Call[bytes]:
        """The poster image's bytes (PNG or JPEG)."""
        path = f"/v1/posters/{segment(distributor_id)}"
        params = compact(campaign_id=campaign_id, template=template, format=format)
        return Call("GET", path, raw, params=params)


class Settlements(Resource[M]):
    """Finance batches: draft → approved → paid (admin scope)."""

    @endpoint
    def create(
        self, cutoff: DateTimeLike, *, idempotency_key: str | None = None
    ) -> Call[Settlement]:
        """A draft of every entry whose freeze window ended at or before `cutoff`."""
        body = {"cutoff": rfc3339(cutoff)}
        return Call(
            "POST", "/v1/settlements", _settlement, json=body, idempotency_key=idempotency_key
        )

    @endpoint
    def get(self, settlement_id: str) -> Call[Settlement]:
        """A settlement with its lines."""
        return Call("GET", f"/v1/settlements/{segment(settlement_id)}", _settlement)

    @endpoint
    def approve(
        self, settlement_id: str, *, idempotency_key: str | None = None
    ) -> Call[Settlement]:
        """Approve a draft, locking its entries."""
        path = f"/v1/settlements/{segment(settlement_id)}/approve"
        return Call("POST", path, _settlement, idempotency_key=idempotency_key)

    @endpoint
    def paid(
        self,
        settlement_id: str,
        references: Mapping[str, str],
        *,
        idempotency_key: str | None = None,
    ) -> Call[Settlement]:
        """Mark an approved settlement paid, with a transfer reference per distributor id."""
        path = f"/v1/settlements/{segment(settlement_id)}/paid"
        body = {"references": dict(references)}
        return Call("POST", path, _settlement, json=body, idempotency_key=idempotency_key)

    @endpoint
    def export(
        self, settlement_id: str, format: ExportFormat = "csv", lang: ExportLang | None = None
    ) -> Call[bytes]:
        """The settlement as CSV (UTF-8 with BOM) or XLSX bytes; re-exports are identical.

        Column headers are Chinese unless `lang="en"`."""
        if format not in ("csv", "xlsx"):
            raise ValueError(f"format must be 'csv' or 'xlsx', not {format!r}")
        if lang not in (None, "zh", "en"):
            raise ValueError(f"lang must be 'zh' or 'en', not {lang!r}")
        path = f"/v1/settlements/{segment(settlement_id)}/export.{format}"
        return Call("GET", path, raw, params=compact(lang=lang))

    @endpoint
    def payout_file(self, settlement_id: str, layout: str | None = None) -> Call[bytes]:
        """The payout file of an approved settlement, in the tenant's layout or a preset
        (`generic_bank`: GBK; `wechat_transfer`: UTF-8 with BOM); bytes as served."""
        path = f"/v1/settlements/{segment(settlement_id)}/payout.csv"
        return Call("GET", path, raw, params=compact(layout=layout))


WithdrawalStatus = Literal["requested", "approved", "rejected", "paid"]
_withdrawal_page = decoder(WithdrawalPage)


class Withdrawals(Resource[M]):
    """Finance's withdrawal (提现) queue (admin scope): batches are all or nothing."""

    @endpoint
    def list(
        self,
        status: WithdrawalStatus | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Call[WithdrawalPage]:
        """One page of withdrawals, oldest first, of one `status` (None: every status)."""
        params = compact(status=status, limit=limit, cursor=cursor)
        return Call("GET", "/v1/withdrawals", _withdrawal_page, params=params)

    @endpoint
    def approve(
        self, ids: Sequence[str], *, idempotency_key: str | None = None
    ) -> Call[WithdrawalPage]:
        """Approve up to 500 requested withdrawals; approving again changes nothing, a
        rejected one is a `ConflictError`; webhook `withdrawal.approved`."""
        body = {"ids": list(ids)}
        return Call("POST", "/v1/withdrawals/approve", _withdrawal_page, json=body,
                    idempotency_key=idempotency_key)  # fmt: skip

    @endpoint
    def reject(
        self, ids: Sequence[str], reason: str, *, idempotency_key: str | None = None
    ) -> Call[WithdrawalPage]:
        """Reject up to 500 (requested or approved) with a reason: their entries are free
        again and the fee returned; a paid one is a `ConflictError`."""
        body = {"ids": list(ids), "reason": reason}
        return Call("POST", "/v1/withdrawals/reject", _withdrawal_page, json=body,
                    idempotency_key=idempotency_key)  # fmt: skip

    @endpoint
    def export(self, status: WithdrawalStatus = "approved") -> Call[bytes]:
        """The withdrawals of `status` as CSV bytes (UTF-8 with BOM), for the payout rail."""
        return Call("GET", "/v1/withdrawals/export.csv", raw, params={"status": status})

    @endpoint
    def paid(
        self, references: Mapping[str, str], *, idempotency_key: str | None = None
    ) -> Call[WithdrawalPage]:
        """Mark approved withdrawals paid: `{withdrawal_id: transfer_ref}` (up to 500)."""
        body = {"references": dict(references)}
        return Call("POST", "/v1/withdrawals/paid", _withdrawal_page, json=body,
                    idempotency_key=idempotency_key)  # fmt: skip


class Webhooks:
    """Webhook signature checks; local, so the same on `Client` and `AsyncClient`."""

    __slots__ = ()

    def verify(
        self, payload: bytes | str, header: str, secret: str | bytes, tolerance: int = 300
    ) -> dict[str, Any]:
        """See `liebian_sdk.webhooks.verify`."""
        return _webhooks.verify(payload, header, secret, tolerance)
