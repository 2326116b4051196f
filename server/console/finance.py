"""Distributor and settlement pages: search, upline, team, ledger, holds; draft → approve → paid."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import File, Redirect, Stream, Template

from server.common import now_us, to_us
from server.console.forms import local_datetime, text
from server.console.sessions import audit_trail, record_audit
from server.console.web import Console, ConsoleCall, field_errors
from server.errors import InvalidInput, NotFound
from server.ledger.service import list_entries
from server.program.service import get_program
from server.referrals import service as referrals
from server.referrals.graph import upline_of
from server.referrals.schemas import DistributorIn
from server.referrals.search import search_distributors
from server.settlements.export import csv_chunks, xlsx_chunks
from server.settlements.export_jobs import export_path, get_export, list_exports, start_export
from server.settlements.service import (
    approve,
    create_draft,
    get_settlement,
    list_settlements,
    mark_paid,
)

__all__ = ["DistributorPages", "SettlementPages", "parse_references"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]
SettlementIdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE = 50
MAX_REFERENCE_ROWS = 100_000
MAX_UPLOAD_BYTES = 5_000_000


class DistributorPages(Controller):
    path = "/console/distributors"

    @get()
    async def index(
        self,
        console: Console,
        q: Annotated[str | None, QueryParameter(max_length=64)] = None,
        by: FromQuery[Literal["id", "prefix", "contains"]] = "id",
        status: FromQuery[Literal["active", "held", "frozen"] | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Response[Any]:
        db, query = console.db, (q or "").strip()
        if query and by == "id":
            # Search by id: the tenant's own external id goes straight to the profile.
            target = quote(query, safe="")
            return Redirect(f"/console/distributors/{target}", status_code=303)
        if query and by in ("prefix", "contains"):
            found = await search_distributors(
                db, console.tenant_id, query, "prefix" if by == "prefix" else "contains", PAGE,
                cursor, status,
            )  # fmt: skip
        else:
            found = await referrals.list_distributors(db, console.tenant_id, status, PAGE, cursor)
        return console.page("distributors.html", page_=found, status=status, q=query, by=by)

    @get("/{distributor_id:str}")
    async def show(
        self,
        console: Console,
        distributor_id: IdPath,
        level: Annotated[int, QueryParameter(ge=1, le=3)] = 1,
        team_cursor: FromQuery[str | None] = None,
        ledger_cursor: FromQuery[str | None] = None,
    ) -> Template:
        tenant = console.tenant_id
        distributor = await referrals.get_distributor(console.db, tenant, distributor_id)
        upline, _ = await upline_of(console.db, tenant, distributor_id, now_us(), depth=3)
        team = await referrals.team_of(console.db, tenant, distributor_id, level, PAGE, team_cursor)
        ledger = await list_entries(console.db, tenant, distributor_id, PAGE, ledger_cursor)
        audit = await audit_trail(console.db, tenant, distributor_id)
        return console.page(
            "distributor.html",
            d=distributor,
            upline=upline,
            team=team,
            level=level,
            ledger=ledger,
            audit=audit,
        )

    @post("/{distributor_id:str}/hold", status_code=303)
    async def hold(self, console: Console, distributor_id: IdPath) -> Redirect:
        form = await console.form()
        reason = text(form, "reason")
        status: Literal["held", "active"]
        if text(form, "status") == "held":
            status = "held"
        elif text(form, "status") == "active":
            status = "active"
        else:
            raise InvalidInput("status", "must be held or active")
        if not reason:
            raise InvalidInput("reason", "is required: say why the hold is put or lifted")
        async with console.db.transaction() as tx:
            row = await referrals.get_distributor_row(tx, console.tenant_id, distributor_id)
            change = DistributorIn(
                nickname=row["nickname"], avatar_url=row["avatar_url"], status=status
            )
            await referrals.upsert_distributor(tx, console.tenant_id, distributor_id, change)
            action = "hold.put" if status == "held" else "hold.lifted"
            await record_audit(tx, console.session, distributor_id, action, reason)
        return Redirect(f"/console/distributors/{distributor_id}", status_code=303)


def parse_references(raw: bytes, key: str = "distributor_id") -> dict[str, str]:
    """``<key>,transfer_ref`` rows (a header row is skipped); UTF-8, BOM allowed."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InvalidInput("references", f"the file is over {MAX_UPLOAD_BYTES} bytes")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("references", "the file must be UTF-8 CSV") from None
    references: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(content)), 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if number == 1 and row[0].strip().lower() == key:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise InvalidInput(
                "references", f"row {number}: write two columns, {key},transfer_ref"
            )
        if len(references) >= MAX_REFERENCE_ROWS:
            raise InvalidInput("references", f"at most {MAX_REFERENCE_ROWS} rows")
        references[row[0].strip()] = row[1].strip()
    if not references:
        raise InvalidInput("references", f"the file has no {key},transfer_ref rows")
    return references


