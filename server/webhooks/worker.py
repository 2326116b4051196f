"""The background delivery loop of the app: keeps up to ``concurrency`` attempts in flight.

Each attempt is a task of its own; when one ends its slot is refilled at once (fairly, see
:mod:`server.webhooks.delivery`), so a slow endpoint delays nobody but its own tenant's
``per_tenant`` slots, and never for longer than the policy's deadline per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence

import httpx

from server.common import now_us
from server.db import Database
from server.webhooks.delivery import Claimed, DeliveryPolicy, claim, deliver_row, give_up_abandoned

__all__ = ["WebhookWorker"]

_log = logging.getLogger("liebian.webhooks")
SWEEP_US = 30_000_000


class WebhookWorker:
    def __init__(
        self,
        db: Database,
        client: httpx.AsyncClient,
        policy: DeliveryPolicy | None = None,
        interval: float = 1.0,
        tenants: Sequence[str] = (),
    ) -> None:
        """``tenants``: deliver only theirs (a test's or a shard's); all by default."""
        self.db = db
        self.client = client
        self.policy = policy or DeliveryPolicy()
        self.interval = interval
        self.tenants = tuple(tenants)
        self.in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_sweep_us = 0

    async def fill(self) -> int:
        """Claim due rows into the free slots and start them; return how many started."""
        now = now_us()
        if now >= self._next_sweep_us:  # rare: only rows whose last attempt never reported
            await give_up_abandoned(self.db, now)
            self._next_sweep_us = now + SWEEP_US
        free = self.policy.concurrency - len(self._tasks)
        rows = await claim(self.db, now, self.policy, free, self.in_flight, self.tenants)
        for row in rows:
            self._start(row)
        return len(rows)

    def _start(self, row: Claimed) -> None:
        tenant = row.tenant_id
        self.in_flight[tenant] += 1
        task = asyncio.create_task(deliver_row(self.db, self.client, row, self.policy))
        self._tasks.add(task)

        def done(finished: asyncio.Task[bool]) -> None:
            self._tasks.discard(finished)
            self.in_flight[tenant] -= 1
            if self.in_flight[tenant] <= 0:
                del self.in_flight[tenant]
            self._wake.set()

        task.add_done_callback(done)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if await self.fill():
                    continue  # maybe more is due and there is room
            except Exception:  # noqa: BLE001 - keep delivering after a transient failure
                _log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liebian-webhooks")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming and cancel attempts in flight (their lease brings them back).

        Waits at most ``grace`` seconds: an attempt whose clean-up does not end (an HTTP
        connection pool stuck after a cancellation, say) must not hold up shutdown.
        """
        pending = [t for t in (self._task, *self._tasks) if t is not None]
        for task in pending:
            task.cancel()
        if not pending:
            return
        done, stuck = await asyncio.wait(pending, timeout=grace)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                _log.warning("webhook task ended with %r while stopping", task.exception())
        if stuck:
            _log.warning(
                "%d webhook attempt(s) did not stop within %g s; their lease brings them back",
                len(stuck),
                grace,
            )
