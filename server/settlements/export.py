"""Finance exports of a settlement: CSV (UTF-8 with BOM) and XLSX, streamed, deterministic.

Amounts appear in fen and, beside them, in yuan with two decimals (formatted from the integer,
never through a float). Text cells that a spreadsheet would run as a formula (``= + - @``,
tab, CR) are prefixed with ``'`` (CSV injection). Rows are read in pages of ``PAGE`` lines by
distributor id, so memory stays flat for any size; the same settlement exports the same bytes.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import xlsxwriter

from rewards.money import fen_to_yuan_str
from server.common import from_us
from server.db import Connection
from server.settlements.service import settlement_row

__all__ = ["HEADER", "csv_chunks", "escape_cell", "export_to_file", "write_xlsx"]

PAGE = 2000
AMOUNTS = ("commission", "red_packet", "prize", "reversal", "net")
HEADER = (
    ["distributor_id", "nickname"]
    + [f"{kind}_{unit}" for kind in AMOUNTS for unit in ("fen", "yuan")]
    + ["transfer_ref"]
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


async def _pages(db: Connection, tenant_id: str, settlement_id: str) -> AsyncIterator[list[Any]]:
    after = ""
    while True:
        rows = await db.fetch(
            "SELECT l.distributor_id, d.nickname, l.commission_fen, l.red_packet_fen, l.prize_fen,"
            " l.reversal_fen, l.net_fen, l.transfer_ref FROM settlement_lines l"
            " LEFT JOIN distributors d ON d.tenant_id = l.tenant_id"
            " AND d.distributor_id = l.distributor_id"
            " WHERE l.tenant_id = $1 AND l.settlement_id = $2 AND l.distributor_id > $3"
            " ORDER BY l.distributor_id LIMIT $4",
            tenant_id,
            settlement_id,
            after,
            PAGE,
        )
        if not rows:
            return
        yield list(rows)
        after = rows[-1][0]


def _yuan_sql(engine: str, x: str) -> str:
    sign = f"CASE WHEN {x} < 0 THEN '-' ELSE '' END"
    if engine == "postgres":
        return f"{sign} || (abs({x}) / 100)::text || '.' || lpad((abs({x}) % 100)::text, 2, '0')"
    return f"printf('%s%d.%02d', {sign}, abs({x}) / 100, abs({x}) % 100)"


def _text_sql(engine: str, column: str) -> str:
    """:func:`escape_cell`, then csv.writer's minimal quoting, as a SQL expression."""
    if engine == "postgres":
        tab, cr, lf, find = "chr(9)", "chr(13)", "chr(10)", "strpos"
    else:
        tab, cr, lf, find = "char(9)", "char(13)", "char(10)", "instr"
    v = f"COALESCE({column}, '')"
    escaped = (
        f"(CASE WHEN substr({v}, 1, 1) IN ('=', '+', '-', '@', {tab}, {cr})"
        f" THEN '''' || {v} ELSE {v} END)"
    )
    quote = "'\"'"
    needs = " OR ".join(f"{find}({escaped}, {c}) > 0" for c in ("','", quote, cr, lf))
    quoted = f"{quote} || replace({escaped}, {quote}, '\"\"') || {quote}"
    return f"(CASE WHEN {needs} THEN {quoted} ELSE {escaped} END)"


def _line_sql(engine: str) -> str:
    """One CSV line per settlement line, formatted by the database (in C rather than cell by
    cell in Python): the export then only joins lines, close to csv.writer's own speed."""
    cast = "::text" if engine == "postgres" else ""
    cells = [_text_sql(engine, "l.distributor_id"), _text_sql(engine, "d.nickname")]
    for kind in AMOUNTS:
        cells += [f"l.{kind}_fen{cast}", _yuan_sql(engine, f"l.{kind}_fen")]
    cells.append(_text_sql(engine, "l.transfer_ref"))
    return " || ',' || ".join(cells)


