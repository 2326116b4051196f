"""The SDK types the program's short domain and mini-program page, and a link's `page`."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sdk_testing import Target, close, done


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_short_domain_and_page_round_trip(target: Target, kind: str) -> None:
    asyncio.run(scenario(target, kind))


async def scenario(target: Target, kind: str) -> None:
    run = uuid.uuid4().hex[:8]
    admin, app = target.client(kind, target.admin_key), target.client(kind, target.sdk_key)
    try:
        program = await done(
            admin.program.put(
                bind_mode="first",
                commission_bps=[1000],
                short_link_base_url="https://go.brand.cn",
                mini_program_page="pages/goods/detail",
            )
        )
        assert program.short_link_base_url == "https://go.brand.cn"
        assert program.mini_program_page == "pages/goods/detail"
        await done(app.distributors.upsert(f"amy-{run}", "Amy"))
        link = await done(app.links.create(f"amy-{run}"))
        assert link.page == "pages/goods/detail"
        assert link.url == f"https://go.brand.cn/s/{link.code}"
        await done(admin.program.put(bind_mode="first", commission_bps=[1000]))
        plain = await done(app.links.create(f"amy-{run}"))
        assert plain.page is None and plain.url.endswith(f"/s/{link.code}")
    finally:
        await close(admin)
        await close(app)
