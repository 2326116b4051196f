"""The SDK's mini-program code methods and `parse_scene`, against the real app and a fake
WeChat API on loopback: share -> scan (the code's scene) -> onLoad -> bind."""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import liebian_sdk as sdk
import msgspec
import pytest
import zxingcpp
from litestar.testing import TestClient
from PIL import Image
from sdk_testing import BorrowedTransport, Target, ThreadedTransport, done

from tests.conftest import make_tenant
from tests.fake_wechat import FakeWeChat, code_text


@pytest.fixture(scope="module")
def wechat_app(settings: Any) -> Iterator[tuple[TestClient[Any], FakeWeChat]]:
    from server.app import create_app

    with FakeWeChat() as fake:
        app = create_app(msgspec.structs.replace(settings, wechat_api_base=fake.url, pool_size=4))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, fake


@pytest.fixture
def app_target(wechat_app: tuple[TestClient[Any], FakeWeChat]) -> Target:
    client, _ = wechat_app
    keys = make_tenant(client, "sdk-wechat")
    sync_transport = BorrowedTransport(client._transport)
    return Target("app", str(client.base_url).rstrip("/"), keys.admin_key, keys.sdk_key,
                  sync_transport=sync_transport,
                  async_transport=ThreadedTransport(sync_transport))  # fmt: skip


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_share_scan_onload_bind(
    kind: str, app_target: Target, wechat_app: tuple[TestClient[Any], FakeWeChat]
) -> None:
    _, fake = wechat_app
    appid, secret = "wx" + secrets.token_hex(8), secrets.token_hex(16)
    fake.add_app(appid, secret)
    admin = app_target.client(kind, app_target.admin_key)
    backend = app_target.client(kind, app_target.sdk_key)

    async def scenario() -> None:
        try:
            await done(backend.distributors.upsert("alice", nickname="Alice"))
            link = await done(backend.links.create("alice"))
            image = await done(backend.links.wxacode(link.code, page="pages/goods/detail",
                                                     width=300, check_path=True))  # fmt: skip
            assert isinstance(image, bytes) and image.startswith(b"\x89PNG")
            # the code carries the link's scene; WeChat hands it to onLoad URL-encoded
            texts = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))]
            assert texts == [code_text(link.scene, "pages/goods/detail")]
            scene = sdk.parse_scene(quote(link.scene, safe=""))
            assert scene == link.scene
            bound = await done(backend.referrals.bind("newcomer", scene=scene))
            assert bound.outcome == "bound" and bound.inviter_id == "alice"
            # a brand without shared credentials uploads its own image
            other = await done(backend.links.create("alice", channel="moments"))
            stored = await done(backend.links.upload_wxacode(other.code, _png(430)))
            assert isinstance(stored, sdk.Wxacode)
            assert (stored.source, stored.media_type, stored.width) == ("upload", "image/png", 430)
            assert await done(backend.links.wxacode(other.code)) == _png(430)
            with pytest.raises(sdk.ValidationError) as caught:
                await done(backend.links.upload_wxacode(other.code, b"not an image"))
            assert caught.value.errors[0].field == "body"
            with pytest.raises(sdk.NotFoundError):
                await done(backend.links.wxacode("nosuchcode"))
        finally:
            for client in (admin, backend):
                if isinstance(client, sdk.AsyncClient):
                    await client.aclose()
                else:
                    client.close()

    # the brand's admin sets the credentials once, over HTTP (PUT /v1/wechat)
    app_client, _ = wechat_app
    admin_key = {"Authorization": f"Bearer {app_target.admin_key}"}
    credentials = {"appid": appid, "secret": secret}
    response = app_client.put("/v1/wechat", json=credentials, headers=admin_key)
    assert response.status_code == 200, response.text
    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("raw", "scene"),
    [("lb%3DAbC123", "lb=AbC123"), ("lb=AbC123", "lb=AbC123"), ("a%2Cb%3Ac", "a,b:c"),
     ("x" * 32, "x" * 32)],
)  # fmt: skip
def test_parse_scene_decodes(raw: str, scene: str) -> None:
    assert sdk.parse_scene(raw) == scene


@pytest.mark.parametrize(
    "raw", ["", "x" * 33, "lb%3D%E4%B8%AD", "a%20b", "a b", "%", "lb%3D" + "%25" * 10, "y" * 1000]
)
def test_parse_scene_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="scene"):
        sdk.parse_scene(raw)