_references_type = dict[str, Annotated[str, msgspec.Meta(min_length=1, max_length=128)]]


class SettlementPages(Controller):
    path = "/console/settlements"

    @get()
    async def index(self, console: Console, cursor: FromQuery[str | None] = None) -> Template:
        found = await list_settlements(console.db, console.tenant_id, None, PAGE, cursor)
        return console.page("settlements.html", page_=found, errors={})

    @post(status_code=303)
    async def draft(self, console: Console) -> Response[Any]:
        form = await console.form()
        program = await get_program(console.db, console.tenant_id)
        try:
            cutoff = local_datetime(form, "cutoff", program.timezone)
            if cutoff is None:
                raise InvalidInput("cutoff", "is required")
            cutoff_us = to_us(cutoff, "cutoff")
            if cutoff_us > now_us():
                raise InvalidInput("cutoff", "must not be later than now")
            async with console.db.transaction() as tx:
                settlement_id = await create_draft(tx, console.tenant_id, program, cutoff_us)
                await record_audit(tx, console.session, settlement_id, "settlement.drafted")
        except InvalidInput as exc:
            found = await list_settlements(console.db, console.tenant_id, None, PAGE, None)
            errors = {e.field: e.message for e in field_errors(exc)}
            return console.page("settlements.html", 422, page_=found, errors=errors)
        return Redirect(f"/console/settlements/{settlement_id}", status_code=303)

    @get("/{settlement_id:str}")
    async def show(
        self,
        console: Console,
        settlement_id: SettlementIdPath,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        db, tenant = console.db, console.tenant_id
        settlement = await get_settlement(db, tenant, settlement_id, PAGE, cursor)
        audit = await audit_trail(db, tenant, settlement_id)
        exports = await list_exports(db, tenant, settlement_id)
        return console.page("settlement.html", s=settlement, audit=audit, errors={},
                            exports=exports)  # fmt: skip

    @get("/{settlement_id:str}/approve")
    async def confirm_approve(self, console: Console, settlement_id: SettlementIdPath) -> Template:
        settlement = await get_settlement(console.db, console.tenant_id, settlement_id, 1)
        return console.page("confirm.html", s=settlement, action="approve")

    @post("/{settlement_id:str}/approve", status_code=303)
    async def approve(self, console: Console, settlement_id: SettlementIdPath) -> Redirect:
        await console.form()
        async with console.db.transaction() as tx:
            await approve(tx, console.tenant_id, settlement_id)
            await record_audit(tx, console.session, settlement_id, "settlement.approved")
        return Redirect(f"/console/settlements/{settlement_id}", status_code=303)

    @post("/{settlement_id:str}/paid/check", status_code=200)
    async def confirm_paid(self, console: Console, settlement_id: SettlementIdPath) -> Template:
        """Step 1 of marking paid: read the uploaded CSV and show what will be recorded."""
        form = await console.form()
        settlement = await get_settlement(console.db, console.tenant_id, settlement_id, 1)
        upload = form.get("references")
        raw = await upload.read() if isinstance(upload, UploadFile) else b""
        try:
            references = parse_references(raw)
        except InvalidInput as exc:
            audit = await audit_trail(console.db, console.tenant_id, settlement_id)
            errors = {e.field: e.message for e in field_errors(exc)}
            return console.page("settlement.html", 422, s=settlement, audit=audit, errors=errors)
        return console.page(
            "confirm.html",
            s=settlement,
            action="paid",
            references=references,
            references_json=msgspec.json.encode(references).decode(),
        )

    @post("/{settlement_id:str}/paid", status_code=303)
    async def paid(self, console: Console, settlement_id: SettlementIdPath) -> Redirect:
        form = await console.form()
        try:
            references = msgspec.json.decode(text(form, "references_json"), type=_references_type)
        except msgspec.DecodeError as exc:
            raise InvalidInput("references", str(exc)) from None
        async with console.db.transaction() as tx:
            await mark_paid(tx, console.tenant_id, settlement_id, references)
            await record_audit(tx, console.session, settlement_id, "settlement.paid")
        return Redirect(f"/console/settlements/{settlement_id}", status_code=303)

    @post("/{settlement_id:str}/exports", status_code=303)
    async def start_export(self, console: Console, settlement_id: SettlementIdPath) -> Redirect:
        """Start a background export (progress on the next page); no JavaScript needed."""
        kind = text(await console.form(), "kind")
        if kind not in ("csv", "xlsx"):
            raise InvalidInput("kind", "must be csv or xlsx")
        lang: Literal["zh", "en"] = "en" if console.request.cookies.get("lang") == "en" else "zh"
        job = await start_export(
            console.db, console.tenant_id, settlement_id, "csv" if kind == "csv" else "xlsx", lang
        )
        return Redirect(f"/console/settlements/{settlement_id}/exports/{job.id}", status_code=303)

    @get("/{settlement_id:str}/exports/{export_id:str}")
    async def export_progress(
        self, console: Console, settlement_id: SettlementIdPath, export_id: SettlementIdPath
    ) -> Template:
        """The export's progress: htmx swaps the bar every second (a refresh without JS)."""
        job = await get_export(console.db, console.tenant_id, settlement_id, export_id)
        request = console.request
        fragment = request.headers.get("hx-request") and request.query_params.get("part")
        return console.page("_export_progress.html" if fragment else "export.html", job=job)

    @get("/{settlement_id:str}/exports/{export_id:str}/file")
    async def export_file(
        self, console: Console, settlement_id: SettlementIdPath, export_id: SettlementIdPath
    ) -> File:
        job = await get_export(console.db, console.tenant_id, settlement_id, export_id)
        path = export_path(console.tenant_id, job.id, job.kind)
        if job.status != "done" or not path.is_file():
            raise NotFound(f"export {export_id!r} has no file (it is {job.status})")
        return File(
            path,
            filename=f"{settlement_id}.{job.kind}",
            media_type="text/csv" if job.kind == "csv" else XLSX,
            content_disposition_type="attachment",
        )

    @get("/{settlement_id:str}/export.csv")
    async def export_csv(self, console: Console, settlement_id: SettlementIdPath) -> Stream:
        return await self._export(console, settlement_id, "csv")

    @get("/{settlement_id:str}/export.xlsx")
    async def export_xlsx(self, console: Console, settlement_id: SettlementIdPath) -> Stream:
        return await self._export(console, settlement_id, "xlsx")

    async def _export(self, console: ConsoleCall, settlement_id: str, kind: str) -> Stream:
        lang: Literal["zh", "en"] = "en" if console.request.cookies.get("lang") == "en" else "zh"
        await get_settlement(console.db, console.tenant_id, settlement_id, 1)
        chunks = (csv_chunks if kind == "csv" else xlsx_chunks)(
            console.db, console.tenant_id, settlement_id, lang
        )
        return Stream(
            chunks,
            media_type="text/csv" if kind == "csv" else XLSX,
            headers={"Content-Disposition": f'attachment; filename="{settlement_id}.{kind}"'},
        )
