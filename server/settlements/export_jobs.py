"""Settlement exports made in the background, with progress a page can poll.

A finance clerk asks for a CSV or XLSX of a settlement of any size; the file is written by a
task of the process that took the request (the same chunks as ``GET .../export.csv|xlsx``,
:mod:`server.settlements.export`), into ``LIEBIAN_EXPORT_DIR`` (default: a ``liebian-exports``
folder in the system's temporary directory), while its row in ``settlement_exports`` counts
the lines written (at most every ``PROGRESS_EVERY_S``). The page polls the row and offers the
file once it is ``done``. Nothing blocks a request: the export reads pages of lines and builds
the workbook off the event loop.

A ``running`` export whose row has not moved for ``STALE_US`` (its process stopped) reads as
``failed``; files older than ``KEEP_US`` are removed when a new export starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from server.common import from_us, now_us
from server.db import Database
from server.errors import NotFound
from server.settlements.export import Lang, csv_chunks, xlsx_chunks
from server.settlements.service import settlement_row

__all__ = [
    "ExportJob",
    "ExportKind",
    "export_path",
    "get_export",
    "list_exports",
    "start_export",
]

ExportKind = Literal["csv", "xlsx"]
PROGRESS_EVERY_S = 0.5
STALE_US = 120_000_000
KEEP_US = 24 * 3600 * 1_000_000
_running: set[asyncio.Task[None]] = set()
_COLUMNS = (
    "export_id, settlement_id, kind, status, done_lines, total_lines, size_bytes, error,"
    " created_at_us, updated_at_us"
)


class ExportJob(msgspec.Struct):
    id: str
    settlement_id: str
    kind: str
    status: str  # running | done | failed
    done_lines: int
    total_lines: int
    size_bytes: int
    error: str
    created_at: str

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(99, self.done_lines * 100 // self.total_lines) if self.total_lines else 0


def export_directory() -> Path:
    configured = os.environ.get("LIEBIAN_EXPORT_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "liebian-exports"


def export_path(tenant_id: str, export_id: str, kind: str) -> Path:
    """Where a finished export's file is (ids are ours: letters, digits and ``_`` only)."""
    return export_directory() / tenant_id / f"{export_id}.{kind}"


def _job(r: Any, now: int) -> ExportJob:
    status, error = str(r[3]), str(r[7])
    if status == "running" and now - int(r[9]) > STALE_US:
        status, error = "failed", "the export stopped (the server restarted); start it again"
    return ExportJob(
        id=r[0], settlement_id=r[1], kind=r[2], status=status, done_lines=int(r[4]),
        total_lines=int(r[5]), size_bytes=int(r[6]), error=error,
        created_at=from_us(int(r[8])).isoformat(),
    )  # fmt: skip


async def get_export(
    db: Database, tenant_id: str, settlement_id: str, export_id: str
) -> ExportJob:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM settlement_exports"
        " WHERE tenant_id = $1 AND export_id = $2 AND settlement_id = $3",
        tenant_id, export_id, settlement_id,
    )  # fmt: skip
    if row is None:
        raise NotFound(f"export {export_id!r} of settlement {settlement_id!r} does not exist")
    return _job(row, now_us())


async def list_exports(
    db: Database, tenant_id: str, settlement_id: str, limit: int = 10
) -> list[ExportJob]:
    """The settlement's latest exports, newest first."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM settlement_exports WHERE tenant_id = $1 AND settlement_id = $2"
        " ORDER BY created_at_us DESC LIMIT $3",
        tenant_id, settlement_id, limit,
    )  # fmt: skip
    now = now_us()
    return [_job(r, now) for r in rows]


async def start_export(
    db: Database, tenant_id: str, settlement_id: str, kind: ExportKind, lang: Lang
) -> ExportJob:
    """Record the export and start writing it in the background; 404 for another tenant's."""
    row = await settlement_row(db, tenant_id, settlement_id)
    export_id = "exp_" + secrets.token_hex(10)
    now = now_us()
    await db.execute(
        "INSERT INTO settlement_exports (tenant_id, export_id, settlement_id, kind, lang, status,"
        " done_lines, total_lines, size_bytes, error, created_at_us, updated_at_us)"
        " VALUES ($1, $2, $3, $4, $5, 'running', 0, $6, 0, '', $7, $7)",
        tenant_id, export_id, settlement_id, kind, lang, int(row["line_count"]), now,
    )  # fmt: skip
    job = (tenant_id, settlement_id, export_id, int(row["line_count"]))
    task = asyncio.create_task(_write(db, job, kind, lang))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return await get_export(db, tenant_id, settlement_id, export_id)


async def _write(
    db: Database, job: tuple[str, str, str, int], kind: ExportKind, lang: Lang
) -> None:
    tenant_id, settlement_id, export_id, total = job
    target = export_path(tenant_id, export_id, kind)
    partial = target.with_suffix(".part")
    done = 0
    last_report = time.monotonic()

    async def report(lines: int) -> None:
        nonlocal last_report
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            await _update(db, tenant_id, export_id, "running", min(lines, total))

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_old(target.parent)
        with partial.open("wb") as out:
            if kind == "csv":
                async for chunk in csv_chunks(db, tenant_id, settlement_id, lang):
                    out.write(chunk)
                    done += chunk.count(b"\r\n")
                    await report(max(done - 1, 0))  # the header line is not a settlement line
            else:
                async for chunk in xlsx_chunks(db, tenant_id, settlement_id, lang, report):
                    out.write(chunk)
        partial.replace(target)
        await _update(db, tenant_id, export_id, "done", None, target.stat().st_size)
    except Exception as exc:  # noqa: BLE001 - recorded on the export for the clerk to see
        with contextlib.suppress(OSError):
            partial.unlink()
        await _update(db, tenant_id, export_id, "failed", None, 0, f"{type(exc).__name__}: {exc}")


async def _update(
    db: Database, tenant_id: str, export_id: str, status: str, lines: int | None,
    size: int = 0, error: str = "",
) -> None:  # fmt: skip
    """Record progress (``running``, ``lines`` written), the end (``done``, ``size`` bytes) or
    the failure (``error``)."""
    where = " WHERE tenant_id = $1 AND export_id = $2"
    value: int | str
    if status == "running":
        sql, value = "done_lines = $3", lines or 0
    elif status == "done":
        sql, value = "status = 'done', done_lines = total_lines, size_bytes = $3", size
    else:
        sql, value = "status = 'failed', error = $3", error[:500]
    await db.execute(f"UPDATE settlement_exports SET {sql}, updated_at_us = $4{where}",
                     tenant_id, export_id, value, now_us())  # fmt: skip


def _remove_old(directory: Path) -> None:
    cutoff = time.time() - KEEP_US / 1_000_000
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
