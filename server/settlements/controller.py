"""``/v1/settlements``: drafts, approval, payment and finance exports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Response, get, post
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from server.common import to_us
from server.db import Connection, Database
from server.dependencies import CurrentProgram, Db, TenantId, Write
from server.responses import json_response
from server.settlements.export import Lang, csv_chunks, xlsx_chunks
from server.settlements.payout import media_charset, payout_chunks, resolve_layout
from server.settlements.schemas import PaidIn, Settlement, SettlementIn, SettlementPage
from server.settlements.service import (
    approve,
    create_draft,
    get_settlement,
    list_settlements,
    mark_paid,
    settlement_row,
)

__all__ = ["SettlementController"]

IdPath = Annotated[str, PathParameter(min_length=1, max_length=32)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class SettlementController(Controller):
    path = "/v1/settlements"
    tags = ["settlements"]
    opt = {"scope": "admin"}

    @post(
        status_code=201,
        summary="Draft a settlement of every entry due by the cutoff (not later than now),"
        " netting each commission's known reversals",
    )
    async def create(
        self,
        write: Write,
        tenant_id: TenantId,
        program: CurrentProgram,
        data: JSONBody[SettlementIn],
    ) -> Response[Settlement]:
        async def work(tx: Connection) -> Response[Settlement]:
            settlement_id = await create_draft(tx, tenant_id, program, to_us(data.cutoff, "cutoff"))
            return json_response(await get_settlement(tx, tenant_id, settlement_id), 201)

        return await write.once(work)

    @get(summary="Settlements, newest first, optionally by status")
    async def list_all(
        self,
        db: Db,
        tenant_id: TenantId,
        status: FromQuery[Literal["draft", "approved", "paid"] | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[SettlementPage]:
        return json_response(await list_settlements(db, tenant_id, status, limit, cursor))

    @get("/{settlement_id:str}", summary="A settlement with its lines (paged by distributor id)")
    async def read(
        self,
        db: Db,
        tenant_id: TenantId,
        settlement_id: IdPath,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 500,
        cursor: FromQuery[str | None] = None,
    ) -> Response[Settlement]:
        return json_response(await get_settlement(db, tenant_id, settlement_id, limit, cursor))

    @post(
        "/{settlement_id:str}/approve",
        status_code=200,
        summary=(
            "Approve: re-check and lock the entries (409 if one was reversed since the draft,"
            " is not due, or another approved settlement holds one: draft anew)"
        ),
    )
    async def approve(
        self, write: Write, tenant_id: TenantId, settlement_id: IdPath
    ) -> Response[Settlement]:
        async def work(tx: Connection) -> Response[Settlement]:
            await approve(tx, tenant_id, settlement_id)
            return json_response(await get_settlement(tx, tenant_id, settlement_id))

        return await write.once(work)

    @post(
        "/{settlement_id:str}/paid",
        status_code=200,
        summary="Mark paid with a transfer reference per distributor",
    )
    async def paid(
        self,
        write: Write,
        tenant_id: TenantId,
        settlement_id: IdPath,
        data: JSONBody[PaidIn],
    ) -> Response[Settlement]:
        async def work(tx: Connection) -> Response[Settlement]:
            await mark_paid(tx, tenant_id, settlement_id, data.references)
            return json_response(await get_settlement(tx, tenant_id, settlement_id))

        return await write.once(work)

    @get(
        "/{settlement_id:str}/export.csv",
        summary="CSV export (UTF-8 with BOM), streamed; headers in Chinese, ?lang=en for English",
        media_type="text/csv",
    )
    async def export_csv(
        self, db: Db, tenant_id: TenantId, settlement_id: IdPath, lang: FromQuery[Lang] = "zh"
    ) -> Stream:
        return await _statement(db, tenant_id, settlement_id, lang, "csv")

    @get(
        "/{settlement_id:str}/export.xlsx",
        summary="XLSX export (Lines, Details and Summary sheets), streamed; ?lang=en for English",
        media_type=XLSX,
    )
    async def export_xlsx(
        self, db: Db, tenant_id: TenantId, settlement_id: IdPath, lang: FromQuery[Lang] = "zh"
    ) -> Stream:
        return await _statement(db, tenant_id, settlement_id, lang, "xlsx")

    @get(
        "/{settlement_id:str}/payout.csv",
        summary="Payout file for the brand's payout channel (approved or paid settlements)",
        media_type="text/csv",
    )
    async def export_payout(
        self,
        db: Db,
        tenant_id: TenantId,
        settlement_id: IdPath,
        layout: Annotated[str | None, QueryParameter(max_length=32)] = None,
    ) -> Stream:
        chosen = await resolve_layout(db, tenant_id, layout)
        chunks = payout_chunks(db, tenant_id, settlement_id, chosen)
        # The first chunk checks the settlement (404, or 409 for a draft) before any byte is sent.
        first = await anext(chunks)

        async def body() -> Any:
            yield first
            async for chunk in chunks:
                yield chunk

        return Stream(
            body(),
            media_type="text/csv",
            encoding=media_charset(chosen),
            headers={"Content-Disposition": f'attachment; filename="{settlement_id}-payout.csv"'},
        )


async def _statement(
    db: Database, tenant_id: str, settlement_id: str, lang: Lang, fmt: Literal["csv", "xlsx"]
) -> Stream:
    """The statement file, streamed; a missing settlement is a 404 before any byte is sent."""
    await settlement_row(db, tenant_id, settlement_id)
    chunks = (csv_chunks if fmt == "csv" else xlsx_chunks)(db, tenant_id, settlement_id, lang)
    return Stream(
        chunks,
        media_type="text/csv" if fmt == "csv" else XLSX,
        headers={"Content-Disposition": f'attachment; filename="{settlement_id}.{fmt}"'},
    )