async def csv_chunks(db: Connection, tenant_id: str, settlement_id: str) -> AsyncIterator[bytes]:
    """The CSV in chunks: BOM and header, one chunk per page, then a totals row."""
    await settlement_row(db, tenant_id, settlement_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    sql = (
        f"SELECT l.distributor_id, {_line_sql(db.engine)} FROM settlement_lines l"
        " LEFT JOIN distributors d ON d.tenant_id = l.tenant_id"
        " AND d.distributor_id = l.distributor_id"
        " WHERE l.tenant_id = $1 AND l.settlement_id = $2 AND l.distributor_id > $3"
        " ORDER BY l.distributor_id LIMIT $4"
    )
    after = ""
    while rows := await db.fetch(sql, tenant_id, settlement_id, after, PAGE):
        yield ("\r\n".join(r[1] for r in rows) + "\r\n").encode()
        after = rows[-1][0]
    totals = await db.fetchrow(
        "SELECT "
        + ", ".join(f"COALESCE(SUM({k}_fen), 0)" for k in AMOUNTS)
        + " FROM settlement_lines WHERE tenant_id = $1 AND settlement_id = $2",
        tenant_id,
        settlement_id,
    )
    values = [int(t) for t in totals] if totals is not None else [0] * len(AMOUNTS)
    buffer.seek(0)
    buffer.truncate()
    writer.writerow(
        ["TOTAL", ""] + [c for t in values for c in (str(t), fen_to_yuan_str(t))] + [""]
    )
    yield buffer.getvalue().encode()


async def write_xlsx(
    db: Connection, tenant_id: str, settlement_id: str, target: IO[bytes], progress: Any = None
) -> None:
    """Write the XLSX (a Lines sheet and a Summary sheet) to ``target``."""
    row = await settlement_row(db, tenant_id, settlement_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "settlement.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": tmp})
        created = from_us(int(row["created_at_us"])).replace(tzinfo=None)
        book.set_properties(
            {
                "title": f"Settlement {settlement_id}",
                "author": "liebian",
                "created": datetime(created.year, created.month, created.day),
            }
        )
        fen = book.add_format({"num_format": "0"})
        yuan = book.add_format({"num_format": "0.00"})
        bold = book.add_format({"bold": True})
        lines = book.add_worksheet("Lines")
        lines.write_row(0, 0, HEADER, bold)
        r = 1
        async for page in _pages(db, tenant_id, settlement_id):
            for line in page:
                lines.write_string(r, 0, line[0])
                lines.write_string(r, 1, line[1] or "")
                for n in range(5):
                    value = int(line[n + 2])
                    lines.write_number(r, 2 + 2 * n, value, fen)
                    col = xlsxwriter.utility.xl_col_to_name(2 + 2 * n)
                    lines.write_formula(
                        r, 3 + 2 * n, f"={col}{r + 1}/100", yuan, fen_to_yuan_str(value)
                    )
                lines.write_string(r, 12, line[7] or "")
                r += 1
            if progress is not None:
                progress(r - 1)
        summary = book.add_worksheet("Summary")
        facts = [
            ("settlement_id", settlement_id),
            ("status", row["status"]),
            ("cutoff", from_us(int(row["cutoff_us"])).isoformat()),
            ("line_count", int(row["line_count"])),
            ("total_fen", int(row["total_fen"])),
        ]
        for n, (name, value) in enumerate(facts):
            summary.write_string(n, 0, name, bold)
            if isinstance(value, int):
                summary.write_number(n, 1, value, fen)
            else:
                summary.write_string(n, 1, value)
        summary.write_string(len(facts), 0, "total_yuan", bold)
        summary.write_formula(
            len(facts), 1, f"=B{len(facts)}/100", yuan, fen_to_yuan_str(int(row["total_fen"]))
        )
        book.close()
        with path.open("rb") as source:
            while chunk := source.read(1 << 16):
                target.write(chunk)


async def export_to_file(db: Connection, args: Any, log: IO[str] = sys.stderr) -> int:
    """``liebian settlements export ID --format csv|xlsx -o FILE`` with a progress line."""
    row = await db.fetchrow(
        "SELECT tenant_id, line_count FROM settlements WHERE settlement_id = $1",
        args.settlement_id,
    )
    if row is None or (args.tenant and args.tenant != row["tenant_id"]):
        print(f"liebian: error: no settlement {args.settlement_id!r}", file=log)
        return 1
    tenant_id, total = row["tenant_id"], max(int(row["line_count"]), 1)

    def progress(done: int) -> None:
        filled = done * 30 // total
        log.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} lines")
        log.flush()

    with Path(args.output).open("wb") as target:
        if args.format == "csv":
            done = -1
            async for chunk in csv_chunks(db, tenant_id, args.settlement_id):
                target.write(chunk)
                done += chunk.count(b"\r\n")
                progress(min(max(done - 1, 0), total))
        else:
            await write_xlsx(db, tenant_id, args.settlement_id, target, progress)
    progress(total)
    log.write(f"\nwrote {args.output}\n")
    return 0
