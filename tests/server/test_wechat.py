"""WeChat mini-program codes against a fake WeChat API on loopback (tests/fake_wechat.py).

Covers: credentials (sealed, never returned, logged or kept by the idempotency store), tokens
shared by two app instances (database and Redis), refresh on 40001, errcodes as problems,
codes stored once and reused, uploads and their bounds, {wxacode} posters and the QR fallback.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import zxingcpp
from litestar.testing import TestClient
from PIL import Image, ImageChops

from server.app import create_app
from tests.conftest import REDIS_URL, TenantKeys, make_tenant
from tests.fake_wechat import FakeWeChat, code_text


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat() as running:
        yield running


def _app(settings: Any, fake: FakeWeChat, **changes: Any) -> Any:
    changes.setdefault("pool_size", 4)  # PostgreSQL connections are shared with other suites
    return create_app(msgspec.structs.replace(settings, wechat_api_base=fake.url, **changes))


@pytest.fixture(scope="module")
def workers(settings: Any, fake: FakeWeChat) -> Iterator[tuple[Any, Any]]:
    """Two app instances on the same database: two workers."""
    with (
        TestClient(_app(settings, fake), raise_server_exceptions=False) as one,
        TestClient(_app(settings, fake), raise_server_exceptions=False) as two,
    ):
        yield one, two


@pytest.fixture(scope="module")
def redis_workers(settings: Any, fake: FakeWeChat) -> Iterator[tuple[Any, Any]]:
    """Two app instances sharing the database and Redis."""
    import redis

    plain = redis.Redis.from_url(REDIS_URL)
    try:
        plain.ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        plain.close()
    with (
        TestClient(_app(settings, fake, redis_url=REDIS_URL), raise_server_exceptions=False) as a,
        TestClient(_app(settings, fake, redis_url=REDIS_URL), raise_server_exceptions=False) as b,
    ):
        yield a, b


@pytest.fixture
def wx(workers: tuple[Any, Any]) -> TenantKeys:
    return make_tenant(workers[0], "wechat-a")


def _credentials(fake: FakeWeChat, register: bool = True) -> dict[str, str]:
    appid, secret = "wx" + secrets.token_hex(8), secrets.token_hex(16)
    if register:
        fake.add_app(appid, secret)
    return {"appid": appid, "secret": secret}


def _link(keys: TenantKeys, distributor: str = "amy") -> dict[str, Any]:
    keys.put(f"/v1/distributors/{distributor}", {"nickname": distributor}, scope="sdk")
    link = keys.post("/v1/links", {"distributor_id": distributor}, scope="sdk")
    assert link.status_code in (200, 201), link.text
    return dict(link.json())


def _decode(image: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))]


def _on(client: Any, keys: TenantKeys) -> TenantKeys:
    return TenantKeys(keys.tenant_id, keys.admin_key, keys.sdk_key, client)


# ---------------------------------------------------------------- credentials


def test_credentials_are_write_only(wx: TenantKeys, fake: FakeWeChat) -> None:
    assert wx.get("/v1/wechat").json() == {"appid": None, "secret_set": False, "updated_at": None}
    creds = _credentials(fake)
    put = wx.put("/v1/wechat", creds)
    assert put.status_code == 200, put.text
    assert put.json()["appid"] == creds["appid"] and put.json()["secret_set"] is True
    assert creds["secret"] not in put.text
    read = wx.get("/v1/wechat")
    assert read.json()["appid"] == creds["appid"] and creds["secret"] not in read.text
    sealed = wx.call(
        lambda db, t: db.fetchval(
            "SELECT sealed_secret FROM wechat_credentials WHERE tenant_id = $1", t
        ),
        wx.tenant_id,
    )
    assert sealed.startswith("v1.") and creds["secret"] not in sealed
    assert wx.client.delete("/v1/wechat", headers=wx.headers()).status_code == 204
    assert wx.get("/v1/wechat").json()["secret_set"] is False


def test_credentials_need_admin_and_a_valid_shape(wx: TenantKeys, fake: FakeWeChat) -> None:
    creds = _credentials(fake)
    assert wx.put("/v1/wechat", creds, scope="sdk").status_code == 403
    bad = wx.put("/v1/wechat", {**creds, "appid": "not-an-appid"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "appid"
    bad = wx.put("/v1/wechat", {**creds, "secret": "short"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "secret"
    assert "short" not in bad.text


def test_secret_never_in_responses_logs_or_idempotency_store(
    wx: TenantKeys, fake: FakeWeChat, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    creds = _credentials(fake)
    first = wx.put("/v1/wechat", creds, headers={"Idempotency-Key": "wx-creds-1"})
    again = wx.put("/v1/wechat", creds, headers={"Idempotency-Key": "wx-creds-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    link = _link(wx)
    code = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    assert code.status_code == 200, code.text
    stored = wx.call(
        lambda db, t: db.fetch(
            "SELECT request_hash, response_body FROM idempotency_keys WHERE tenant_id = $1", t
        ),
        wx.tenant_id,
    )
    assert stored, "the idempotency store kept the credentials answer"
    out, err = capfd.readouterr()
    texts = [first.text, again.text, code.text, caplog.text, out, err]
    texts += [str(row[0]) + str(row[1]) for row in stored]
    for text in texts:
        assert creds["secret"] not in text
    token = next(t for a, t in fake.tokens.items() if a == creds["appid"])
    assert token not in caplog.text and token not in err  # httpx logs URLs: the token is withheld


# ---------------------------------------------------------------- codes and tokens


def test_code_is_generated_once_and_reused_by_another_worker(
    workers: tuple[Any, Any], wx: TenantKeys, fake: FakeWeChat
) -> None:
    wx.put("/v1/wechat", _credentials(fake))
    link = _link(wx)
    before = dict(fake.calls)
    first = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert first.headers["liebian-wxacode-source"] == "wechat"
    assert _decode(first.content) == [code_text(link["scene"])]
    again = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    other_worker = _on(workers[1], wx).get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    assert again.content == first.content == other_worker.content
    assert fake.calls["getwxacodeunlimit"] - before.get("getwxacodeunlimit", 0) == 1
    assert fake.calls["stable_token"] - before.get("stable_token", 0) == 1


def test_token_is_shared_by_two_workers(
    workers: tuple[Any, Any], wx: TenantKeys, fake: FakeWeChat
) -> None:
    wx.put("/v1/wechat", _credentials(fake))
    one, two = _link(wx, "amy"), _link(wx, "bob")
    tokens = fake.calls["stable_token"]
    assert wx.get(f"/v1/links/{one['code']}/wxacode", scope="sdk").status_code == 200
    second = _on(workers[1], wx).get(f"/v1/links/{two['code']}/wxacode", scope="sdk")
    assert second.status_code == 200, second.text
    assert fake.calls["stable_token"] - tokens == 1  # the second worker used the stored token


def test_token_is_shared_through_redis(redis_workers: tuple[Any, Any], fake: FakeWeChat) -> None:
    import redis

    keys = make_tenant(redis_workers[0], "wechat-redis")
    creds = _credentials(fake)
    keys.put("/v1/wechat", creds)
    one, two = _link(keys, "amy"), _link(keys, "bob")
    tokens = fake.calls["stable_token"]
    assert keys.get(f"/v1/links/{one['code']}/wxacode", scope="sdk").status_code == 200
    other = _on(redis_workers[1], keys)
    assert other.get(f"/v1/links/{two['code']}/wxacode", scope="sdk").status_code == 200
    assert fake.calls["stable_token"] - tokens == 1
    plain = redis.Redis.from_url(REDIS_URL)
    try:
        key = f"liebian:wechat:token:{keys.tenant_id}:{creds['appid']}"
        assert plain.get(key) is not None and 0 < plain.ttl(key) <= 7200 - 300
        in_db = keys.call(
            lambda db, t: db.fetchval("SELECT COUNT(*) FROM wechat_tokens WHERE tenant_id = $1", t),
            keys.tenant_id,
        )
        assert in_db == 0  # with Redis configured the token lives there only
    finally:
        plain.close()


def test_invalid_token_is_refreshed_once_and_retried(wx: TenantKeys, fake: FakeWeChat) -> None:
    wx.put("/v1/wechat", _credentials(fake))
    one, two = _link(wx, "amy"), _link(wx, "bob")
    assert wx.get(f"/v1/links/{one['code']}/wxacode", scope="sdk").status_code == 200
    fake.expire_tokens()
    forced, calls = fake.calls["stable_token_forced"], fake.calls["getwxacodeunlimit"]
    response = wx.get(f"/v1/links/{two['code']}/wxacode", scope="sdk")
    assert response.status_code == 200, response.text
    assert _decode(response.content) == [code_text(two["scene"])]
    assert fake.calls["stable_token_forced"] - forced == 1
    assert fake.calls["getwxacodeunlimit"] - calls == 2


def test_wechat_errcodes_become_problems(wx: TenantKeys, fake: FakeWeChat) -> None:
    wx.put("/v1/wechat", _credentials(fake))
    code = _link(wx)["code"]
    path = f"/v1/links/{code}/wxacode"
    fake.fail_next(45009, "reach max api daily quota limit")
    quota = wx.get(path, scope="sdk")
    assert quota.status_code == 429 and int(quota.headers["retry-after"]) > 0
    assert quota.headers["content-type"].startswith("application/problem+json")
    page = wx.get(path, scope="sdk", params={"page": "pages/missing/index"})
    assert page.status_code == 422 and page.json()["errors"][0]["field"] == "page"
    fake.fail_next(40097, "invalid args: width")
    bad = wx.get(path, scope="sdk", params={"width": 300})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "width"
    # nothing was stored for the failures: the same request now succeeds
    good = wx.get(path, scope="sdk")
    assert good.status_code == 200 and _decode(good.content) == [code_text(_link(wx)["scene"])]
    detail = wx.get(path, scope="sdk", params={"page": "pages/goods/detail", "width": 600})
    assert detail.status_code == 200
    assert Image.open(io.BytesIO(detail.content)).size == (600, 600)
    assert _decode(detail.content) == [code_text(_link(wx)["scene"], "pages/goods/detail")]


def test_query_bounds_are_checked_before_wechat(wx: TenantKeys, fake: FakeWeChat) -> None:
    wx.put("/v1/wechat", _credentials(fake))
    code = _link(wx)["code"]
    calls = fake.calls["getwxacodeunlimit"]
    for params, field in [
        ({"width": 100}, "width"), ({"width": 5000}, "width"),
        ({"page": "/pages/index/index"}, "page"), ({"page": "a?b=c"}, "page"),
        ({"page": "p" * 129}, "page"), ({"env_version": "beta"}, "env_version"),
    ]:  # fmt: skip
        response = wx.get(f"/v1/links/{code}/wxacode", scope="sdk", params=params)
        assert response.status_code in (400, 422), (params, response.text)
        assert field in response.text
    assert fake.calls["getwxacodeunlimit"] == calls


def test_unknown_appid_or_wrong_secret_name_the_field(wx: TenantKeys, fake: FakeWeChat) -> None:
    code = _link(wx)["code"]
    wx.put("/v1/wechat", _credentials(fake, register=False))
    unknown = wx.get(f"/v1/links/{code}/wxacode", scope="sdk")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "appid"
    creds = _credentials(fake)
    wx.put("/v1/wechat", {**creds, "secret": secrets.token_hex(16)})
    wrong = wx.get(f"/v1/links/{code}/wxacode", scope="sdk")
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "secret"


def test_codes_are_tenant_scoped(
    wx: TenantKeys, workers: tuple[Any, Any], fake: FakeWeChat
) -> None:
    wx.put("/v1/wechat", _credentials(fake))
    code = _link(wx)["code"]
    other = make_tenant(workers[0], "wechat-b")
    other.put("/v1/wechat", _credentials(fake))
    assert other.get(f"/v1/links/{code}/wxacode", scope="sdk").status_code == 404
    upload = other.put(f"/v1/links/{code}/wxacode", scope="sdk", content=_png(300),
                       headers={"Content-Type": "image/png"})  # fmt: skip
    assert upload.status_code == 404
    assert wx.get("/v1/links/nosuchcode/wxacode", scope="sdk").status_code == 404


def test_no_credentials_and_no_upload_is_a_409(wx: TenantKeys) -> None:
    code = _link(wx)["code"]
    response = wx.get(f"/v1/links/{code}/wxacode", scope="sdk")
    assert response.status_code == 409 and "PUT /v1/wechat" in response.json()["detail"]


# ---------------------------------------------------------------- uploads


def _png(side: int, colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, "PNG")
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    raw = bytearray(_png(8))
    ihdr = struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(raw)


def _upload(keys: TenantKeys, code: str, body: bytes, media: str = "image/png") -> Any:
    return keys.put(f"/v1/links/{code}/wxacode", scope="sdk", content=body,
                    headers={"Content-Type": media})  # fmt: skip


def test_uploaded_code_is_served_and_needs_no_secret(wx: TenantKeys, fake: FakeWeChat) -> None:
    link = _link(wx)
    image = _png(430)
    stored = _upload(wx, link["code"], image)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"code": link["code"], "source": "upload", "media_type": "image/png",
                             "width": 430, "height": 430, "size_bytes": len(image)}  # fmt: skip
    calls = fake.calls["getwxacodeunlimit"]
    served = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    assert served.content == image and served.headers["liebian-wxacode-source"] == "upload"
    assert fake.calls["getwxacodeunlimit"] == calls
    jpeg = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(jpeg, "JPEG")
    replaced = _upload(wx, link["code"], jpeg.getvalue(), "image/jpeg")
    assert replaced.json()["media_type"] == "image/jpeg"
    served = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    assert served.headers["content-type"] == "image/jpeg"


def test_upload_bounds(wx: TenantKeys) -> None:
    code = _link(wx)["code"]
    too_big = _upload(wx, code, b"\x89PNG" + b"\0" * (2 << 20))
    assert too_big.status_code == 413 and too_big.json()["errors"][0]["field"] == "body"
    bombs = [_png_claiming(60000, 60000), _png_claiming(20000, 20000), _png_claiming(1300, 900)]
    for body in [b"", b"GIF89a not really", b"hello, world", _png(1281), *bombs, _png(400)[:200]]:
        response = _upload(wx, code, body)
        assert response.status_code == 422, (body[:16], response.text)
        assert response.json()["errors"][0]["field"] == "body"
    gif = io.BytesIO()
    Image.new("RGB", (50, 50)).save(gif, "GIF")
    assert _upload(wx, code, gif.getvalue(), "image/gif").status_code == 422
    assert wx.get(f"/v1/links/{code}/wxacode", scope="sdk").status_code == 409  # nothing kept


# ---------------------------------------------------------------- posters

WXACODE_TEMPLATE = {
    "width": 600, "height": 800, "background": "#ffffff",
    "views": [
        {"type": "text", "text": "{nickname}", "css": {"top": 40, "left": 40, "fontSize": 32}},
        {"type": "image", "url": "{wxacode}",
         "css": {"top": 200, "left": 100, "width": 400, "height": 400, "mode": "aspectFit"}},
    ],
}  # fmt: skip


def test_poster_shows_the_code_or_falls_back_to_the_qr(wx: TenantKeys, fake: FakeWeChat) -> None:
    assert wx.put("/v1/poster-templates/mini", WXACODE_TEMPLATE).status_code == 200
    link = _link(wx)
    fallback = wx.get("/v1/posters/amy", scope="sdk", params={"template": "mini"})
    assert fallback.status_code == 200, fallback.text
    assert fallback.headers["liebian-poster-fallback"] == "qr"
    assert _decode(fallback.content) == [link["url"]]
    wx.put("/v1/wechat", _credentials(fake))
    wx.client.app.state.posters.forget_tenant(wx.tenant_id)  # what a 30 s request cache hides
    poster = wx.get("/v1/posters/amy", scope="sdk", params={"template": "mini"})
    assert poster.status_code == 200, poster.text
    assert "liebian-poster-fallback" not in poster.headers
    assert _decode(poster.content) == [code_text(link["scene"])]
    # the region of the {wxacode} view holds the stored code's image, pixel for pixel
    code = Image.open(io.BytesIO(wx.get(f"/v1/links/{link['code']}/wxacode",
                                        scope="sdk").content)).convert("RGB")  # fmt: skip
    region = Image.open(io.BytesIO(poster.content)).convert("RGB").crop((100, 200, 500, 600))
    expected = code.resize((400, 400), Image.Resampling.BICUBIC)
    diff = ImageChops.difference(region, expected).convert("L")
    differing = diff.point(lambda v: 255 if v > 48 else 0).histogram()[255]
    assert differing < 400 * 400 * 0.02
    # the default template shows no code: WeChat is not asked, nothing falls back
    plain = wx.get("/v1/posters/amy", scope="sdk")
    assert plain.status_code == 200 and "liebian-poster-fallback" not in plain.headers


def test_poster_uses_an_uploaded_code(wx: TenantKeys) -> None:
    wx.put("/v1/poster-templates/mini", WXACODE_TEMPLATE)
    link = _link(wx)
    qr = io.BytesIO()
    import qrcode

    qrcode.make("uploaded-by-the-brand").get_image().convert("RGB").save(qr, "PNG")
    assert _upload(wx, link["code"], qr.getvalue()).status_code == 200
    poster = wx.get("/v1/posters/amy", scope="sdk", params={"template": "mini"})
    assert "liebian-poster-fallback" not in poster.headers
    assert _decode(poster.content) == ["uploaded-by-the-brand"]


def test_the_programs_mini_program_page_is_the_default_page(
    wx: TenantKeys, fake: FakeWeChat
) -> None:
    assert wx.put("/v1/program", {"mini_program_page": "pages/goods/detail"}).status_code == 200
    wx.put("/v1/wechat", _credentials(fake))
    link = _link(wx)
    assert link["page"] == "pages/goods/detail"
    code = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk")
    assert code.status_code == 200, code.text
    assert _decode(code.content) == [code_text(link["scene"], "pages/goods/detail")]
    home = wx.get(f"/v1/links/{link['code']}/wxacode", scope="sdk",
                  params={"page": "pages/index/index"})  # fmt: skip
    assert _decode(home.content) == [code_text(link["scene"], "pages/index/index")]


def test_credentials_need_a_configured_secret_key(settings: Any, fake: FakeWeChat) -> None:
    unset = msgspec.structs.replace(settings, secret_key_configured=False)
    with TestClient(_app(unset, fake), raise_server_exceptions=False) as client:
        keys = make_tenant(client, "wechat-nokey")
        response = keys.put("/v1/wechat", _credentials(fake))
        assert response.status_code == 503 and "LIEBIAN_SECRET_KEY" in response.json()["detail"]
        assert keys.get("/v1/wechat").json()["secret_set"] is False


def test_the_input_schema_never_prints_the_secret() -> None:
    from server.wechat.schemas import WeChatSettingsIn

    secret = secrets.token_hex(16)
    data = WeChatSettingsIn(appid="wx0123456789abcdef", secret=secret)
    assert secret not in repr(data) and secret not in str(data)


def test_concurrent_requests_for_one_code_call_wechat_once(
    workers: tuple[Any, Any], wx: TenantKeys, fake: FakeWeChat
) -> None:
    import asyncio

    from server.wechat.schemas import WxacodeOptions

    wx.put("/v1/wechat", _credentials(fake))
    code = _link(wx)["code"]
    service = workers[0].app.state.wechat
    calls = fake.calls["getwxacodeunlimit"]

    async def burst(db: Any, tenant_id: str) -> list[Any]:
        wanted = WxacodeOptions(width=500)
        return list(await asyncio.gather(*[service.wxacode(tenant_id, code, wanted)
                                           for _ in range(8)]))  # fmt: skip

    answers = wx.call(burst, wx.tenant_id)
    assert len({image for _, image, _ in answers}) == 1
    assert fake.calls["getwxacodeunlimit"] - calls == 1


def test_codes_are_stored_per_appid(wx: TenantKeys, fake: FakeWeChat) -> None:
    link = _link(wx)
    path = f"/v1/links/{link['code']}/wxacode"
    first = _credentials(fake)
    wx.put("/v1/wechat", first)
    calls = fake.calls["getwxacodeunlimit"]
    assert wx.get(path, scope="sdk").status_code == 200
    wx.put("/v1/wechat", _credentials(fake))  # another mini-program: its own code
    assert wx.get(path, scope="sdk").status_code == 200
    wx.put("/v1/wechat", first)  # back to the first: its stored code, no call
    assert wx.get(path, scope="sdk").status_code == 200
    assert fake.calls["getwxacodeunlimit"] - calls == 2
    assert wx.client.delete("/v1/wechat", headers=wx.headers()).status_code == 204
    assert wx.get(path, scope="sdk").status_code == 409  # without credentials: uploads only
