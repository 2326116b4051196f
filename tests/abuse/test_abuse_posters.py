"""Hostile poster templates (issue 13), each measured before as an attack on the shared process:
refused at PUT naming the field, refused again at render when stored behind the API's back,
remembered so a public link cannot make the same template fail again and again, and a runaway
render killed at the deadline while an ordinary poster is still served."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from server.common import now_us
from tests.conftest import TenantKeys, make_tenant
from tests.server.test_referrals import register

CANVAS_10 = {"width": 10, "height": 10}


def _png_bomb(width: int, height: int) -> bytes:
    import struct
    import zlib

    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(b"\x00" * (width + 1)) for _ in range(32))
    body += compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # RGBA: 4 bytes a pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


BOMB_URI = "data:image/png;base64," + base64.b64encode(_png_bomb(11_662, 11_662)).decode()

# The templates measured in the issue (each refused with the field named).
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "huge rect and radius on a 10x10 canvas": (
        {**CANVAS_10, "views": [{"type": "rect", "css": {
            "width": 8192, "height": 8192, "borderRadius": 4096, "background": "#ff0000"}}]},
        "views[0].css.width",
    ),
    "1 MB of text": (
        {**CANVAS_10, "views": [{"type": "text", "text": "长" * 1_000_000,
                                 "css": {"width": 10, "fontSize": 1}}]},
        "views[0].text",
    ),
    "200 large translucent rects": (
        {"width": 4096, "height": 2048, "views": [{"type": "rect", "css": {
            "width": 4096, "height": 2048, "background": "rgba(255, 0, 0, 0.5)"}}] * 200},
        "views[7].css",
    ),
    "a data-URI PNG that inflates to 544 MB": (
        {**CANVAS_10, "views": [{"type": "image", "url": BOMB_URI,
                                 "css": {"width": 10, "height": 10}}]},
        "views[0].url",
    ),
    "201 views": (
        {**CANVAS_10, "views": [{"type": "rect", "css": {"width": 1, "height": 1}}] * 201},
        "views",
    ),
    "a 4096x4096 canvas": ({"width": 4096, "height": 4096}, "width"),
}  # fmt: skip


def test_the_bomb_is_small_and_claims_544_mb() -> None:
    assert len(BOMB_URI) < 8_000
    assert 11_662 * 11_662 * 4 > 544_000_000


@pytest.mark.parametrize("case", list(HOSTILE))
def test_put_refuses_each_hostile_template_naming_the_field(tenant: TenantKeys, case: str) -> None:
    palette, field = HOSTILE[case]
    response = tenant.put("/v1/poster-templates/evil", palette)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert tenant.get("/v1/poster-templates/evil", scope="sdk").status_code == 404  # not stored


def test_put_refuses_200k_views(tenant: TenantKeys) -> None:
    views = [{"type": "rect", "css": {"width": 1, "height": 1}}] * 200_000
    response = tenant.put("/v1/poster-templates/evil", {**CANVAS_10, "views": views})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"  # over 4 MB of JSON
    few = tenant.put("/v1/poster-templates/evil", {**CANVAS_10, "views": views[:20_000]})
    assert few.status_code == 422 and few.json()["errors"][0]["field"] == "views"


async def _store(db: Any, tenant_id: str, name: str, document: str) -> None:
    await db.execute(
        "INSERT INTO poster_templates (tenant_id, name, document, updated_at_us)"
        " VALUES ($1, $2, $3, $4)",
        tenant_id, name, document, now_us(),
    )  # fmt: skip


def _public_path(tenant: TenantKeys, distributor: str, template: str) -> str:
    signed = tenant.get(f"/v1/posters/{distributor}/url", scope="sdk",
                        params={"template": template}).json()  # fmt: skip
    return urlsplit(signed["url"]).path


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_template_stored_behind_the_apis_back_is_refused_once_then_remembered(
    tenant: TenantKeys, client: Any, case: str
) -> None:
    palette, field = HOSTILE[case]
    tenant.call(_store, tenant.tenant_id, "evil", msgspec.json.encode(palette).decode())
    register(tenant, "amy")
    pool = client.app.state.posters.pool
    renders = pool.renders
    first = tenant.get("/v1/posters/amy", scope="sdk", params={"template": "evil"})
    assert first.status_code == 422, first.text
    assert first.json()["errors"][0]["field"] == field
    public = _public_path(tenant, "amy", "evil")
    for _ in range(3):  # a public link hit again and again: answered from memory
        again = client.get(public)
        assert again.status_code == 422
        assert again.headers["content-type"].startswith("application/problem+json")
        assert again.json()["errors"] == [] and "views" not in again.text  # no internals
    assert pool.renders == renders  # never reached a renderer


@pytest.fixture(scope="module")
def deadline_client(settings: Any) -> Iterator[Any]:
    """An app whose renders run in 2 warm worker processes with a 0.8 s deadline."""
    from litestar.testing import TestClient

    from server.app import create_app

    app = create_app(msgspec.structs.replace(settings, poster_workers=2, poster_deadline_ms=800))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        with test_client.portal() as portal:
            portal.call(app.state.posters.pool.warm)
        yield test_client


# Within every bound, yet seconds of drawing (2-3 s idle, ~9 s on a loaded 2-core machine):
# 6 canvas-size gradients and 2,000 characters. An ordinary poster takes ~10-30 ms.
SLOW = {"width": 4096, "height": 2048, "views": [
    {"type": "rect", "css": {"width": 4096, "height": 2048, "borderRadius": 900,
                             "background": f"linear-gradient({30 + i}deg, "
                                           "rgba(255, 0, 0, 0.5), rgba(0, 0, 255, 0.4))"}}
    for i in range(6)
] + [{"type": "text", "text": "长" * 2000, "css": {"width": 4096, "fontSize": 40}}]}  # fmt: skip


def test_a_runaway_render_is_killed_at_the_deadline_while_a_normal_poster_is_served(
    deadline_client: Any,
) -> None:
    tenant = make_tenant(deadline_client, "abuse-deadline")
    assert tenant.put("/v1/poster-templates/slow", SLOW).status_code == 200
    register(tenant, "amy")
    register(tenant, "bob")
    pool = deadline_client.app.state.posters.pool
    killed = pool.killed
    outcome: dict[str, Any] = {}

    def hostile() -> None:
        outcome["slow"] = tenant.get("/v1/posters/amy", scope="sdk", params={"template": "slow"})

    thread = threading.Thread(target=hostile)
    renders = pool.renders
    thread.start()
    while pool.renders == renders and thread.is_alive():  # until the slow render is in a worker
        threading.Event().wait(0.01)
    normal = tenant.get("/v1/posters/bob", scope="sdk")
    slow_still_running = thread.is_alive()
    thread.join(timeout=60)
    assert normal.status_code == 200 and normal.headers["content-type"] == "image/png"
    assert slow_still_running  # the ordinary poster did not wait for the runaway one
    slow = outcome["slow"]
    assert slow.status_code == 503, slow.text
    assert pool.killed == killed + 1  # the worker was killed, not left running
    # Remembered: the next request answers at once without another render.
    renders = pool.renders
    again = tenant.get("/v1/posters/bob", scope="sdk", params={"template": "slow"})
    assert again.status_code == 503 and pool.renders == renders
    # A fresh worker took the killed one's place.
    assert tenant.get("/v1/posters/amy", scope="sdk", params={"format": "jpeg"}).status_code == 200
