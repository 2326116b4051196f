"""Sealing a tenant's WeChat app secret at rest: AES-256-GCM under a key derived (HKDF-SHA256)
from ``LIEBIAN_SECRET_KEY``.

The tenant id and appid are the associated data, so a sealed secret copied to another tenant's
row, or kept after the appid changed, does not open. A changed (or unset, so per-process)
``LIEBIAN_SECRET_KEY`` cannot open secrets sealed under the old one: :func:`open_secret` raises
:class:`SecretUnreadable` and the admin sets the credentials again.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SecretUnreadable", "open_secret", "seal_secret"]

_VERSION = "v1"
_INFO = b"liebian/wechat-app-secret/v1"
_NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """The sealed secret does not open under the current key (key changed, or row tampered)."""


def _key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return hkdf.derive(secret_key.encode())


def _aad(tenant_id: str, appid: str) -> bytes:
    return f"{tenant_id}\x00{appid}".encode()


def seal_secret(secret_key: str, tenant_id: str, appid: str, secret: str) -> str:
    """``v1.<base64(nonce + ciphertext + tag)>``; a fresh random nonce each time."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_key(secret_key)).encrypt(nonce, secret.encode(), _aad(tenant_id, appid))
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_secret(secret_key: str, tenant_id: str, appid: str, sealed: str) -> str:
    version, _, payload = sealed.partition(".")
    try:
        if version != _VERSION:
            raise ValueError(version)
        raw = base64.urlsafe_b64decode(payload)
        plain = AESGCM(_key(secret_key)).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(tenant_id, appid)
        )
    except (InvalidTag, ValueError):
        raise SecretUnreadable("the stored WeChat secret does not open with this key") from None
    return plain.decode()
