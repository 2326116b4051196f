"""Tier and withdrawal pages: the program's tiers, a distributor's tier; finance's withdrawal
queue (approve or reject in batches after a confirmation, export, mark paid from a CSV).

Every action calls the API's own service functions (server.program, server.tiers,
server.withdrawals), inside one transaction with its audit row.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Stream, Template

from server.console.finance import parse_references
from server.console.forms import text, to_struct
from server.console.sessions import audit_trail, record_audit
from server.console.web import Console, ConsoleCall, field_errors
from server.errors import InvalidInput
from server.program.schemas import ProgramIn
from server.program.service import get_program, put_program
from server.referrals import service as referrals
from server.tiers.service import set_tier
from server.withdrawals import service as withdrawals
from server.withdrawals.export import export_csv

__all__ = ["TierPages", "WithdrawalPages", "format_tiers", "parse_tiers"]

PAGE = 50
MAX_TIER_LINES = 10
MAX_BATCH = 500
Status = Literal["requested", "approved", "rejected", "paid"]
_STATUSES = ("requested", "approved", "rejected", "paid")
_CONDITIONS = ("team_size_l1", "team_sales_fen", "team_sales_days", "own_sales_fen")
_TIER_LINE = re.compile(r"^\s*(\S{1,32})\s+([0-9,，\s]+?)((?:\s+[a-z_0-9]+=\d{1,15})*)\s*$")
_ID = re.compile(r"^[^\s/]{1,64}$")


def parse_tiers(raw: str) -> list[dict[str, Any]]:
    """One tier a line, lowest first: ``name rate1,rate2[,rate3] [condition=N ...]``, e.g.
    ``gold 1500,800 team_sales_fen=100000 team_sales_days=30``. The API checks the rest."""
    lines = [line for line in raw.splitlines() if line.strip()]
    if len(lines) > MAX_TIER_LINES:
        raise InvalidInput("tiers", f"at most {MAX_TIER_LINES} lines (tiers)")
    tiers = []
    for number, line in enumerate(lines, 1):
        match = _TIER_LINE.match(line)
        rates = [r for r in re.split(r"[,，\s]+", match.group(2)) if r] if match else []
        if match is None or not rates or any(len(r) > 5 for r in rates):
            raise InvalidInput(
                "tiers",
                f"line {number}: write 'name rate1,rate2 [condition=N ...]', "
                "e.g. gold 1500,800 team_sales_fen=100000",
            )
        tier: dict[str, Any] = {"name": match.group(1), "commission_bps": [int(r) for r in rates]}
        conditions: dict[str, int] = {}
        for pair in match.group(3).split():
            name, value = pair.split("=", 1)
            if name not in _CONDITIONS:
                known = ", ".join(_CONDITIONS)
                raise InvalidInput("tiers", f"line {number}: {name!r} is not a condition ({known})")
            conditions[name] = int(value)
        if conditions:
            tier["promote_when"] = conditions
        tiers.append(tier)
    return tiers


def format_tiers(tiers: Any) -> str:
    """The program's tiers in the form's line format (parse_tiers reads it back)."""
    lines = []
    for t in tiers:
        line = f"{t.name} {','.join(str(r) for r in t.commission_bps)}"
        if t.promote_when is not None:
            for name in _CONDITIONS:
                value = getattr(t.promote_when, name)
                if value is not None:
                    line += f" {name}={value}"
        lines.append(line)
    return "\n".join(lines)


class TierPages(Controller):
    path = "/console/tiers"

    @get()
    async def show(
        self, console: Console, d: Annotated[str | None, QueryParameter(max_length=64)] = None
    ) -> Template:
        return await self._page(console, 200, {}, None, (d or "").strip() or None)

    async def _page(
        self,
        console: ConsoleCall,
        status: int,
        errors: dict[str, str],
        typed: str | None,
        who: str | None,
    ) -> Template:
        db, tenant_id = console.db, console.tenant_id
        program = await get_program(db, tenant_id)
        distributor = None
        if who is not None and _ID.match(who):
            distributor = await referrals.get_distributor(db, tenant_id, who)
        return console.page(
            "tiers.html",
            status,
            program=program,
            tiers_text=format_tiers(program.tiers) if typed is None else typed,
            distributor=distributor,
            errors=errors,
            audit=await audit_trail(db, tenant_id, "tiers"),
        )

    @post(status_code=200)
    async def save(self, console: Console) -> Response[Any]:
        form = await console.form()
        db = console.db
        current = await get_program(db, console.tenant_id)
        typed = text(form, "tiers")
        try:
            data = to_struct(
                {
                    **msgspec.to_builtins(current),
                    "updated_at": None,
                    "tiers": parse_tiers(typed),
                },
                ProgramIn,
            )
            async with db.transaction() as tx:
                await put_program(tx, console.tenant_id, data)
                await record_audit(tx, console.session, "tiers", "tiers.updated")
        except (InvalidInput, msgspec.ValidationError) as exc:
            errors = {e.field: e.message for e in field_errors(exc)}
            return await self._page(console, 422, errors, typed, None)
        return Redirect("/console/tiers?saved=1", status_code=303)

    @post("/assign", status_code=303)
    async def assign(self, console: Console) -> Response[Any]:
        """An operator sets a distributor's tier (the only demotion), with a reason."""
        form = await console.form()
        db, tenant_id = console.db, console.tenant_id
        who, name, reason = text(form, "distributor_id"), text(form, "name"), text(form, "reason")
        try:
            if not _ID.match(who):
                raise InvalidInput("distributor_id", "is required: 1-64 characters, no spaces")
            if not reason:
                raise InvalidInput("reason", "is required: say why the tier is changed")
            program = await get_program(db, tenant_id)
            async with db.transaction() as tx:
                await referrals.get_distributor_row(tx, tenant_id, who)
                await set_tier(tx, tenant_id, program, who, name)
                await record_audit(
                    tx, console.session, "tiers", "tier.set", f"{who} → {name}: {reason}"
                )
        except InvalidInput as exc:
            errors = {e.field: e.message for e in field_errors(exc)}
            return await self._page(console, 422, errors, None, who or None)
        return Redirect(f"/console/tiers?d={who}", status_code=303)


