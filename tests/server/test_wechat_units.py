"""WeChat pieces without the app: sealing, the client's bounds, the rate bucket, the setting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from server.errors import InvalidInput
from server.settings import SettingsError, load_settings
from server.wechat import client as wechat_client
from server.wechat.client import MAX_IMAGE_BYTES, WeChatClient, WeChatError, WeChatUnavailable
from server.wechat.errors import RateLimited, WeChatUpstream, problem_for
from server.wechat.sealing import SecretUnreadable, open_secret, seal_secret
from server.wechat.service import (
    BURST,
    MAX_PACE_WAIT_S,
    RATE_PER_S,
    WeChatService,
    check_scene,
)

KEY = "a-server-secret-key-0123456789"
SECRET = "0123456789abcdef0123456789abcdef"


def test_sealed_secret_opens_only_with_its_key_tenant_and_appid() -> None:
    sealed = seal_secret(KEY, "tn_a", "wx0123456789abcdef", SECRET)
    assert SECRET not in sealed and sealed != seal_secret(KEY, "tn_a", "wx0123456789abcdef", SECRET)
    assert open_secret(KEY, "tn_a", "wx0123456789abcdef", sealed) == SECRET
    for key, tenant, appid, blob in [
        ("another-server-key-0123456789", "tn_a", "wx0123456789abcdef", sealed),
        (KEY, "tn_b", "wx0123456789abcdef", sealed),  # copied to another tenant's row
        (KEY, "tn_a", "wxffffffffffffffff", sealed),  # kept after the appid changed
        (KEY, "tn_a", "wx0123456789abcdef", sealed[:-4] + "AAAA"),  # tampered
        (KEY, "tn_a", "wx0123456789abcdef", "v0.garbage"),
    ]:
        with pytest.raises(SecretUnreadable):
            open_secret(key, tenant, appid, blob)


def _client(handler: object) -> tuple[WeChatClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return WeChatClient(http, "http://127.0.0.1:9"), http


def test_an_oversized_answer_is_refused_not_buffered() -> None:
    sent: list[int] = []

    def huge(request: httpx.Request) -> httpx.Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_IMAGE_BYTES // 65536 + 8):
                sent.append(65536)
                yield b"\0" * 65536

        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=chunks())

    async def run() -> None:
        client, http = _client(huge)
        async with http:
            with pytest.raises(WeChatUnavailable, match="byte bound"):
                await client.wxacode_unlimited("token", {"scene": "lb=x"})

    asyncio.run(run())
    assert sum(sent) <= MAX_IMAGE_BYTES + 2 * 65536  # stopped reading just past the bound


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    yield data  # a streamed body, as from the network (MockTransport pre-reads plain bytes)


def test_declared_oversize_and_http_errors_and_non_json() -> None:
    def declared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(10 << 20)}, content=_stream(b""))

    def status(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, content=_stream(b"bad gateway"))

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Type": "text/html"}, content=_stream(b"<html>")
        )

    async def run() -> None:
        for handler, match in [(declared, "bound"), (status, "HTTP 502"), (html, "JSON")]:
            client, http = _client(handler)
            async with http:
                with pytest.raises(WeChatUnavailable, match=match):
                    await client.stable_token("wx0123456789abcdef", SECRET, False)

    asyncio.run(run())


def test_one_deadline_for_the_whole_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wechat_client, "DEADLINE_S", 0.2)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"access_token": "x", "expires_in": 7200})

    async def run() -> None:
        client, http = _client(slow)
        async with http:
            with pytest.raises(WeChatUnavailable) as caught:
                await client.stable_token("wx0123456789abcdef", SECRET, False)
            assert caught.value.timeout

    asyncio.run(run())


def test_errcode_table() -> None:
    cases = {
        41030: (422, "page"), 40097: (422, "width"), 40013: (422, "appid"),
        40125: (422, "secret"), 45009: (429, None), -1: (503, None), 99999: (502, None),
    }  # fmt: skip
    for errcode, (status, field) in cases.items():
        problem = problem_for(WeChatError(errcode, "invalid args: width"))
        assert problem.status == status, errcode
        if field is not None:
            assert problem.errors[0].field == field
    assert isinstance(problem_for(WeChatError(45009, "quota")), RateLimited)
    assert problem_for(WeChatError(45009, "quota")).headers == {"Retry-After": "3600"}
    assert isinstance(problem_for(WeChatError(12345, "x")), WeChatUpstream)


def test_rate_bucket_bounds_calls_per_tenant() -> None:
    service = WeChatService(None, None, KEY)  # type: ignore[arg-type]

    async def run() -> None:
        start = time.monotonic()
        for _ in range(BURST):
            await service._pace("tn_a")  # the burst goes at once
        assert time.monotonic() - start < 0.5
        await service._pace("tn_a")  # the next waits for its turn: 1 / RATE_PER_S
        assert time.monotonic() - start >= 0.8 / RATE_PER_S
        # calls queued past MAX_PACE_WAIT_S are refused with a Retry-After
        bucket = service._buckets["tn_a"]
        refused = sum(not bucket.take(MAX_PACE_WAIT_S)[0] for _ in range(int(RATE_PER_S) + 5))
        assert refused > 0
        with pytest.raises(RateLimited) as caught:
            await service._pace("tn_a")
        assert caught.value.status == 429
        assert int(caught.value.headers["Retry-After"]) >= 1  # type: ignore[index]
        await service._pace("tn_b")  # another tenant has its own bucket

    asyncio.run(run())
    assert (RATE_PER_S, BURST, MAX_PACE_WAIT_S) == (20, 40, 1.0)


def test_scene_charset_and_length() -> None:
    assert check_scene("lb=AbC123") == "lb=AbC123"
    for bad in ["", "x" * 33, "lb=中文", "lb=a%20b", "a b"]:
        with pytest.raises(InvalidInput):
            check_scene(bad)


def test_wechat_api_base_setting() -> None:
    assert load_settings({}).wechat_api_base == "https://api.weixin.qq.com"
    base = load_settings({"LIEBIAN_WECHAT_API_BASE": "http://127.0.0.1:8081/"}).wechat_api_base
    assert base == "http://127.0.0.1:8081"
    for bad in ["ftp://x", "not a url", "http://x/?a=b"]:
        with pytest.raises(SettingsError, match="LIEBIAN_WECHAT_API_BASE"):
            load_settings({"LIEBIAN_WECHAT_API_BASE": bad})


def test_the_images_bytes_decide_its_media_type() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

    def mislabelled(request: httpx.Request) -> httpx.Response:
        assert request.url.params["access_token"] == "token"
        return httpx.Response(200, headers={"Content-Type": "image/jpeg"}, content=_stream(png))

    def quota(request: httpx.Request) -> httpx.Response:
        body = b'{"errcode":45009,"errmsg":"reach max api daily quota limit"}'
        return httpx.Response(200, headers={"Content-Type": "application/json"},
                              content=_stream(body))  # fmt: skip

    async def run() -> None:
        client, http = _client(mislabelled)
        async with http:
            assert await client.wxacode_unlimited("token", {"scene": "lb=x"}) == ("image/png", png)
        client, http = _client(quota)
        async with http:
            with pytest.raises(WeChatError) as caught:
                await client.wxacode_unlimited("token", {"scene": "lb=x"})
            assert caught.value.errcode == 45009

    asyncio.run(run())
