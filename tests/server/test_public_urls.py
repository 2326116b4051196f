"""Public URLs come from configuration, never from the request's Host header (issue 12).

Share links (``url`` of ``POST /v1/links``), the QR code on a poster and signed poster URLs
(``/p/...``) are built from ``LIEBIAN_PUBLIC_URL``, or from the tenant's own short domain
(``short_link_base_url`` in the program). Links also carry the program's mini-program ``page``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.settings import DEFAULT_PUBLIC_URL, SettingsError, load_settings
from tests.server.test_referrals import register
from tests.server.test_share_posters import decode_qr

EVIL = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


def public_url(client) -> str:
    return client.app.state.settings.public_base_url


# ---------------------------------------------------------------- LIEBIAN_PUBLIC_URL


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://go.example.com", "https://go.example.com"),
        ("https://go.example.com/", "https://go.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://example.com/liebian/", "https://example.com/liebian"),
    ],
)
def test_public_url_is_read_and_normalised(raw, expected):
    settings = load_settings({"LIEBIAN_PUBLIC_URL": raw})
    assert settings.public_url == expected
    assert settings.public_base_url == expected


def test_public_url_unset_falls_back_to_the_local_address():
    settings = load_settings({})
    assert settings.public_url is None
    assert settings.public_base_url == DEFAULT_PUBLIC_URL == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "raw",
    [
        "go.example.com",
        "ftp://go.example.com",
        "javascript:alert(1)",
        "https://",
        "https://go.example.com/?ref=1",
        "https://go.example.com/#top",
        "https://user:pw@go.example.com",
        "https://go.example.com/a b",
        "https://" + "a" * 300 + ".com",
    ],
)
def test_bad_public_url_stops_start_up_naming_the_variable(raw):
    with pytest.raises(SettingsError) as caught:
        load_settings({"LIEBIAN_PUBLIC_URL": raw})
    assert caught.value.variable == "LIEBIAN_PUBLIC_URL"
    assert "\n" not in str(caught.value)


def test_host_header_never_reaches_a_share_link(tenant, client):
    register(tenant, "amy")
    created = tenant.post("/v1/links", {"distributor_id": "amy"}, scope="sdk", headers=EVIL)
    assert created.status_code in (200, 201), created.text
    link = created.json()
    assert "evil.example" not in link["url"]
    assert link["url"] == f"{public_url(client)}/s/{link['code']}"
    read = tenant.get(f"/v1/links/{link['code']}", scope="sdk", headers=EVIL).json()
    assert read["url"] == link["url"]


def test_host_header_never_reaches_a_poster_qr_code(tenant, client):
    register(tenant, "amy")
    poster = tenant.get("/v1/posters/amy", scope="sdk", headers=EVIL)
    assert poster.status_code == 200, poster.text
    (content,) = decode_qr(poster.content)
    assert "evil.example" not in content
    assert content.startswith(f"{public_url(client)}/s/")


def test_host_header_never_reaches_a_signed_poster_url(tenant, client):
    register(tenant, "amy")
    signed = tenant.get("/v1/posters/amy/url", scope="sdk", headers=EVIL).json()
    assert "evil.example" not in signed["url"]
    assert signed["url"].startswith(f"{public_url(client)}/p/")
    # The public poster itself, fetched with a hostile Host, still shows the configured link.
    public = client.get(urlsplit(signed["url"]).path, headers=EVIL)
    assert public.status_code == 200
    (content,) = decode_qr(public.content)
    assert content.startswith(f"{public_url(client)}/s/")


# ---------------------------------------------------------------- a tenant's own short domain


def test_tenant_short_domain_is_used_for_links_posters_and_signed_urls(
    tenant, other_tenant, client
):
    put = tenant.put("/v1/program", {"short_link_base_url": "https://go.brand.cn/"})
    assert put.status_code == 200, put.text
    assert put.json()["short_link_base_url"] == "https://go.brand.cn"
    assert tenant.get("/v1/program", scope="sdk").json()["short_link_base_url"] == (
        "https://go.brand.cn"
    )
    register(tenant, "amy")
    link = tenant.post("/v1/links", {"distributor_id": "amy"}, scope="sdk", headers=EVIL).json()
    assert link["url"] == f"https://go.brand.cn/s/{link['code']}"
    poster = tenant.get("/v1/posters/amy", scope="sdk", headers=EVIL)
    assert decode_qr(poster.content) == [link["url"]]
    signed = tenant.get("/v1/posters/amy/url", scope="sdk").json()
    assert signed["url"].startswith("https://go.brand.cn/p/")
    # Another tenant keeps the service's public URL.
    register(other_tenant, "bob")
    theirs = other_tenant.post("/v1/links", {"distributor_id": "bob"}, scope="sdk").json()
    assert theirs["url"].startswith(f"{public_url(client)}/s/")
    # Unset again: back to the service's public URL.
    assert tenant.put("/v1/program", {}).json()["short_link_base_url"] is None
    again = tenant.post("/v1/links", {"distributor_id": "amy"}, scope="sdk").json()
    assert again["url"] == f"{public_url(client)}/s/{link['code']}"


@pytest.mark.parametrize(
    "value",
    [
        "go.brand.cn",
        "ftp://go.brand.cn",
        "javascript:alert(1)",
        "https://go.brand.cn/?a=1",
        "https://go.brand.cn/#x",
        "https://u:p@go.brand.cn",
        "https://",
        "https://" + "a" * 250 + ".cn",
        "",
    ],
)
def test_bad_short_domain_is_422_naming_the_field(tenant, value):
    response = tenant.put("/v1/program", {"short_link_base_url": value})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "short_link_base_url"


def test_short_domain_is_admin_only(tenant):
    body = {"short_link_base_url": "https://go.brand.cn"}
    response = tenant.put("/v1/program", body, scope="sdk")
    assert response.status_code == 403


# ---------------------------------------------------------------- the mini-program page


def test_link_page_is_null_until_the_program_sets_one(tenant):
    register(tenant, "amy")
    link = tenant.post("/v1/links", {"distributor_id": "amy"}, scope="sdk").json()
    assert "page" in link and link["page"] is None
    put = tenant.put("/v1/program", {"mini_program_page": "pages/goods/detail"})
    assert put.status_code == 200, put.text
    assert put.json()["mini_program_page"] == "pages/goods/detail"
    again = tenant.post("/v1/links", {"distributor_id": "amy"}, scope="sdk").json()
    assert again["page"] == "pages/goods/detail"
    assert again["scene"] == link["scene"]  # the page rides beside the scene, not inside it
    assert tenant.get(f"/v1/links/{link['code']}", scope="sdk").json()["page"] == (
        "pages/goods/detail"
    )


@pytest.mark.parametrize(
    "value",
    [
        "/pages/index/index",
        "pages/../secret",
        "pages/index/index?scene=1",
        "pages//index",
        "pages/index/",
        "pages/主页/index",
        "pages/index index",
        "",
        "p/" + "a" * 127,
    ],
)
def test_bad_page_is_422_naming_the_field(tenant, value):
    response = tenant.put("/v1/program", {"mini_program_page": value})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "mini_program_page"


def test_page_at_its_bound_is_accepted(tenant):
    page = "p/" + "a" * 126  # 128 characters
    response = tenant.put("/v1/program", {"mini_program_page": page})
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- /health


def test_health_never_returns_exception_text(client, monkeypatch):
    secret = "password=hunter2 at db.internal:5432"
    db = client.app.state.db

    async def broken(*args, **kwargs):
        raise RuntimeError(f"connection failed: {secret}")

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("liebian").addHandler(handler)
    monkeypatch.setattr(db, "fetchval", broken)
    try:
        response = client.get("/health")
    finally:
        logging.getLogger("liebian").removeHandler(handler)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "hunter2" not in response.text and "db.internal" not in response.text
    assert "connection failed" not in response.text
    assert response.json()["title"] == "Database unavailable"
    # The operator still finds the cause in the log.
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in records)
    monkeypatch.undo()
    assert client.get("/health").status_code == 200


def test_no_server_module_builds_urls_from_the_request():
    """A guard for new routes: the request's base URL (its Host header) is never a public URL."""
    import server

    root = Path(server.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "request.base_url" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
