"""Maturity checkpoints: the matured part of each balance kept as a total, so a balance read
sums only the entries that matured since the tenant's last checkpoint (seconds of volume).

Per tenant, ``maturity_checkpoints.checkpoint_us`` (C) and per distributor
``distributor_totals.matured_fen`` keep one invariant, checked by ``liebian ledger verify``:

    matured_fen = sum of the distributor's entries (absorbed ones excepted) with
                  available_at_us <= C

so at any ``now`` the matured amount is ``matured_fen`` plus the entries with
``C < available_at_us <= now`` (minus those with ``now < available_at_us <= C`` when ``now``
is before C), read on ``ix_entries_pending`` (:mod:`server.ledger.balances`).

:func:`advance_maturity` (the maintenance loop, every few seconds) moves C to
``now - MATURITY_LAG_US`` (two minutes) in batches, each one transaction that locks the
checkpoint row, adds the entries of ``(C, C']`` to ``matured_fen`` and stores C'. Writers add
nothing for it, by this argument: an entry is written with ``available_at_us`` at most
``LATE_US`` (one minute) before its writer's clock (an order in its freeze window or just paid,
a reversal, a withdrawal), so for it to fall at or before a C taken after its commit, its
transaction would have to run for longer than ``MATURITY_LAG_US - LATE_US``, a minute: longer
than any statement here may run (the pool's command timeout). An entry already mature when
written (:func:`is_late`: an order reported more than a minute after its freeze window ended,
a red packet of a binding dated in the past) is the exception: :func:`late_checkpoint` takes
the checkpoint row shared, so no advance runs in between, and the entry is booked into
``matured_fen`` at once when the checkpoint already covers it
(:func:`server.ledger.totals.add_entries`; PostgreSQL's one-statement orders run their
statement inside :func:`late_booking` then, and the statement itself stays as it is).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from server.db import Connection, Database

__all__ = [
    "CHECKPOINT_SQL",
    "LATE_US",
    "MATURITY_LAG_US",
    "NO_CHECKPOINT",
    "advance_maturity",
    "is_late",
    "late_booking",
    "late_checkpoint",
]

MATURITY_LAG_US = 120_000_000
LATE_US = 60_000_000
# Before a tenant's first advance nothing is matured (every entry is after this checkpoint).
NO_CHECKPOINT = -(2**62)
# The tenant's checkpoint as an SQL expression of the tenant placeholder $1.
CHECKPOINT_SQL = (
    "COALESCE((SELECT m.checkpoint_us FROM maturity_checkpoints m WHERE m.tenant_id = $1),"
    f" {NO_CHECKPOINT})"
)

_ENSURE = (
    "INSERT INTO maturity_checkpoints (tenant_id, checkpoint_us) VALUES ($1, $2)"
    " ON CONFLICT (tenant_id) DO NOTHING"
)
# The upper bound of one batch: the batch-th entry after the checkpoint (ties all go with it).
_BATCH_END = """
SELECT COUNT(*) AS n, MAX(available_at_us) AS last FROM (
  SELECT available_at_us FROM ledger_entries
  WHERE tenant_id = $1 AND available_at_us > $2 AND available_at_us <= $3
  ORDER BY available_at_us LIMIT $4
) AS x
"""
_MATURE = """
INSERT INTO distributor_totals (tenant_id, distributor_id, shard, credited_fen, reversed_fen,
                                absorbed_fen, settled_fen, paid_fen, matured_fen)
SELECT e.tenant_id, e.distributor_id, {shard}, 0, 0, 0, 0, 0, SUM(e.amount_fen)
FROM ledger_entries e
WHERE e.tenant_id = $1 AND e.available_at_us > $2 AND e.available_at_us <= $3
  AND e.kind <> 'absorbed_reversal'
GROUP BY e.tenant_id, e.distributor_id ORDER BY e.distributor_id
ON CONFLICT (tenant_id, distributor_id, shard) DO UPDATE SET
  matured_fen = distributor_totals.matured_fen + excluded.matured_fen
"""

# Tenants with an entry to mature. A tenant left out keeps its older checkpoint: nothing lies
# between it and the target, so a read's range holds the same entries either way.
_DUE_TENANTS = f"""
SELECT t.tenant_id FROM tenants t
WHERE EXISTS (
  SELECT 1 FROM ledger_entries e
  WHERE e.tenant_id = t.tenant_id AND e.available_at_us <= $1
    AND e.available_at_us > COALESCE((SELECT m.checkpoint_us FROM maturity_checkpoints m
                                      WHERE m.tenant_id = t.tenant_id), {NO_CHECKPOINT}))
