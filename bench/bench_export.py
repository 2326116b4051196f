"""Settlement export figures (issue 8): CSV time and peak memory for 100,000 lines; XLSX too.

``python -m bench export [--engine E] [--quick] [--lines N] [--xlsx-tracemalloc]``.

A fresh database of the engine is migrated and filled directly (``server.db``) with
one tenant, 100,000 distributors (Chinese nicknames, some emoji, some starting with ``=`` so the
CSV-injection escaping runs), one approved settlement and its 100,000 ``settlement_lines``.

- CSV: ``server.settlements.export.csv_chunks`` consumed into a counting sink, vs the baseline
  ``csv.writer(io.StringIO()).writerows(rows)`` over the same 100,000 lines already in memory,
  in two readings of "the same rows": (a) the CSV rows the export writes (its 13 cells per
  line, read back from one export's output beforehand, so the baseline writes byte-identical
  lines, which is checked), and (b) the 8 stored values per line (stricter). Target: export at
  most 2x the baseline. Timed alternately, median of 3 runs.
- XLSX: ``write_xlsx`` into a counting sink vs xlsxwriter (``constant_memory``) writing the
  same in-memory lines with ``write_row`` (no formats, no formulas), median of 3 runs each;
  baseline (b) writes the export's own 15 cells a line (fen integers, exact yuan decimals)
  with the same column formats, built once: xlsxwriter's raw ``write_row`` speed for the same
  file. Target (issue 22): at most 2x baseline (b); (a) is printed for scale.
- Memory: tracemalloc peak above the level before the export (in this process, in a run of
  its own, since tracing slows everything down; SQLite's page cache is not Python memory and
  does not show there), and ``ru_maxrss`` before/after the export in a fresh child process per
  run, with the peak RSS above the start (``VmHWM`` reset through ``/proc/self/clear_refs``):
  the RSS view, page cache included. Target: growth under 50 MB. At full size write_xlsx is
  traced only with ``--xlsx-tracemalloc`` (tracing it takes about a minute).

Nothing here asserts on time; the targets are reported as met / not met.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import csv
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.harness import PY, ROOT, Line, fresh_database, load_average, migrate, rss_kb, say

QUICK = {"lines": 10_000, "xlsx_tracemalloc": True, "runs": 1}
TENANT = "tn_bench_export"
SETTLEMENT = "stl_bench_export"
BASE_US = 1_790_000_000_000_000
MB = 1024 * 1024
TARGET_RATIO = 2.0
TARGET_GROWTH_MB = 50.0


class CountingSink:
    """A binary file-like that keeps only the byte count."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


# --------------------------------------------------------------------------- data


def nickname(i: int, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.01:
        return f'=HYPERLINK("http://x","{i}")'  # escaped with a leading '
    if roll < 0.05:
        return f"小红书达人🌸{i}"
    return f"分销员{i:06d}号"


async def build(db: Any, lines: int) -> int:
    """Fill the migrated database; return the settlement's total fen."""
    from server.settlements.csvformat import line_cells

    rng, rng_nick = random.Random(42), random.Random(42)  # the same nicknames in both tables
    total = 0
    rows = []
    for i in range(lines):
        commission = rng.randrange(100, 500_000)
        red_packet = rng.choice((0, 0, 0, 88, 188, 888))
        prize = rng.choice((0,) * 20 + (10_000,))
        reversal = -rng.choice((0, 0, 0, 0, rng.randrange(0, commission)))
        net = commission + red_packet + prize + reversal
        total += net
        ref = f"wx_transfer_{i:08d}" if i % 3 else None
        name = nickname(i, rng_nick)
        amounts = (commission, red_packet, prize, reversal, net)
        rows.append((TENANT, SETTLEMENT, f"d{i:07d}", *amounts, ref, name,
                     line_cells(f"d{i:07d}", name, amounts)))  # fmt: skip
    nick_rng = random.Random(42)
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO tenants (tenant_id, name, created_at_us) VALUES ($1, $2, $3)",
                         TENANT, "bench export", BASE_US)  # fmt: skip
        await tx.executemany(
            "INSERT INTO distributors (tenant_id, distributor_id, nickname, status, created_at_us,"
            " updated_at_us) VALUES ($1, $2, $3, 'active', $4, $5)",
            [(TENANT, f"d{i:07d}", nickname(i, nick_rng), BASE_US, BASE_US) for i in range(lines)],
        )
        await tx.executemany(
            "INSERT INTO settlement_lines (tenant_id, settlement_id, distributor_id,"
            " commission_fen, red_packet_fen, prize_fen, reversal_fen, net_fen, transfer_ref,"
            " nickname, csv_cells) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            rows,
        )
        await tx.execute(
            "INSERT INTO settlements (tenant_id, settlement_id, cutoff_us, status, total_fen,"
            " line_count, created_at_us, approved_at_us)"
            " VALUES ($1, $2, $3, 'approved', $4, $5, $6, $7)",
            TENANT, SETTLEMENT, BASE_US, total, lines, BASE_US, BASE_US,
        )
    if db.engine == "postgres":
        await db.execute("ANALYZE")  # what autovacuum does soon after a bulk load
    return total


