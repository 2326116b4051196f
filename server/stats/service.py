"""Daily figures per tenant (clicks, bindings, orders, GMV, commission), kept as aggregates.

The overview must not scan orders or clicks. ``roll_up`` folds rows appended since the last
run into ``daily_stats`` (tenant, day in the tenant's time zone, metric) and moves a per-source
watermark (the source table's id), at most ``batch`` rows per source per call, in one
transaction. Rows younger than ``LAG_US`` are left for the next run, so a transaction that
commits a lower id slightly later than a higher one is still counted. Figures are gross: a
refund does not lower the day's orders or GMV, and commission is what was credited that day.

Sources (all append-only): ``link_clicks`` (clicks, once per client per minute),
``attribution_events`` with outcome ``bound`` (bindings), ``orders`` by ``paid_at`` (orders,
GMV in fen), ``ledger_entries`` of kind ``commission`` (commission in fen).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from server.common import now_us
from server.db import Connection, Database
from server.program.service import get_program

__all__ = [
    "LAG_US",
    "METRICS",
    "DailyFigures",
    "daily_figures",
    "roll_up",
    "roll_up_in_background",
]

LAG_US = 120_000_000  # clicks know only their minute: a minute of it is theirs
METRICS = ("clicks", "bindings", "orders", "gmv_fen", "commission_fen")
_US = 1_000_000

# source -> SQL of rows after the watermark: (id, tenant, at_us, recorded_us, value)
_SOURCES = {
    "link_clicks": "SELECT id, tenant_id, minute * 60000000, minute * 60000000, 1"
    " FROM link_clicks WHERE id > $1 ORDER BY id LIMIT $2",
    "attribution_events": "SELECT id, tenant_id, occurred_at_us, recorded_at_us,"
    " CASE WHEN outcome = 'bound' THEN 1 ELSE 0 END"
    " FROM attribution_events WHERE id > $1 ORDER BY id LIMIT $2",
    "orders": "SELECT id, tenant_id, paid_at_us, created_at_us, amount_fen"
    " FROM orders WHERE id > $1 ORDER BY id LIMIT $2",
    "ledger_entries": "SELECT id, tenant_id, created_at_us, created_at_us,"
    " CASE WHEN kind = 'commission' THEN amount_fen ELSE 0 END"
    " FROM ledger_entries WHERE id > $1 ORDER BY id LIMIT $2",
}


class DailyFigures(msgspec.Struct):
    days: list[str]  # oldest first, the last is today (tenant's time zone)
    series: dict[str, list[int]]  # metric -> a value per day

    def today(self, metric: str) -> int:
        return self.series[metric][-1]


def _metrics(source: str, value: int) -> list[tuple[str, int]]:
    if source == "link_clicks":
        return [("clicks", value)]
    if source == "attribution_events":
        return [("bindings", value)] if value else []
    if source == "orders":
        return [("orders", 1), ("gmv_fen", value)]
    return [("commission_fen", value)] if value else []


async def roll_up(db: Database, batch: int = 20_000) -> int:
    """Fold new rows of every source into ``daily_stats``; returns how many rows were read."""
    read = 0
    horizon = now_us() - LAG_US
    zones: dict[str, ZoneInfo] = {}
    for source, sql in _SOURCES.items():
        async with db.transaction() as tx:
            # Taking the watermark row for update serialises concurrent roll-ups (PostgreSQL);
            # SQLite serialises writers anyway.
            await tx.execute(
                "INSERT INTO stats_watermarks (source, last_id) VALUES ($1, 0)"
                " ON CONFLICT (source) DO NOTHING",
                source,
            )
            lock = " FOR UPDATE" if tx.engine == "postgres" else ""
            last = int(
                await tx.fetchval(
                    f"SELECT last_id FROM stats_watermarks WHERE source = $1{lock}", source
                )
            )
            rows = await tx.fetch(sql, last, batch)
            sums: dict[tuple[str, str, str], int] = defaultdict(int)
            for row in rows:
                if int(row[3]) > horizon:
                    break  # too young: this and later ids wait for the next run
                tenant = str(row[1])
                zone = zones.get(tenant) or zones.setdefault(
                    tenant, ZoneInfo((await get_program(tx, tenant)).timezone)
                )
                day = datetime.fromtimestamp(int(row[2]) // _US, UTC).astimezone(zone).date()
                for metric, amount in _metrics(source, int(row[4])):
                    sums[(tenant, day.isoformat(), metric)] += amount
                last = int(row[0])
                read += 1
            if sums:
                await tx.executemany(
                    "INSERT INTO daily_stats (tenant_id, day, metric, value)"
                    " VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (tenant_id, day, metric)"
                    " DO UPDATE SET value = daily_stats.value + excluded.value",
                    [(t, d, m, v) for (t, d, m), v in sums.items()],
                )
            await tx.execute(
                "UPDATE stats_watermarks SET last_id = $2 WHERE source = $1", source, last
            )
    return read


_running = False


async def roll_up_in_background(db: Database) -> None:
    """``roll_up`` unless one is already running in this process (views after a backlog)."""
    global _running
    if _running:
        return
    _running = True
    try:
        await roll_up(db)
    finally:
        _running = False


async def daily_figures(db: Connection, tenant_id: str, days: int = 30) -> DailyFigures:
    """The last ``days`` days (today included) of every metric, from the aggregates only."""
    program = await get_program(db, tenant_id)
    today = datetime.now(ZoneInfo(program.timezone)).date()
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    keys = [d.isoformat() for d in span]
    rows = await db.fetch(
        "SELECT day, metric, value FROM daily_stats WHERE tenant_id = $1 AND day >= $2"
        " AND day <= $3",
        tenant_id,
        keys[0],
        keys[-1],
    )
    index = {d: n for n, d in enumerate(keys)}
    series = {m: [0] * days for m in METRICS}
    for row in rows:
        day, metric = str(row[0]), str(row[1])
        if metric in series and day in index:
            series[metric][index[day]] = int(row[2])
    return DailyFigures(days=keys, series=series)
