"""Operator pages: home, program rules and campaigns (list, create, live board, close)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromQuery, PathParameter
from litestar.response import Redirect, Template

from server.campaigns.leaderboard import Leaderboards, preview_awards
from server.campaigns.schemas import Campaign, CampaignIn
from server.campaigns.service import (
    close_campaign,
    create_campaign,
    get_campaign,
    list_campaigns,
    update_campaign,
)
from server.console.forms import int_field, local_datetime, parse_prizes, text, to_struct
from server.console.sessions import audit_trail, record_audit
from server.console.web import Console, ConsoleCall, field_errors
from server.errors import InvalidInput
from server.program.schemas import ProgramIn
from server.program.service import get_program, put_program
from server.stats.service import daily_figures, roll_up_in_background

__all__ = ["CampaignPages", "ProgramPages", "home"]

CampaignIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
BOARD_ROWS = 20


@get("/console")
async def home(console: Console) -> Template:
    """Overview: today and 30 days of figures from the daily aggregates, red packets left."""
    figures = await daily_figures(console.db, console.tenant_id)
    campaigns = (await list_campaigns(console.db, console.tenant_id, "open", 50, None)).campaigns
    red_packets_left = sum(
        c.red_packet_state.remaining_fen or 0 for c in campaigns if c.red_packet_state
    )
    chart = msgspec.json.encode({"days": figures.days, "series": figures.series}).decode()
    response = console.page(
        "home.html",
        campaigns=campaigns[:10],
        figures=figures,
        red_packets_left=red_packets_left,
        chart_json=chart.replace("</", "<\\/"),
    )
    # Fold what was appended since the last view after the response is sent: the page reads
    # aggregates only and never waits for a backlog.
    response.background = BackgroundTask(roll_up_in_background, console.db)
    return response


class ProgramPages(Controller):
    path = "/console/program"

    @get()
    async def show(self, console: Console) -> Template:
        program = await get_program(console.db, console.tenant_id)
        audit = await audit_trail(console.db, console.tenant_id, "program")
        return console.page("program.html", program=program, errors={}, audit=audit)

    @post(status_code=200)
    async def save(self, console: Console) -> Response[Any]:
        form = await console.form()
        current = await get_program(console.db, console.tenant_id)
        levels = [int_field(form, f"commission_bps_{n}") for n in (1, 2, 3)]
        try:
            data = to_struct(
                {
                    **msgspec.structs.asdict(current),
                    "updated_at": None,
                    "bind_mode": text(form, "bind_mode"),
                    "bind_validity_days": int_field(form, "bind_validity_days"),
                    "commission_bps": [v for v in levels if v is not None],
                    "freeze_days": int_field(form, "freeze_days"),
                    "self_purchase_commission": text(form, "self_purchase_commission") == "on",
                    "clawback": text(form, "clawback"),
                    "payout_threshold_fen": int_field(form, "payout_threshold_fen"),
                    "timezone": text(form, "timezone"),
                    "landing_url": text(form, "landing_url"),
                    "payout_layout": msgspec.to_builtins(current.payout_layout),
                },
                ProgramIn,
            )
            async with console.db.transaction() as tx:
                await put_program(tx, console.tenant_id, data)
                await record_audit(tx, console.session, "program", "program.updated")
        except (InvalidInput, msgspec.ValidationError) as exc:
            errors = {e.field.split("[")[0]: e.message for e in field_errors(exc)}
            audit = await audit_trail(console.db, console.tenant_id, "program")
            shown = _program_echo(current, form)
            return console.page("program.html", 422, program=shown, errors=errors, audit=audit)
        return Redirect("/console/program?saved=1", status_code=303)


def _program_echo(current: Any, form: Any) -> dict[str, Any]:
    """What the operator typed, to show again beside the messages."""
    shown = msgspec.structs.asdict(current)
    for name in ("bind_mode", "clawback", "timezone", "landing_url"):
        shown[name] = text(form, name)
    for name in ("bind_validity_days", "freeze_days", "payout_threshold_fen"):
        shown[name] = text(form, name)
    shown["commission_bps"] = [text(form, f"commission_bps_{n}") for n in (1, 2, 3)]
    shown["self_purchase_commission"] = text(form, "self_purchase_commission") == "on"
    return shown


def _campaign_in(form: Any, tz: str, previous: Campaign | None = None) -> CampaignIn:
    """The posted campaign form as the API's ``CampaignIn`` (its validation, its messages).

    Red-packet settings the form does not show (count, daily cap, seed) are kept from
    ``previous`` when editing.
    """
    red_packet = None
    if text(form, "rp_mode"):
        kept = previous.red_packet if previous is not None else None
        red_packet = {
            "count": kept.count if kept else None,
            "seed": kept.seed if kept else None,
            "daily_cap_per_inviter": kept.daily_cap_per_inviter if kept else None,
            "mode": text(form, "rp_mode"),
            "budget_fen": int_field(form, "rp_budget_fen"),
            "amount_fen": int_field(form, "rp_amount_fen"),
            "min_fen": int_field(form, "rp_min_fen"),
            "max_fen": int_field(form, "rp_max_fen"),
        }
        red_packet = {k: v for k, v in red_packet.items() if v is not None}
    return to_struct(
        {
            "name": text(form, "name"),
            "starts_at": local_datetime(form, "starts_at", tz),
            "ends_at": local_datetime(form, "ends_at", tz),
            "metric": text(form, "metric"),
            "prizes": parse_prizes(text(form, "prizes")),
            "min_score": int_field(form, "min_score"),
            "red_packet": red_packet,
        },
        CampaignIn,
    )


def _campaign_form(campaign: Campaign, tz: str) -> dict[str, str]:
    """A campaign as the values of its form, times in the program's time zone."""
    zone = ZoneInfo(tz)

    def local(value: str) -> str:
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%dT%H:%M")

    form = {
        "name": campaign.name,
        "starts_at": local(campaign.starts_at),
        "ends_at": local(campaign.ends_at),
        "metric": campaign.metric,
        "prizes": "\n".join(f"{p.rank_from}-{p.rank_to} {p.amount_fen}" for p in campaign.prizes),
        "min_score": "" if campaign.min_score is None else str(campaign.min_score),
    }
    rp = campaign.red_packet
    if rp is not None:
        form.update(rp_mode=rp.mode, rp_budget_fen=str(rp.budget_fen),
                    rp_amount_fen=str(rp.amount_fen or ""), rp_min_fen=str(rp.min_fen),
                    rp_max_fen=str(rp.max_fen or ""))  # fmt: skip
    return form


