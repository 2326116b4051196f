"""``liebian demo``: create (or reuse) a demo tenant with a small referral tree, a campaign and
a few orders, and return its keys, a share link and a poster URL.

Keys are stored hashed, so a reused demo tenant gets fresh keys each time (the old ones are
revoked).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.campaigns.schemas import CampaignIn, PrizeIn, RedPacketIn
from server.campaigns.service import create_campaign
from server.common import from_us, now_us
from server.db import Database
from server.orders.schemas import OrderIn
from server.orders.service import record_order
from server.program.schemas import ProgramIn
from server.program.service import get_program, put_program
from server.referrals.schemas import DistributorIn, LinkIn, Tier
from server.referrals.service import Arrival, bind_referral, create_link, upsert_distributor
from server.tenants.service import create_tenant, find_tenant, rotate_keys

__all__ = ["DEMO_NAME", "ensure_demo"]

DEMO_NAME = "demo"
# (id, nickname, tier, inviter): a seed owner, two KOCs, and members: the 1-9-90 pyramid.
TREE: list[tuple[str, str, Tier, str | None]] = [
    ("chen", "陈姐·种子群主", "seed", None),
    ("li", "小李 KOC", "koc", "chen"),
    ("wang", "王同学 KOC", "koc", "chen"),
    ("zhao", "赵小美", "member", "li"),
    ("qian", "钱多多", "member", "li"),
    ("sun", "孙悟空", "member", "wang"),
]
BUYERS = [
    ("buyer-1", "zhao", 19900),
    ("buyer-2", "qian", 29900),
    ("buyer-3", "sun", 9900),
    ("buyer-4", "li", 59900),
]


async def _seed(db: Database, tenant_id: str, base_url: str) -> str:
    now = now_us()
    await put_program(
        db,
        tenant_id,
        ProgramIn(
            commission_bps=[1000, 500],
            landing_url="https://shop.example.com/liebian-demo",
            freeze_days=7,
        ),
    )
    async with db.transaction() as tx:
        campaign = await create_campaign(
            tx,
            tenant_id,
            CampaignIn(
                name="双十二 KOC 排行榜",
                starts_at=from_us(now) - timedelta(days=1),
                ends_at=from_us(now) + timedelta(days=30),
                metric="gmv",
                prizes=[PrizeIn(1, 1, 88800), PrizeIn(2, 3, 38800), PrizeIn(4, 10, 8800)],
                red_packet=RedPacketIn(
                    mode="random_per_invite", budget_fen=100000, min_fen=100, max_fen=888, seed=2026
                ),
            ),
        )
    program = await get_program(db, tenant_id)
    links: dict[str, Any] = {}
    for distributor_id, nickname, tier, inviter in TREE:
        async with db.transaction() as tx:
            if inviter is not None:
                await bind_referral(
                    tx, tenant_id, program, Arrival(distributor_id, links[inviter], now, None)
                )
            await upsert_distributor(
                tx, tenant_id, distributor_id, DistributorIn(nickname=nickname, tier=tier)
            )
            link = await create_link(
                tx,
                tenant_id,
                LinkIn(distributor_id=distributor_id, campaign_id=campaign.id),
                base_url,
            )
            links[distributor_id] = {
                "code": link.code,
                "distributor_id": distributor_id,
                "campaign_id": campaign.id,
                "channel": "",
            }
    for buyer, inviter, amount in BUYERS:
        async with db.transaction() as tx:
            await bind_referral(tx, tenant_id, program, Arrival(buyer, links[inviter], now, None))
        await record_order(
            db,
            tenant_id,
            program,
            OrderIn(
                order_id=f"demo-{buyer}",
                user_id=buyer,
                amount_fen=amount,
                paid_at=from_us(now),
            ),
            now,
            None,
            "",
        )
    return campaign.id


async def ensure_demo(db: Database, base_url: str) -> dict[str, Any]:
    base_url = base_url.rstrip("/")
    tenant_id = await find_tenant(db, DEMO_NAME)
    if tenant_id is None:
        created = await create_tenant(db, DEMO_NAME)
        tenant_id = created.tenant_id
        keys = {"admin_key": created.admin_key, "sdk_key": created.sdk_key}
        campaign_id = await _seed(db, tenant_id, base_url)
    else:
        keys = await rotate_keys(db, tenant_id, ("admin", "sdk"))
        campaign_id = await db.fetchval(
            "SELECT campaign_id FROM campaigns WHERE tenant_id = $1 ORDER BY id LIMIT 1", tenant_id
        )
    code = await db.fetchval(
        "SELECT code FROM links WHERE tenant_id = $1 AND distributor_id = 'li' ORDER BY id LIMIT 1",
        tenant_id,
    )
    return {
        "tenant_id": tenant_id,
        **keys,
        "campaign_id": campaign_id,
        "share_link": f"{base_url}/s/{code}",
        "poster_url": f"{base_url}/v1/posters/li?campaign_id={campaign_id}&format=jpeg",
        "docs": f"{base_url}/schema",
    }
