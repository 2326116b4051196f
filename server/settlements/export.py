"""Finance exports of a settlement: CSV (UTF-8 with BOM) and XLSX, streamed, deterministic.

Both files have the same columns in the same order, headed in Chinese by default
(``lang="zh"``) or in English (``lang="en"``, the snake_case names of the API), and end the
lines with a total row whose sums equal the settlement's ``total_fen``.

- CSV: cells are formatted by :mod:`server.settlements.csvformat` (yuan beside fen,
  CSV-injection escape) and stored at draft time, so an export only joins them.
- XLSX: a ``Lines`` sheet (fen columns are integers, yuan columns are numbers holding the exact
  ``fen / 100`` decimal with a ``0.00`` format, never text or formulas; frozen header,
  autofilter, column widths, total row), a ``Details`` sheet with every ledger entry behind the
  lines (so an auditor can trace a line to its orders and refunds) and a ``Summary`` sheet.
  The workbook is built in xlsxwriter's constant-memory mode in a temporary directory and
  streamed from there.

Rows are read in pages (lines by distributor id, entries by entry id), so memory stays flat
for any size; the same settlement exports the same bytes.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import xlsxwriter

from rewards.money import fen_to_yuan_str
from server.common import from_us
from server.db import Connection
from server.settlements.csvformat import escape_cell, line_cells, text_cell, yuan
from server.settlements.service import settlement_row

__all__ = [
    "HEADER",
    "Lang",
    "csv_chunks",
    "escape_cell",
    "export_to_file",
    "header",
    "write_xlsx",
    "xlsx_chunks",
]

Lang = Literal["zh", "en"]
PAGE = 5000
CHUNK = 1 << 16
AMOUNTS = ("commission", "red_packet", "prize", "reversal", "net")
_AMOUNT_ZH = {
    "commission": "佣金",
    "red_packet": "红包",
    "prize": "奖金",
    "reversal": "退款冲回",
    "net": "应付净额",
}
# (English header, Chinese header) per column, in file order.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("distributor_id", "分销员ID"),
    ("nickname", "昵称"),
    *(
        (f"{kind}_{unit}", f"{_AMOUNT_ZH[kind]}({'分' if unit == 'fen' else '元'})")
        for kind in AMOUNTS
        for unit in ("fen", "yuan")
    ),
    ("transfer_ref", "转账单号"),
    # The part of reversal_fen netted against commission the same line pays (refunds known when
    # the draft was made; see server.settlements.netting). Last, so the cells stored with each
    # line at draft time stay as they are.
    ("netted_reversal_fen", "其中抵扣本期佣金(分)"),
    ("netted_reversal_yuan", "其中抵扣本期佣金(元)"),
)
HEADER = [en for en, _ in _COLUMNS]
_TOTAL_LABEL = {"zh": "合计", "en": "TOTAL"}
_DETAIL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("distributor_id", "分销员ID"),
    ("entry_id", "流水ID"),
    ("kind", "类型"),
    ("level", "层级"),
    ("order_id", "订单号"),
    ("refund_id", "退款单号"),
    ("campaign_id", "活动ID"),
    ("reverses_entry_id", "冲回流水ID"),
    ("amount_fen", "金额(分)"),
    ("amount_yuan", "金额(元)"),
    ("created_at", "入账时间"),
    ("available_at", "可结算时间"),
)
_KIND_ZH = {
    "commission": "佣金",
    "red_packet": "红包",
    "prize": "奖金",
    "reversal": "退款冲回",
    "absorbed_reversal": "平台承担冲回",
}

_LINE_COLUMNS = (
    "distributor_id, nickname, commission_fen, red_packet_fen, prize_fen, reversal_fen, net_fen,"
    " transfer_ref, netted_reversal_fen"
)
_ENTRY_COLUMNS = (
    "i.entry_id, e.distributor_id, e.kind, e.level, e.order_id, e.refund_id, e.campaign_id,"
    " e.reverses_entry_id, e.amount_fen, e.created_at_us, e.available_at_us"
)


def header(lang: Lang) -> list[str]:
    """The column headers of a settlement file in ``lang``."""
    return [en if lang == "en" else zh for en, zh in _COLUMNS]


def _detail_header(lang: Lang) -> list[str]:
    return [en if lang == "en" else zh for en, zh in _DETAIL_COLUMNS]


async def _pages(
    db: Connection, tenant_id: str, settlement_id: str, columns: str = _LINE_COLUMNS
) -> AsyncIterator[list[Any]]:
    """The settlement's lines (``columns``, the first being distributor_id) in pages."""
    after = ""
    while rows := await db.fetch_values(
        f"SELECT {columns} FROM settlement_lines"
        " WHERE tenant_id = $1 AND settlement_id = $2 AND distributor_id > $3"
        " ORDER BY distributor_id LIMIT $4",
        tenant_id,
        settlement_id,
        after,
        PAGE,
    ):
        yield list(rows)
        after = rows[-1][0]