def prize_for_rank(campaign: Campaign, rank: int) -> int:
    for prize in campaign.prizes:
        if prize.rank_from <= rank <= prize.rank_to:
            return prize.amount_fen
    return 0


class CampaignPages(Controller):
    path = "/console/campaigns"

    @get()
    async def index(self, console: Console, cursor: FromQuery[str | None] = None) -> Template:
        found = await list_campaigns(console.db, console.tenant_id, None, 50, cursor)
        return console.page("campaigns.html", page_=found)

    @get("/new")
    async def new(self, console: Console) -> Template:
        return console.page("campaign_new.html", errors={}, form={}, action="/console/campaigns")

    @post(status_code=200)
    async def create(self, console: Console) -> Response[Any]:
        form = await console.form()
        program = await get_program(console.db, console.tenant_id)
        try:
            data = _campaign_in(form, program.timezone)
            async with console.db.transaction() as tx:
                campaign = await create_campaign(tx, console.tenant_id, data)
                await record_audit(tx, console.session, campaign.id, "campaign.created")
        except (InvalidInput, msgspec.ValidationError) as exc:
            errors = {e.field.split(".")[0].split("[")[0]: e.message for e in field_errors(exc)}
            shown = {k: v for k, v in form.items() if isinstance(v, str)}
            return console.page(
                "campaign_new.html", 422, errors=errors, form=shown, action="/console/campaigns"
            )
        return Redirect(f"/console/campaigns/{campaign.id}", status_code=303)

    @get("/{campaign_id:str}/edit")
    async def edit_form(self, console: Console, campaign_id: CampaignIdPath) -> Template:
        campaign = await get_campaign(console.db, console.tenant_id, campaign_id)
        program = await get_program(console.db, console.tenant_id)
        return console.page(
            "campaign_new.html",
            errors={},
            form=_campaign_form(campaign, program.timezone),
            action=f"/console/campaigns/{campaign_id}/edit",
            campaign=campaign,
        )

    @post("/{campaign_id:str}/edit", status_code=200)
    async def edit(self, console: Console, campaign_id: CampaignIdPath) -> Response[Any]:
        form = await console.form()
        program = await get_program(console.db, console.tenant_id)
        previous = await get_campaign(console.db, console.tenant_id, campaign_id)
        try:
            data = _campaign_in(form, program.timezone, previous)
            async with console.db.transaction() as tx:
                await update_campaign(tx, console.tenant_id, campaign_id, data)
                await record_audit(tx, console.session, campaign_id, "campaign.edited")
        except (InvalidInput, msgspec.ValidationError) as exc:
            errors = {e.field.split(".")[0].split("[")[0]: e.message for e in field_errors(exc)}
            shown = {k: v for k, v in form.items() if isinstance(v, str)}
            return console.page(
                "campaign_new.html",
                422,
                errors=errors,
                form=shown,
                action=f"/console/campaigns/{campaign_id}/edit",
                campaign=previous,
            )
        return Redirect(f"/console/campaigns/{campaign_id}", status_code=303)

    @get("/{campaign_id:str}")
    async def show(self, console: Console, campaign_id: CampaignIdPath) -> Template:
        campaign = await get_campaign(console.db, console.tenant_id, campaign_id)
        audit = await audit_trail(console.db, console.tenant_id, campaign_id)
        board = await self._board(console, campaign)
        return console.page("campaign.html", campaign=campaign, board=board, audit=audit)

    @get("/{campaign_id:str}/board")
    async def board(self, console: Console, campaign_id: CampaignIdPath) -> Template:
        campaign = await get_campaign(console.db, console.tenant_id, campaign_id)
        board = await self._board(console, campaign)
        return console.page("board.html", campaign=campaign, board=board)

    async def _board(self, console: ConsoleCall, campaign: Campaign) -> list[tuple[Any, int]]:
        program = await get_program(console.db, console.tenant_id)
        board = console.request.app.state.board
        boards = Leaderboards(console.db, board, console.tenant_id, program)
        top = await boards.top(campaign.id, "campaign", None, BOARD_ROWS)
        return [(entry, prize_for_rank(campaign, entry.rank)) for entry in top.entries]

    @get("/{campaign_id:str}/close")
    async def confirm_close(self, console: Console, campaign_id: CampaignIdPath) -> Template:
        campaign = await get_campaign(console.db, console.tenant_id, campaign_id)
        program = await get_program(console.db, console.tenant_id)
        awards = (
            campaign.awards
            if campaign.status == "closed"
            else await preview_awards(
                console.db, console.request.app.state.board, console.tenant_id, program, campaign_id
            )
        )
        return console.page("campaign_close.html", campaign=campaign, awards=awards)

    @post("/{campaign_id:str}/close", status_code=303)
    async def close(self, console: Console, campaign_id: CampaignIdPath) -> Redirect:
        await console.form()
        program = await get_program(console.db, console.tenant_id)
        async with console.db.transaction() as tx:
            await close_campaign(tx, console.tenant_id, program, campaign_id)
            await record_audit(tx, console.session, campaign_id, "campaign.closed")
        return Redirect(f"/console/campaigns/{campaign_id}/close", status_code=303)