def _ids(form: Any) -> list[str]:
    ids = [v for v in form.getall("ids", []) if isinstance(v, str) and v.strip()]
    if not ids:
        raise InvalidInput("ids", "tick at least one withdrawal")
    if len(ids) > MAX_BATCH:
        raise InvalidInput("ids", f"at most {MAX_BATCH} withdrawals at once")
    if any(len(i) > 32 for i in ids):
        raise InvalidInput("ids", "a withdrawal id is at most 32 characters")
    return ids


class WithdrawalPages(Controller):
    path = "/console/withdrawals"

    @get()
    async def index(
        self,
        console: Console,
        status: FromQuery[Status] = "requested",
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        return await self._list(console, 200, status, cursor, {})

    async def _list(
        self,
        console: ConsoleCall,
        code: int,
        status: str,
        cursor: str | None,
        errors: dict[str, str],
    ) -> Template:
        db, tenant_id = console.db, console.tenant_id
        found = await withdrawals.list_withdrawals(db, tenant_id, status, None, PAGE, cursor)
        audit = await audit_trail(db, tenant_id, "withdrawals")
        return console.page("withdrawals.html", code, page_=found, status=status, errors=errors,
                            audit=audit)  # fmt: skip

    @post("/confirm", status_code=200)
    async def confirm(self, console: Console) -> Template:
        """Step 1 of a batch decision: show the ticked withdrawals and what will happen."""
        await console.form()
        form = await console.request.form()  # every ticked id (the checked form keeps one)
        action = form.get("action")
        reason = str(form.get("reason") or "").strip()
        try:
            if action not in ("approve", "reject"):
                raise InvalidInput("action", "must be approve or reject")
            ids = _ids(form)
            if action == "reject" and not 1 <= len(reason) <= 200:
                raise InvalidInput("reason", "say why the withdrawals are rejected (1-200 chars)")
            rows = await withdrawals.withdrawal_rows(console.db, console.tenant_id, ids)
        except InvalidInput as exc:
            errors = {e.field: e.message for e in field_errors(exc)}
            status = str(form.get("status") or "requested")
            shown = status if status in _STATUSES else "requested"
            return await self._list(console, 422, shown, None, errors)
        return console.page("withdrawals_confirm.html", action=action, rows=rows, reason=reason,
                            total=sum(w.amount_fen for w in rows))  # fmt: skip

    @post("/decide", status_code=303)
    async def decide(self, console: Console) -> Redirect:
        """Step 2: approve or reject the batch (all or nothing), as the API does."""
        await console.form()
        form = await console.request.form()
        db, tenant_id = console.db, console.tenant_id
        ids = _ids(form)
        action = form.get("action")
        reason = str(form.get("reason") or "").strip()
        async with db.transaction() as tx:
            if action == "approve":
                await withdrawals.approve(tx, tenant_id, ids)
            elif action == "reject":
                if not 1 <= len(reason) <= 200:
                    raise InvalidInput("reason", "say why the withdrawals are rejected")
                await withdrawals.reject(tx, tenant_id, ids, reason)
            else:
                raise InvalidInput("action", "must be approve or reject")
            await record_audit(tx, console.session, "withdrawals", f"withdrawals.{action}d",
                               f"{len(ids)}: {', '.join(ids[:20])} {reason}".strip())  # fmt: skip
        shown = "approved" if action == "approve" else "rejected"
        return Redirect(f"/console/withdrawals?status={shown}", status_code=303)

    @get("/export.csv")
    async def export(self, console: Console, status: FromQuery[Status] = "approved") -> Stream:
        return Stream(
            export_csv(console.db, console.tenant_id, status),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="withdrawals-{status}.csv"'},
        )

    @post("/paid/check", status_code=200)
    async def confirm_paid(self, console: Console) -> Template:
        """Step 1 of marking paid: read the uploaded ``withdrawal_id,transfer_ref`` CSV and
        show what will be recorded."""
        form = await console.form()
        upload = form.get("references")
        raw = await upload.read() if isinstance(upload, UploadFile) else b""
        try:
            references = parse_references(raw, key="withdrawal_id")
            if len(references) > MAX_BATCH:
                raise InvalidInput("references", f"at most {MAX_BATCH} rows at once")
            rows = await withdrawals.withdrawal_rows(
                console.db, console.tenant_id, list(references), field="references"
            )
        except InvalidInput as exc:
            errors = {e.field: e.message for e in field_errors(exc)}
            return await self._list(console, 422, "approved", None, errors)
        return console.page("withdrawals_confirm.html", action="paid", rows=rows,
                            references=references, total=sum(w.net_fen for w in rows),
                            references_json=msgspec.json.encode(references).decode())  # fmt: skip

    @post("/paid", status_code=303)
    async def paid(self, console: Console) -> Redirect:
        form = await console.form()
        try:
            references = msgspec.json.decode(text(form, "references_json"), type=_References)
        except msgspec.DecodeError as exc:
            raise InvalidInput("references", str(exc)) from None
        if not 1 <= len(references) <= MAX_BATCH:
            raise InvalidInput("references", f"1-{MAX_BATCH} rows")
        async with console.db.transaction() as tx:
            await withdrawals.mark_paid(tx, console.tenant_id, references)
            listed = ", ".join(list(references)[:20])
            await record_audit(
                tx,
                console.session,
                "withdrawals",
                "withdrawals.paid",
                f"{len(references)}: {listed}",
            )
        return Redirect("/console/withdrawals?status=paid", status_code=303)


_References = dict[
    Annotated[str, msgspec.Meta(min_length=1, max_length=32)],
    Annotated[str, msgspec.Meta(min_length=1, max_length=128)],
]