async def _entry_pages(
    db: Connection, tenant_id: str, settlement_id: str
) -> AsyncIterator[list[Any]]:
    """The ledger entries the settlement covers, by entry id (the items' unique index order)."""
    after = -1
    while rows := await db.fetch_values(
        f"SELECT {_ENTRY_COLUMNS} FROM settlement_items i"
        " JOIN ledger_entries e ON e.tenant_id = i.tenant_id AND e.id = i.entry_id"
        " WHERE i.tenant_id = $1 AND i.settlement_id = $2 AND i.entry_id > $3"
        " ORDER BY i.entry_id LIMIT $4",
        tenant_id,
        settlement_id,
        after,
        PAGE,
    ):
        yield list(rows)
        after = int(rows[-1][0])


async def _totals(db: Connection, tenant_id: str, settlement_id: str) -> list[int]:
    """The sums of the AMOUNTS columns, then of netted_reversal_fen."""
    sums = await db.fetchrow(
        "SELECT "
        + ", ".join(f"COALESCE(SUM({k}_fen), 0)" for k in (*AMOUNTS, "netted_reversal"))
        + " FROM settlement_lines WHERE tenant_id = $1 AND settlement_id = $2",
        tenant_id,
        settlement_id,
    )
    n = len(AMOUNTS) + 1
    return [int(sums[k]) for k in range(n)] if sums is not None else [0] * n


async def csv_chunks(
    db: Connection, tenant_id: str, settlement_id: str, lang: Lang = "zh"
) -> AsyncIterator[bytes]:
    """The CSV in chunks: BOM and header, one chunk per page, then a totals row.

    Lines are read as their stored cells plus the transfer reference (see
    :mod:`server.settlements.csvformat`); a line stored without cells is rendered here.
    """
    await settlement_row(db, tenant_id, settlement_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header(lang))
    yield "\ufeff".encode() + buffer.getvalue().encode()
    async for rows in _pages(
        db, tenant_id, settlement_id, "distributor_id, csv_cells, transfer_ref, netted_reversal_fen"
    ):
        cells = (
            await _render_missing(db, tenant_id, settlement_id, rows)
            if any(not r[1] for r in rows)
            else {}
        )
        lines = [
            f"{cells.get(r[0], r[1])},{text_cell(r[2])},{int(r[3])},{yuan(int(r[3]))}" for r in rows
        ]
        yield ("\r\n".join(lines) + "\r\n").encode()
    *totals, netted = await _totals(db, tenant_id, settlement_id)
    buffer.seek(0)
    buffer.truncate()
    writer.writerow(
        [_TOTAL_LABEL[lang], ""]
        + [c for t in totals for c in (str(t), fen_to_yuan_str(t))]
        + ["", str(netted), fen_to_yuan_str(netted)]
    )
    yield buffer.getvalue().encode()


async def _render_missing(
    db: Connection, tenant_id: str, settlement_id: str, rows: list[Any]
) -> dict[str, str]:
    """Cells of lines drafted before cells were stored (migration 0010)."""
    missing = [r[0] for r in rows if not r[1]]
    marks = ", ".join(f"${n}" for n in range(3, len(missing) + 3))
    found = await db.fetch_values(
        "SELECT distributor_id, nickname, commission_fen, red_packet_fen, prize_fen,"
        f" reversal_fen, net_fen FROM settlement_lines WHERE tenant_id = $1"
        f" AND settlement_id = $2 AND distributor_id IN ({marks})",
        tenant_id,
        settlement_id,
        *missing,
    )
    return {r[0]: line_cells(r[0], r[1], tuple(int(v) for v in r[2:7])) for r in found}


def yuan_number(fen: int) -> Decimal:
    """``2995`` -> ``Decimal('29.95')``: the exact yuan value, written as a number cell."""
    return Decimal(fen).scaleb(-2)


def _iso(us: Any) -> str:
    return from_us(int(us)).isoformat() if us is not None else ""


