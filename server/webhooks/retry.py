"""'Retry now': an operator sends one waiting or failed delivery at once, never twice.

The delivery is claimed by the same kind of conditional UPDATE as the worker's
(:func:`server.webhooks.delivery.claim`): it takes the row only if it is not delivered and no
attempt holds a live lease (``lease_until_us``), and it pushes the next attempt past its own
lease, so the worker cannot claim it while this attempt runs and this cannot claim a row the
worker is sending. Whichever UPDATE commits first wins; the other finds nothing to claim.

A failed (given up) delivery gets one more attempt; if that fails too it stays failed. A
pending one that fails goes back to the worker's backoff.
"""

from __future__ import annotations

import httpx

from server.common import now_us
from server.db import Database
from server.errors import Conflict
from server.webhooks.deliveries import Delivery, get_delivery
from server.webhooks.delivery import DeliveryPolicy, deliver_row, with_targets

__all__ = ["retry_delivery"]


async def retry_delivery(
    db: Database,
    client: httpx.AsyncClient,
    policy: DeliveryPolicy,
    tenant_id: str,
    endpoint_id: str,
    delivery_id: int,
) -> Delivery:
    """Attempt the delivery now and return it with the outcome recorded; 404 if it is not
    the tenant's endpoint's; 409 if it is already delivered or an attempt is in flight."""
    await get_delivery(db, tenant_id, endpoint_id, delivery_id)  # 404 before any write
    now = now_us()
    lease = now + policy.lease_us
    claimed = await db.fetch(
        "UPDATE webhook_outbox SET next_attempt_at_us = $4, lease_until_us = $4,"
        " attempts = attempts + 1 WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3"
        " AND delivered_at_us IS NULL AND (lease_until_us IS NULL OR lease_until_us <= $5)"
        " RETURNING id, tenant_id, endpoint_id, payload, attempts",
        tenant_id, endpoint_id, delivery_id, lease, now,
    )  # fmt: skip
    if not claimed:
        current = await get_delivery(db, tenant_id, endpoint_id, delivery_id)
        if current.status == "delivered":
            raise Conflict(f"webhook delivery {delivery_id} was already delivered")
        raise Conflict(
            f"webhook delivery {delivery_id} is being sent right now; look again in a few seconds"
        )
    rows = await with_targets(db, claimed, lease)
    await deliver_row(db, client, rows[0], policy)
    return await get_delivery(db, tenant_id, endpoint_id, delivery_id)
