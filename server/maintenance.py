"""Housekeeping that runs beside the app: moving the maturity checkpoints every few seconds
(:mod:`server.ledger.maturity`, so a balance read sums only the entries matured since), and
expiring old Idempotency-Key records.

A client retries a write within minutes; after ``IDEMPOTENCY_RETENTION`` a key is forgotten
(Stripe keeps them 24 hours too) and may be reused for a new request. Natural keys (order id,
refund id, settlement entry locks) keep their guarantees forever; only the generic replay
store is trimmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.common import now_us
from server.db import Database
from server.ledger.maturity import advance_maturity

__all__ = ["IDEMPOTENCY_RETENTION_US", "Maintenance", "purge_idempotency_keys"]

IDEMPOTENCY_RETENTION_US = 24 * 3600 * 1_000_000
_log = logging.getLogger("liebian.maintenance")


async def purge_idempotency_keys(db: Database, at_us: int | None = None, batch: int = 5000) -> int:
    """Delete records older than the retention, in batches; return how many went."""
    cutoff = (now_us() if at_us is None else at_us) - IDEMPOTENCY_RETENTION_US
    removed = 0
    while True:
        rows = await db.fetch(
            "DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys"
            " WHERE created_at_us < $1 LIMIT $2) RETURNING id",
            cutoff,
            batch,
        )
        removed += len(rows)
        if len(rows) < batch:
            return removed


class Maintenance:
    def __init__(
        self, db: Database, interval: float = 600.0, maturity_interval: float = 5.0
    ) -> None:
        self.db = db
        self.interval = interval
        self.maturity_interval = maturity_interval
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + self.interval
        while True:
            await asyncio.sleep(self.maturity_interval)
            try:
                await advance_maturity(self.db)
            except Exception:  # noqa: BLE001 - housekeeping must not take the app down
                _log.exception("maturity checkpoint advance failed")
            if loop.time() < next_purge:
                continue
            next_purge = loop.time() + self.interval
            try:
                await purge_idempotency_keys(self.db)
            except Exception:  # noqa: BLE001 - housekeeping must not take the app down
                _log.exception("idempotency key purge failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liebian-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