ORDER BY t.tenant_id
"""


def is_late(available_at_us: int, now_us: int) -> bool:
    """Whether an entry written at ``now_us`` must be booked against the checkpoint."""
    return available_at_us < now_us - LATE_US


def _locked(tx: Connection, mode: str) -> str:
    lock = f" FOR {mode}" if tx.engine == "postgres" else ""  # SQLite: one writer at a time
    return f"SELECT checkpoint_us FROM maturity_checkpoints WHERE tenant_id = $1{lock}"


async def late_checkpoint(tx: Connection, tenant_id: str) -> int:
    """The tenant's checkpoint, its row held shared until ``tx`` ends (no advance meanwhile):
    call before booking an entry that is already mature when written."""
    at = await tx.fetchval(_locked(tx, "SHARE"), tenant_id)
    if at is None:
        await tx.execute(_ENSURE, tenant_id, NO_CHECKPOINT)
        at = await tx.fetchval(_locked(tx, "SHARE"), tenant_id)
    return int(at)


_ADD_MATURED = """
INSERT INTO distributor_totals (tenant_id, distributor_id, shard, credited_fen, reversed_fen,
                                absorbed_fen, settled_fen, paid_fen, matured_fen)
VALUES ($1, $2, {shard}, 0, 0, 0, 0, 0, $3)
ON CONFLICT (tenant_id, distributor_id, shard) DO UPDATE SET
  matured_fen = distributor_totals.matured_fen + excluded.matured_fen
"""
Book = Callable[[Iterable[tuple[str, int]]], Awaitable[None]]


@asynccontextmanager
async def late_booking(
    db: Database, tenant_id: str, available_at_us: int, now_us: int
) -> AsyncIterator[tuple[Connection, Book]]:
    """For a one-statement write of entries due at ``available_at_us``: yields the connection
    to run it on and ``book``, to call with the ``(distributor_id, amount_fen)`` it wrote
    (absorbed entries left out). An entry that is not late runs on ``db`` as it is and books
    nothing; a late one runs in a transaction holding the checkpoint shared, and ``book`` adds
    it to ``matured_fen`` when the checkpoint covers it."""
    if not is_late(available_at_us, now_us):

        async def nothing(_amounts: Iterable[tuple[str, int]]) -> None:
            return None

        yield db, nothing
        return
    from server.ledger.totals import with_shard

    async with db.transaction() as tx:
        covered = available_at_us <= await late_checkpoint(tx, tenant_id)

        async def book(amounts: Iterable[tuple[str, int]]) -> None:
            sums: dict[str, int] = {}
            for distributor_id, amount in amounts:
                sums[distributor_id] = sums.get(distributor_id, 0) + amount
            if covered and sums:
                await tx.executemany(
                    with_shard(tx, _ADD_MATURED), [(tenant_id, d, sums[d]) for d in sorted(sums)]
                )

        yield tx, book


async def _advance_tenant(db: Database, tenant_id: str, target: int, batch: int) -> int:
    from server.ledger.totals import with_shard

    await db.execute(_ENSURE, tenant_id, NO_CHECKPOINT)
    batches = 0
    while True:
        async with db.transaction() as tx:
            previous = int(await tx.fetchval(_locked(tx, "UPDATE"), tenant_id))
            if previous >= target:
                return batches
            row = await tx.fetchrow(_BATCH_END, tenant_id, previous, target, batch)
            if row is None:  # cannot happen: an aggregate always returns a row
                raise RuntimeError("invariant broken: row is None")
            count = int(row["n"])
            end = target if count < batch else int(row["last"])
            await tx.execute(with_shard(tx, _MATURE), tenant_id, previous, end)
            await tx.execute(
                "UPDATE maturity_checkpoints SET checkpoint_us = $2 WHERE tenant_id = $1",
                tenant_id,
                end,
            )
        batches += 1
        if end >= target:
            return batches


async def advance_maturity(
    db: Database, tenant_id: str | None = None, *, at_us: int | None = None, batch: int = 5000
) -> int:
    """Move the checkpoint of the tenant (every tenant when ``None``) to ``at_us`` (now) minus
    ``MATURITY_LAG_US``, ``batch`` entries a transaction (resumable: the checkpoint is the
    position); the number of batches (transactions) that moved a checkpoint."""
    from server.common import now_us

    target = (now_us() if at_us is None else at_us) - MATURITY_LAG_US
    if tenant_id is not None:
        tenants = [tenant_id]
    else:
        tenants = [r[0] for r in await db.fetch(_DUE_TENANTS, target)]
    batches = 0
    for tenant in tenants:
        batches += await _advance_tenant(db, tenant, target, batch)
    return batches
