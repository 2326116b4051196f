"""Verify Liebian webhook deliveries.

Each delivery carries `Liebian-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
HMAC-SHA256, keyed with the endpoint's secret, of `f"{t}.{body}"` over the raw request body.
During a secret rotation a header may carry several `v1=` values; one match is enough.

    event = liebian_sdk.webhooks.verify(request.body, request.headers["Liebian-Signature"], secret)

Pass the body exactly as received (bytes): re-serialised JSON will not match.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import msgspec

from ._exceptions import WebhookSignatureError

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "construct_event",
    "sign",
    "verify",
    "verify_header",
]

SIGNATURE_HEADER = "Liebian-Signature"
#: Seconds a signature stays valid either side of now (replay protection).
DEFAULT_TOLERANCE = 300

_decode_event = msgspec.json.Decoder(dict[str, Any]).decode


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _signature(timestamp: int, payload: bytes, secret: bytes) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def sign(payload: bytes | str, secret: str | bytes, timestamp: int | None = None) -> str:
    """The `Liebian-Signature` header value for `payload` (for tests and local tooling)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_signature(t, _as_bytes(payload), _as_bytes(secret))}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError("malformed timestamp in signature header") from None
        elif key == "v1":
            signatures.append(value.strip())
        # Other schemes (v0, future v2) are ignored, as a newer server may add them.
    if timestamp is None:
        raise WebhookSignatureError("no timestamp (t=) in signature header")
    if not signatures:
        raise WebhookSignatureError("no v1 signature in signature header")
    return timestamp, signatures


def verify_header(
    payload: bytes | str,
    header: str | None,
    secret: str | bytes,
    tolerance: int | None = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Raise `WebhookSignatureError` unless `header` signs `payload` with `secret`.

    `tolerance` is in seconds; a timestamp further than that from `now` (past or future) is
    refused, to stop replays. `tolerance=None` skips the freshness check.
    """
    if not header:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    if not secret:
        raise WebhookSignatureError("empty webhook secret")
    timestamp, signatures = _parse(header)
    expected = _signature(timestamp, _as_bytes(payload), _as_bytes(secret)).encode()
    # Bytes, because compare_digest refuses non-ASCII str (a hostile header would raise TypeError).
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise WebhookSignatureError("no signature matches the payload")
    current = time.time() if now is None else now
    if tolerance is not None and abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"signature timestamp {timestamp} is outside the {tolerance}s tolerance"
        )


def construct_event(
    payload: bytes | str,
    header: str | None,
    secret: str | bytes,
    tolerance: int | None = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify the signature, then return the JSON event (a dict).

    Raises `WebhookSignatureError` on a bad signature, a stale timestamp or a body that is not
    a JSON object.
    """
    verify_header(payload, header, secret, tolerance, now=now)
    try:
        return _decode_event(payload)
    except msgspec.DecodeError as exc:
        raise WebhookSignatureError(f"signed payload is not a JSON object: {exc}") from None


verify = construct_event
"""Same as `construct_event`: the name used by `client.webhooks.verify`."""
