"""Webhook signatures: good, tampered, stale, rotated (several v1) and malformed headers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import liebian_sdk as sdk
import pytest
from liebian_sdk import webhooks

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"order.paid","data":{"order_id":"wx-1","amount_fen":19900}}'
NOW = 1_731_290_400


def signed(body: bytes = BODY, secret: str = SECRET, t: int = NOW) -> str:
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def test_good_signature_returns_the_event() -> None:
    event = webhooks.verify(BODY, signed(), SECRET, now=NOW + 10)
    assert event == {
        "id": "evt_1",
        "type": "order.paid",
        "data": {"order_id": "wx-1", "amount_fen": 19900},
    }


def test_sign_matches_the_documented_format() -> None:
    assert webhooks.sign(BODY, SECRET, timestamp=NOW) == signed()


@pytest.mark.parametrize(
    ("payload", "secret"),
    [(BODY.decode(), SECRET), (BODY, SECRET.encode()), (BODY.decode(), SECRET.encode())],
)
def test_str_and_bytes_inputs(payload: str | bytes, secret: str | bytes) -> None:
    assert webhooks.construct_event(payload, signed(), secret, now=NOW)["id"] == "evt_1"


def test_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"19900", b"99900")
    with pytest.raises(sdk.WebhookSignatureError, match="no signature matches"):
        webhooks.verify(tampered, signed(), SECRET, now=NOW)


def test_tampered_signature_and_wrong_secret_are_refused() -> None:
    header = signed()
    flipped = header[:-1] + ("0" if header[-1] != "0" else "1")
    for bad_header, secret in [(flipped, SECRET), (header, "whsec_other")]:
        with pytest.raises(sdk.WebhookSignatureError):
            webhooks.verify(BODY, bad_header, secret, now=NOW)


def test_tampered_timestamp_is_refused() -> None:
    header = signed().replace(f"t={NOW}", f"t={NOW + 5}")
    with pytest.raises(sdk.WebhookSignatureError):
        webhooks.verify(BODY, header, SECRET, now=NOW)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_stale_or_future_timestamps_are_refused(age: int) -> None:
    with pytest.raises(sdk.WebhookSignatureError, match="tolerance"):
        webhooks.verify(BODY, signed(), SECRET, now=NOW + age)


def test_tolerance_is_configurable() -> None:
    assert webhooks.verify(BODY, signed(), SECRET, tolerance=300, now=NOW + 300)
    with pytest.raises(sdk.WebhookSignatureError):
        webhooks.verify(BODY, signed(), SECRET, tolerance=60, now=NOW + 61)
    assert webhooks.verify(BODY, signed(), SECRET, tolerance=None, now=NOW + 10**6)


def test_default_tolerance_uses_the_clock() -> None:
    fresh = webhooks.sign(BODY, SECRET)
    assert webhooks.verify(BODY, fresh, SECRET)["type"] == "order.paid"
    with pytest.raises(sdk.WebhookSignatureError):
        webhooks.verify(BODY, signed(t=NOW), SECRET)


def test_any_of_several_v1_signatures_matches() -> None:
    old = signed(secret="whsec_old").split(",")[1]
    new = signed().split(",")[1]
    for header in (f"t={NOW},{old},{new}", f"t={NOW},{new},{old}", f"{new}, t={NOW}, v0=abc"):
        assert webhooks.verify(BODY, header, SECRET, now=NOW)["id"] == "evt_1"
    with pytest.raises(sdk.WebhookSignatureError):
        webhooks.verify(BODY, f"t={NOW},{old},v1=deadbeef", SECRET, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={NOW}",
        "v1=abcdef",
        f"t=yesterday,v1={'0' * 64}",
        f"t={NOW},v1=ſignature-non-ascii",
    ],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(sdk.WebhookSignatureError):
        webhooks.verify(BODY, header, SECRET, now=NOW)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(sdk.WebhookSignatureError, match="secret"):
        webhooks.verify(BODY, signed(secret=""), "", now=NOW)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_signed_payload_must_be_a_json_object(body: bytes) -> None:
    with pytest.raises(sdk.WebhookSignatureError, match="JSON object"):
        webhooks.verify(body, signed(body), SECRET, now=NOW)


def test_client_webhooks_verify_on_both_clients() -> None:
    fresh = webhooks.sign(BODY, SECRET)
    with sdk.Client("https://x.test", "k") as client:
        assert client.webhooks.verify(BODY, fresh, SECRET)["id"] == "evt_1"
        with pytest.raises(sdk.WebhookSignatureError):
            client.webhooks.verify(BODY + b" ", fresh, SECRET)

    async def main() -> None:
        async with sdk.AsyncClient("https://x.test", "k") as client:
            assert client.webhooks.verify(BODY, fresh, SECRET, tolerance=300)["id"] == "evt_1"

    asyncio.run(main())


def test_module_level_names() -> None:
    assert webhooks.verify is webhooks.construct_event
    assert webhooks.SIGNATURE_HEADER == "Liebian-Signature"
