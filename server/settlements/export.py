"""Finance exports of a settlement: CSV (UTF-8 with BOM) and XLSX, streamed, deterministic.

Cells are formatted by :mod:`server.settlements.csvformat` (yuan beside fen, CSV-injection
escape). Rows are read in pages of ``PAGE`` lines by distributor id, so memory stays flat for
any size; the same settlement exports the same bytes.
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
from server.settlements.csvformat import escape_cell, line_cells, text_cell
from server.settlements.service import settlement_row

__all__ = ["HEADER", "csv_chunks", "escape_cell", "export_to_file", "write_xlsx"]

PAGE = 5000
AMOUNTS = ("commission", "red_packet", "prize", "reversal", "net")
HEADER = (
    ["distributor_id", "nickname"]
    + [f"{kind}_{unit}" for kind in AMOUNTS for unit in ("fen", "yuan")]
    + ["transfer_ref"]
)


_LINE_COLUMNS = (
    "distributor_id, nickname, commission_fen, red_packet_fen, prize_fen, reversal_fen, net_fen,"
    " transfer_ref"
)


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


async def csv_chunks(db: Connection, tenant_id: str, settlement_id: str) -> AsyncIterator[bytes]:
    """The CSV in chunks: BOM and header, one chunk per page, then a totals row.

    Lines are read as their stored cells plus the transfer reference (see
    :mod:`server.settlements.csvformat`); a line stored without cells is rendered here.
    """
    await settlement_row(db, tenant_id, settlement_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    async for rows in _pages(
        db, tenant_id, settlement_id, "distributor_id, csv_cells, transfer_ref"
    ):
        if any(not r[1] for r in rows):
            cells = await _render_missing(db, tenant_id, settlement_id, rows)
            lines = [f"{cells.get(r[0], r[1])},{text_cell(r[2])}" for r in rows]
        else:
            lines = [f"{r[1]},{text_cell(r[2])}" for r in rows]
        yield ("\r\n".join(lines) + "\r\n").encode()
    sums = await db.fetchrow(
        "SELECT "
        + ", ".join(f"COALESCE(SUM({k}_fen), 0)" for k in AMOUNTS)
        + " FROM settlement_lines WHERE tenant_id = $1 AND settlement_id = $2",
        tenant_id,
        settlement_id,
    )
    totals = [int(sums[k]) for k in range(len(AMOUNTS))] if sums is not None else [0] * 5
    buffer.seek(0)
    buffer.truncate()
    writer.writerow(
        ["TOTAL", ""] + [c for t in totals for c in (str(t), fen_to_yuan_str(t))] + [""]
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
