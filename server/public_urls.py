"""The base of the URLs the service hands out to the public: share links (``/s/{code}``),
the QR code on a poster and signed poster URLs (``/p/{token}``).

They are built from configuration only: the tenant's own short domain
(``short_link_base_url`` in its program) or the service's ``LIEBIAN_PUBLIC_URL``. Never from
the request's ``Host`` (or ``X-Forwarded-Host``) header, which any caller can set: a poster
printed with ``http://evil.example/s/...`` in its QR code would send a distributor's
audience to an attacker.
"""

from __future__ import annotations

from server.program.schemas import Program
from server.settings import Settings

__all__ = ["public_base_url"]


def public_base_url(settings: Settings, program: Program) -> str:
    """The tenant's public base URL, without a trailing slash."""
    return program.short_link_base_url or settings.public_base_url