class _Workbook:
    """The XLSX being written: formats built once, one method per sheet's rows."""

    def __init__(self, path: Path, tmp: str, settlement_id: str, created: datetime) -> None:
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "tmpdir": tmp,
                # Cells are data: text never becomes a formula, a link or a number.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self.book.set_properties(
            {
                "title": f"Settlement {settlement_id}",
                "author": "liebian",
                "created": datetime(created.year, created.month, created.day),
            }
        )
        self.fen = self.book.add_format({"num_format": "0"})
        self.yuan = self.book.add_format({"num_format": "0.00"})
        self.text = self.book.add_format({"num_format": "@"})
        self.bold = self.book.add_format({"bold": True})
        self.bold_fen = self.book.add_format({"bold": True, "num_format": "0"})
        self.bold_yuan = self.book.add_format({"bold": True, "num_format": "0.00"})

    def lines_sheet(self, lang: Lang) -> Any:
        sheet = self.book.add_worksheet("Lines")
        sheet.set_column(0, 0, 24, self.text)
        sheet.set_column(1, 1, 20, self.text)
        for n in range(len(AMOUNTS)):
            sheet.set_column(2 + 2 * n, 2 + 2 * n, 14, self.fen)
            sheet.set_column(3 + 2 * n, 3 + 2 * n, 14, self.yuan)
        sheet.set_column(12, 12, 28, self.text)
        sheet.set_column(13, 13, 14, self.fen)
        sheet.set_column(14, 14, 14, self.yuan)
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, header(lang), self.bold)
        return sheet

    @staticmethod
    def write_lines(sheet: Any, first_row: int, page: list[Any]) -> None:
        r = first_row
        for line in page:
            row: list[Any] = [line[0], line[1] or ""]
            for n in range(2, 7):
                value = int(line[n])
                row.append(value)
                row.append(yuan_number(value))
            row.append(line[7] or "")
            row.append(int(line[8]))
            row.append(yuan_number(int(line[8])))
            sheet.write_row(r, 0, row)
            r += 1

    def lines_total(self, sheet: Any, r: int, totals: list[int], lang: Lang) -> None:
        sheet.write_string(r, 0, _TOTAL_LABEL[lang], self.bold)
        sheet.write_string(r, 1, "", self.bold)
        for n, total in enumerate(totals[: len(AMOUNTS)]):
            sheet.write_number(r, 2 + 2 * n, total, self.bold_fen)
            sheet.write_number(r, 3 + 2 * n, yuan_number(total), self.bold_yuan)
        sheet.write_string(r, 12, "", self.bold)
        netted = totals[len(AMOUNTS)]
        sheet.write_number(r, 13, netted, self.bold_fen)
        sheet.write_number(r, 14, yuan_number(netted), self.bold_yuan)
        if r > 1:
            sheet.autofilter(0, 0, r - 1, len(_COLUMNS) - 1)

    def details_sheet(self, lang: Lang) -> Any:
        sheet = self.book.add_worksheet("Details")
        widths = (24, 12, 14, 6, 24, 24, 20, 14, 12, 12, 34, 34)
        formats = (
            self.text, None, self.text, None, self.text, self.text, self.text, None,
            self.fen, self.yuan, self.text, self.text,
        )  # fmt: skip
        for col, (width, fmt) in enumerate(zip(widths, formats, strict=True)):
            sheet.set_column(col, col, width, fmt)
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, _detail_header(lang), self.bold)
        return sheet

    @staticmethod
    def write_details(sheet: Any, first_row: int, page: list[Any], lang: Lang) -> None:
        r = first_row
        for e in page:
            amount = int(e[8])
            sheet.write_row(
                r,
                0,
                [
                    e[1],
                    int(e[0]),
                    e[2] if lang == "en" else _KIND_ZH.get(e[2], e[2]),
                    int(e[3]) if e[3] is not None else "",
                    e[4] or "",
                    e[5] or "",
                    e[6] or "",
                    int(e[7]) if e[7] is not None else "",
                    amount,
                    yuan_number(amount),
                    _iso(e[9]),
                    _iso(e[10]),
                ],
            )
            r += 1

    def summary_sheet(self, row: Any, settlement_id: str, totals: list[int], lang: Lang) -> None:
        zh = lang == "zh"
        summary = self.book.add_worksheet("Summary")
        summary.set_column(0, 0, 22)
        summary.set_column(1, 1, 34)
        facts: list[tuple[str, str, Any]] = [
            ("settlement_id", "结算单号", settlement_id),
            ("status", "状态", row["status"]),
            ("cutoff", "截止时间", from_us(int(row["cutoff_us"])).isoformat()),
            ("line_count", "行数", int(row["line_count"])),
            ("total_fen", "应付合计(分)", int(row["total_fen"])),
            ("total_yuan", "应付合计(元)", yuan_number(int(row["total_fen"]))),
        ]
        for kind, total in zip(AMOUNTS[:-1], totals, strict=False):
            facts.append((f"{kind}_fen", f"{_AMOUNT_ZH[kind]}(分)", total))
        for n, (en, zh_name, value) in enumerate(facts):
            summary.write_string(n, 0, zh_name if zh else en, self.bold)
            if isinstance(value, Decimal):
                summary.write_number(n, 1, value, self.yuan)
            elif isinstance(value, int):
                summary.write_number(n, 1, value, self.fen)
            else:
                summary.write_string(n, 1, value)


