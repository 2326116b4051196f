"""What netting known refunds costs a settlement (issue 20), a printed figure.

One tenant, ``--distributors`` distributors with five due commissions each (one order per
commission, in ``orders`` too), one commission in ten fully refunded after the cutoff (its
reversal is not due by the cutoff, so only the netting rule takes it). Then
``server.settlements.service.create_draft`` and ``approve`` run on a fresh database, with the
netting steps (:mod:`server.settlements.netting`) timed inside them: taking the known
reversals and summing them per line in the draft; the re-check (and, on PostgreSQL, the order
row locks) in the approval. Nothing is asserted but that the totals reconcile.

    python -m bench settlement-netting [--engine sqlite|postgres|both] [--quick] [--distributors N]

PostgreSQL runs in a database of its own (``LIEBIAN_BENCH_PG_DB``, see ``bench.harness``),
or in an existing one given with ``--database-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.harness import Line, fresh_database, log, migrate, padded, say, series

TENANT = "tn_bench_netting"
DAY_US = 86_400_000_000
PER_DISTRIBUTOR = 5


async def _load(db: Any, distributors: int, now_us: int) -> None:
    """Bulk-insert with INSERT ... SELECT over a number series ``i`` (one row per commission)."""
    n = distributors * PER_DISTRIBUTOR
    seq, order = series(db.engine, "$2"), padded(db.engine, "o", "i", 8)
    who = padded(db.engine, "d", f"i / {PER_DISTRIBUTOR}", 6)
    async with db.transaction() as tx:
        for table in ("orders", "ledger_entries", "settlement_items", "settlement_lines",
                      "settlement_locks", "settlements"):  # a re-run in a --database-url
            await tx.execute(f"DELETE FROM {table} WHERE tenant_id = $1", TENANT)  # noqa: S608
        await tx.execute(
            "INSERT INTO orders (tenant_id, order_id, user_id, amount_fen, paid_at_us, upline,"
            f" rates_bps, request_hash, created_at_us) SELECT $1, {order}, {who}, 10000,"
            f" $3 - 20 * {DAY_US}, '[]', '[]', 'h', $3 - 20 * {DAY_US} FROM {seq}",
            TENANT, n, now_us,
        )
        await tx.execute(
            "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level,"
            " order_id, available_at_us, created_at_us, memo, dedupe_key)"
            f" SELECT $1, {who}, 'commission', 1000, 1, {order}, $3 - 13 * {DAY_US},"
            f" $3 - 20 * {DAY_US}, '', 'c:' || {order} FROM {seq}",
            TENANT, n, now_us,
        )
        # Full refunds after the cutoff: reversals due now, not by the cutoff.
        await tx.execute(
            "INSERT INTO ledger_entries (tenant_id, distributor_id, kind, amount_fen, level,"
            " order_id, refund_id, reverses_entry_id, available_at_us, created_at_us, memo,"
            " dedupe_key) SELECT tenant_id, distributor_id, 'reversal', -amount_fen, 1, order_id,"
            " 'r', id, $2, $2, '', 'r:' || order_id FROM ledger_entries"
            # order ids end in i's last digit: one in ten
            " WHERE tenant_id = $1 AND kind = 'commission' AND substr(order_id, 9, 1) = '3'",
            TENANT,
            now_us,
        )
    await db.execute("ANALYZE")


def _timed(store: dict[str, float], name: str, fn: Callable[..., Awaitable[Any]]) -> Any:
    async def wrapper(*args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kw)
        finally:
            store[name] = store.get(name, 0.0) + (time.perf_counter() - started) * 1000

    return wrapper


async def _run(url: str, engine: str, distributors: int) -> tuple[str, str]:
    import server.settlements.service as service
    from server.db import connect
    from server.program.schemas import Program

    db = await connect(url, pool_size=2)
    now_us = time.time_ns() // 1000
    try:
        started = time.perf_counter()
        await _load(db, distributors, now_us)
        load_s = time.perf_counter() - started
        spent: dict[str, float] = {}
        for name in ("take_known_reversals", "netted_reversals", "recheck_before_approval"):
            setattr(service, name, _timed(spent, name, getattr(service, name)))
        started = time.perf_counter()
        async with db.transaction() as tx:
            settlement_id = await service.create_draft(
                tx, TENANT, Program(), now_us - 1 * DAY_US
            )
        draft_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        async with db.transaction() as tx:
            await service.approve(tx, TENANT, settlement_id)
        approve_ms = (time.perf_counter() - started) * 1000
        settlement = await service.get_settlement(db, TENANT, settlement_id, limit=1)
        items = int(await db.fetchval(
            "SELECT COUNT(*) FROM settlement_locks WHERE tenant_id = $1", TENANT))
    finally:
        await db.close()
    commissions = distributors * PER_DISTRIBUTOR
    expected = commissions * 1000 - (commissions // 10) * 1000
    if settlement.total_fen != expected:
        raise RuntimeError(f"total {settlement.total_fen} fen, expected {expected}")
    netting = spent["take_known_reversals"] + spent["netted_reversals"]
    figure = f"draft {draft_ms:,.0f} ms (netting {netting:,.0f}), approve {approve_ms:,.0f} ms"
    return figure, "\n".join([
        f"settlement netting [{engine}] {distributors:,} lines, {items:,} entries locked "
        f"({commissions // 10:,} netted reversals; loaded in {load_s:.1f} s)",
        f"  draft   {draft_ms:8.0f} ms, of which netting {netting:6.0f} ms "
        f"({100 * netting / draft_ms:.0f}%)",
        f"  approve {approve_ms:8.0f} ms, of which re-check "
        f"{spent['recheck_before_approval']:6.0f} ms "
        f"({100 * spent['recheck_before_approval'] / approve_ms:.0f}%)",
        "",
    ])


QUICK = {"distributors": 2_000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distributors", type=int, default=20_000)
    parser.add_argument(
        "--database-url",
        help="use this (migrated, empty) PostgreSQL database instead of a fresh bench one",
    )


def run(engine: str, args: argparse.Namespace) -> list[Line]:
    given = args.database_url if engine == "postgres" else None
    url = given or fresh_database(engine, "netting")
    migrate(url)
    log(f"  netting [{engine}]: {args.distributors:,} distributors ...")
    figure, text = asyncio.run(_run(url, engine, args.distributors))
    say(text)
    return [Line("settlement-netting", f"{args.distributors:,} lines", engine, figure,
                 "(figure)", None)]