async def lines_in_memory(db: Any) -> list[tuple[Any, ...]]:
    """The stored values of each line (id, nickname, 5 amounts, transfer ref), in id order."""
    rows = await db.fetch(
        "SELECT distributor_id, nickname, commission_fen, red_packet_fen, prize_fen,"
        " reversal_fen, net_fen, transfer_ref FROM settlement_lines"
        " WHERE tenant_id = $1 AND settlement_id = $2 ORDER BY distributor_id",
        TENANT, SETTLEMENT,
    )
    return [tuple(row) for row in rows]


# --------------------------------------------------------------------------- subjects


async def export_csv(db: Any) -> int:
    from server.settlements.export import csv_chunks

    sink = CountingSink()
    async for chunk in csv_chunks(db, TENANT, SETTLEMENT):
        sink.write(chunk)
    return sink.bytes


async def export_xlsx(db: Any) -> int:
    from server.settlements.export import write_xlsx

    sink = CountingSink()
    await write_xlsx(db, TENANT, SETTLEMENT, sink)  # type: ignore[arg-type]
    return sink.bytes


def baseline_csv(rows: list[Any]) -> int:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return len(buffer.getvalue())


def baseline_csv_text(rows: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def baseline_xlsx(rows: list[tuple[Any, ...]], tmp: Path) -> int:
    import xlsxwriter

    path = tmp / "baseline.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(tmp)})
    sheet = book.add_worksheet("Lines")
    for r, row in enumerate(rows):
        sheet.write_row(r, 0, row)
    book.close()
    size = path.stat().st_size
    path.unlink()
    return size


def xlsx_cells(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The 15 cells of a Lines row as the export writes them (yuan as exact decimals; the
    netted reversal, 0 in this data set, last)."""
    from server.settlements.export import yuan_number

    money = [c for v in row[2:7] for c in (int(v), yuan_number(int(v)))]
    return (row[0], row[1] or "", *money, row[7] or "", 0, yuan_number(0))


def baseline_xlsx_formatted(rows: list[tuple[Any, ...]], tmp: Path) -> int:
    """Raw xlsxwriter writing the export's own cells: the same column formats (built once)."""
    import xlsxwriter

    path = tmp / "baseline.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(tmp)})
    sheet = book.add_worksheet("Lines")
    fen, yuan = book.add_format({"num_format": "0"}), book.add_format({"num_format": "0.00"})
    text = book.add_format({"num_format": "@"})
    for col, fmt in enumerate([text, text, *[fen, yuan] * 5, text, fen, yuan]):
        sheet.set_column(col, col, 14, fmt)
    for r, row in enumerate(rows):
        sheet.write_row(r, 0, row)
    book.close()
    size = path.stat().st_size
    path.unlink()
    return size


async def paired(
    subject: Callable[[], Awaitable[int]],
    baselines: list[Callable[[], int]],
    runs: int,
    warm: bool = True,
) -> tuple[list[float], list[list[float]], int, list[int]]:
    """Alternate the subject and each baseline, ``runs`` times each (after a warm-up)."""
    s_out, b_out = 0, [0] * len(baselines)
    if warm:
        s_out, b_out = await subject(), [b() for b in baselines]
    s_times: list[float] = []
    b_times: list[list[float]] = [[] for _ in baselines]
    for r in range(runs):
        sides = [-1, *range(len(baselines))]
        for side in sides if r % 2 == 0 else reversed(sides):
            start = time.perf_counter()
            if side < 0:
                s_out = await subject()
                s_times.append(time.perf_counter() - start)
            else:
                b_out[side] = baselines[side]()
                b_times[side].append(time.perf_counter() - start)
    return s_times, b_times, s_out, b_out


async def traced_peak(fn: Callable[[], Awaitable[int]]) -> float:
    """tracemalloc peak above the traced level just before ``fn`` runs, in MB."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / MB


# Linux carries a parent's RSS over into a child's ru_maxrss (fork + exec keep the high-water
# mark), so the measuring children are started by this small launcher, itself started before
# the bench process grows: their ru_maxrss then starts near the launcher's ~10 MB.
LAUNCHER = """
import json, subprocess, sys
for line in sys.stdin:
    done = subprocess.run(json.loads(line), capture_output=True, text=True, timeout=600)
    print(json.dumps([done.returncode, done.stdout, done.stderr]), flush=True)
"""


class Launcher:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        code, out, err = json.loads(self.proc.stdout.readline())
        return int(code), str(out), str(err)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


_launcher: Launcher | None = None


def rss_child(db_url: str, fmt: str) -> dict[str, float]:
    assert _launcher is not None
    code, out, err = _launcher.run([PY, "-m", "bench.bench_export", "--child", fmt, db_url])
    if code != 0:
        raise RuntimeError(f"child {fmt} failed:\n{err}")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def proc_status_mb(field: str) -> float:
    return rss_kb(os.getpid(), field) / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def child_main(fmt: str, db_url: str) -> None:
    """In a fresh process: ru_maxrss right before and right after one export."""
    from server.db import connect

    db = await connect(db_url, pool_size=1)
    fn = export_csv if fmt == "csv" else export_xlsx
    import server.settlements.export  # noqa: F401 - imports done before the "before" reading

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hwm_reset = reset_peak_rss()
    rss_before = proc_status_mb("VmRSS")
    start = time.perf_counter()
    size = await fn(db)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hwm = proc_status_mb("VmHWM") if hwm_reset else float("nan")
    rss_after = proc_status_mb("VmRSS")
    await db.close()
    print(
        json.dumps(
            {
                "maxrss_before_mb": before,
                "maxrss_after_mb": after,
                "rss_before_mb": rss_before,
                "rss_after_mb": rss_after,
                "hwm_mb": hwm,
                "bytes": size,
                "seconds": seconds,
            }
        )
    )


# --------------------------------------------------------------------------- main


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


async def main(engine: str, db_url: str, args: argparse.Namespace) -> list[Line]:
    from server.db import connect

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="liebian-bench-export-"))
    db = await connect(db_url, pool_size=2)
    try:
        total = await build(db, args.lines)
        rows = await lines_in_memory(db)
        say(
            f"settlement {SETTLEMENT} [{engine}]: {len(rows):,} lines, total {total:,} fen"
            f" (built in {time.perf_counter() - t_start:.1f} s)"
        )
        lines = await report(db, db_url, rows, tmp, args)
    finally:
        await db.close()
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"{load_average()} after; total {time.perf_counter() - t_start:.0f} s")
    return [Line("export", f"{fmt}, {len(rows):,} lines", engine, f"{ratio:.2f}x baseline", "<= 2x",
                 ratio <= TARGET_RATIO) for fmt, ratio in lines]  # fmt: skip


async def report(
    db: Any, db_url: str, rows: list[tuple[Any, ...]], tmp: Path, args: argparse.Namespace
) -> list[tuple[str, float]]:
    """Print every figure; return the judged ratios (CSV vs baseline (a), XLSX vs (b))."""
    n = len(rows)
    size_note = "" if n >= 100_000 else " (quick size, not the target size)"

    # ---- CSV time
    from server.settlements.export import csv_chunks

    # baseline (a)'s rows: the export's own lines, read back from its output beforehand
    exported = b"".join([c async for c in csv_chunks(db, TENANT, SETTLEMENT)]).decode("utf-8-sig")
    body = exported.split("\r\n", 1)[1]  # without the header line
    body = body[: body.rstrip("\r\n").rfind("\r\n") + 2]  # and the total line (合计 or TOTAL)
    formatted = list(csv.reader(io.StringIO(body, newline="")))
    same = body == baseline_csv_text(formatted) and len(formatted) == n
    s_times, (f_times, r_times), s_bytes, (f_chars, r_chars) = await paired(
        lambda: export_csv(db),
        [lambda: baseline_csv(formatted), lambda: baseline_csv(rows)],
        args.runs,
    )
    s_med = statistics.median(s_times)
    f_med, r_med = statistics.median(f_times), statistics.median(r_times)
    say(f"[csv] {n:,} lines, median of {args.runs} runs each, alternated")
    say(f"  csv_chunks -> counting sink:             {ms(s_med)}  ({s_bytes / MB:.1f} MB out)")
    say(
        f"  baseline (a) writerows, the export's rows: {ms(f_med)}  ({f_chars / MB:.1f} M chars;"
        f" byte-identical to the export's lines: {'yes' if same else 'NO'})"
    )
    say(f"  baseline (b) writerows, the stored values: {ms(r_med)}  ({r_chars / MB:.1f} M chars)")
    for label, base in (("(a)", f_med), ("(b)", r_med)):
        ratio = s_med / base
        say(
            f"  ratio export / baseline {label} = {ratio:.2f}x -> target <= {TARGET_RATIO:.0f}x:"
            f" {'met' if ratio <= TARGET_RATIO else 'NOT met'}{size_note}"
        )
    csv_ratio, b_med = s_med / f_med, f_med

    # breakdown: the export's paged reads alone (same query, same pages), if still there
    import server.settlements.export as export_module

    pages = getattr(export_module, "_pages", None)
    if pages is not None:

        async def read_only() -> int:
            count = 0
            async for page in pages(db, TENANT, SETTLEMENT):
                count += len(page)
            return count

        reads = []
        for _ in range(args.runs):
            start = time.perf_counter()
            await read_only()
            reads.append(time.perf_counter() - start)
        say(
            f"  (breakdown) the paged SELECTs alone: {ms(statistics.median(reads))}"
            f" = {statistics.median(reads) / b_med:.2f}x of baseline (a);"
            f" formatting + writing: {ms(s_med - statistics.median(reads))}"
        )

    # ---- CSV memory
    peaks = [await traced_peak(lambda: export_csv(db)) for _ in range(args.mem_runs)]
    peak = statistics.median(peaks)
    say(
        f"  tracemalloc peak growth during the export: {peak:.1f} MB (median of"
        f" {len(peaks)}) -> target < {TARGET_GROWTH_MB:.0f} MB:"
        f" {'met' if peak < TARGET_GROWTH_MB else 'NOT met'}"
    )
    base_peak = statistics.median(
        [await traced_peak(lambda: _async(baseline_csv, formatted)) for _ in range(args.mem_runs)]
    )
    say(
        f"  (for scale) tracemalloc peak of baseline (a), output held in a StringIO:"
        f" {base_peak:.1f} MB; the formatted rows themselves occupy memory beforehand"
    )
    log_children("csv", [rss_child(db_url, "csv") for _ in range(args.child_runs)])

    # ---- XLSX (seconds per run: no separate warm-up)
    cells = [xlsx_cells(row) for row in rows]
    s_times, (b_times, c_times), s_bytes, (b_bytes, c_bytes) = await paired(
        lambda: export_xlsx(db),
        [lambda: baseline_xlsx(rows, tmp), lambda: baseline_xlsx_formatted(cells, tmp)],
        args.runs,
        warm=False,
    )
    s_med, b_med = statistics.median(s_times), statistics.median(b_times)
    c_med = statistics.median(c_times)
    say(f"[xlsx] {n:,} lines, median of {args.runs} runs each, alternated")
    say(f"  write_xlsx -> counting sink:               {ms(s_med)}  ({s_bytes / MB:.1f} MB)")
    say(f"  baseline (a) write_row, 8 stored values:   {ms(b_med)}  ({b_bytes / MB:.1f} MB)")
    say(f"  baseline (b) write_row, the same 15 cells: {ms(c_med)}  ({c_bytes / MB:.1f} MB)")
    say(
        f"  ratio write_xlsx / baseline (b) = {s_med / c_med:.2f}x -> target <= 2x:"
        f" {'met' if s_med / c_med <= 2 else 'NOT met'} (/ baseline (a) = {s_med / b_med:.2f}x)"
    )
    if args.xlsx_tracemalloc:
        peak = await traced_peak(lambda: export_xlsx(db))
        say(f"  tracemalloc peak growth during write_xlsx: {peak:.1f} MB (1 run)")
    else:
        say(
            "  tracemalloc for write_xlsx skipped at this size (about a minute under tracing;"
            " --xlsx-tracemalloc to include); the fresh child below gives its peak RSS"
        )
    log_children("xlsx", [rss_child(db_url, "xlsx") for _ in range(args.xlsx_child_runs)])
    return [("CSV", csv_ratio), ("XLSX", s_med / c_med)]


def log_children(what: str, children: list[dict[str, float]]) -> None:
    def med(key: str) -> float:
        return statistics.median([c[key] for c in children])

    growth = statistics.median([c["maxrss_after_mb"] - c["maxrss_before_mb"] for c in children])
    peak = statistics.median([c["hwm_mb"] - c["rss_before_mb"] for c in children])
    ok = max(growth, peak) < TARGET_GROWTH_MB
    say(
        f"  fresh child ({what}, median of {len(children)}): ru_maxrss"
        f" {med('maxrss_before_mb'):.1f} -> {med('maxrss_after_mb'):.1f} MB (growth"
        f" {growth:.1f} MB); peak RSS above the RSS at the start (VmHWM reset): +{peak:.1f} MB"
        f" (RSS {med('rss_before_mb'):.1f} -> peak {med('hwm_mb'):.1f} -> end"
        f" {med('rss_after_mb'):.1f} MB; driver buffers and SQLite's page cache included)"
        f" -> target < {TARGET_GROWTH_MB:.0f} MB: {'met' if ok else 'NOT met'}"
    )


async def _async(fn: Callable[..., int], *args: Any) -> int:
    return fn(*args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lines", type=int, default=100_000, help="settlement lines")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side (median)")
    parser.add_argument(
        "--xlsx-tracemalloc", action="store_true",
        help="also trace write_xlsx's Python allocations at full size (adds about a minute)",
    )


def start_launcher() -> None:
    """Called by ``python -m bench`` before it imports anything big (see LAUNCHER)."""
    global _launcher
    if _launcher is None:
        _launcher = Launcher()
        atexit.register(_launcher.close)


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    args.mem_runs = args.child_runs = args.runs
    args.xlsx_child_runs = 1
    say(f"{load_average()} before")
    start_launcher()
    db_url = fresh_database(engine, "export")
    migrate(db_url)
    return asyncio.run(main(engine, db_url, args))


if __name__ == "__main__":  # a measuring child: python -m bench.bench_export --child FMT DB
    asyncio.run(child_main(sys.argv[2], sys.argv[3]))