async def write_xlsx(
    db: Connection,
    tenant_id: str,
    settlement_id: str,
    target: IO[bytes],
    progress: Callable[[int], None] | None = None,
    lang: Lang = "zh",
) -> None:
    """Write the XLSX (Lines, Details and Summary sheets) to ``target``."""
    async for chunk in xlsx_chunks(db, tenant_id, settlement_id, lang, progress):
        target.write(chunk)


async def xlsx_chunks(
    db: Connection,
    tenant_id: str,
    settlement_id: str,
    lang: Lang = "zh",
    progress: Callable[[int], None | Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """The XLSX in chunks of 64 KiB, built page by page in a temporary directory;
    ``progress(lines)`` after each page of lines (awaited when it is a coroutine function).

    Each page is written off the event loop (xlsxwriter is plain CPU work), so a large export
    does not stall other requests; memory stays flat (constant-memory mode, pages of rows).
    """
    row = await settlement_row(db, tenant_id, settlement_id)
    with tempfile.TemporaryDirectory(prefix="liebian-xlsx-") as tmp:
        path = Path(tmp) / "settlement.xlsx"
        created = from_us(int(row["created_at_us"])).replace(tzinfo=None)
        book = _Workbook(path, tmp, settlement_id, created)
        lines = book.lines_sheet(lang)
        r = 1
        async for page in _pages(db, tenant_id, settlement_id):
            await asyncio.to_thread(book.write_lines, lines, r, page)
            r += len(page)
            if progress is not None and (pending := progress(r - 1)) is not None:
                await pending
        totals = await _totals(db, tenant_id, settlement_id)
        book.lines_total(lines, r, totals, lang)
        details = book.details_sheet(lang)
        d = 1
        async for entries in _entry_pages(db, tenant_id, settlement_id):
            await asyncio.to_thread(book.write_details, details, d, entries, lang)
            d += len(entries)
        if d > 1:
            details.autofilter(0, 0, d - 1, len(_DETAIL_COLUMNS) - 1)
        book.summary_sheet(row, settlement_id, totals, lang)
        await asyncio.to_thread(book.book.close)
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk


async def _find_settlement_of_any_tenant(db: Connection, settlement_id: str) -> Any:
    """The operator named no ``--tenant``: every tenant's settlements are searched (a
    multi-shard read on Citus, listed in server.sharding.MAINTENANCE)."""
    return await db.fetchrow(
        "SELECT tenant_id, line_count FROM settlements WHERE settlement_id = $1", settlement_id
    )


async def export_to_file(
    db: Connection,
    args: Any,
    log: IO[str] = sys.stderr,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """``liebian settlements export ID --format csv|xlsx|payout -o FILE``.

    ``progress(done, total)`` is called as lines are written (the CLI draws a bar with it on
    a terminal); one closing line goes to ``log``.
    """
    from server.settlements.payout import payout_chunks, resolve_layout

    if args.tenant:
        row = await db.fetchrow(
            "SELECT tenant_id, line_count FROM settlements"
            " WHERE tenant_id = $1 AND settlement_id = $2",
            args.tenant,
            args.settlement_id,
        )
    else:
        row = await _find_settlement_of_any_tenant(db, args.settlement_id)
    if row is None:
        print(f"liebian: error: no settlement {args.settlement_id!r}", file=log)
        return 1
    tenant_id, total = row["tenant_id"], int(row["line_count"])
    lang: Lang = getattr(args, "lang", None) or "zh"

    def report(done: int) -> None:
        if progress is not None:
            progress(min(done, total), total)

    with Path(args.output).open("wb") as target:
        if args.format == "csv":
            done = -1
            async for chunk in csv_chunks(db, tenant_id, args.settlement_id, lang):
                target.write(chunk)
                done += chunk.count(b"\r\n")
                report(max(done - 1, 0))
        elif args.format == "payout":
            layout = await resolve_layout(db, tenant_id, getattr(args, "layout", None))
            async for chunk in payout_chunks(db, tenant_id, args.settlement_id, layout):
                target.write(chunk)
        else:
            await write_xlsx(db, tenant_id, args.settlement_id, target, report, lang)
    report(total)
    log.write(f"wrote {total} lines to {args.output}\n")
    return 0
