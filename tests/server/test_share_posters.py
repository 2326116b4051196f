"""Share posters through HTTP: QR decodes to the link, ETag/304, templates, signed URLs."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import zxingcpp
from PIL import Image

from posters import find_fonts
from tests.server.test_campaigns import campaign
from tests.server.test_referrals import link_of, register

PAINTER = {
    "width": "600px",
    "height": "900px",
    "background": "#fff7e6",
    "views": [
        {
            "type": "rect",
            "css": {
                "top": "0px",
                "left": "0px",
                "width": "600px",
                "height": "200px",
                "background": "#e4393c",
            },
        },
        {
            "type": "text",
            "text": "{nickname} 邀你一起参与",
            "css": {
                "top": "60px",
                "left": "40px",
                "width": "520px",
                "fontSize": "36px",
                "color": "#ffffff",
                "maxLines": 1,
            },
        },
        {
            "type": "qrcode",
            "content": "{link}",
            "css": {"top": "400px", "left": "175px", "width": "250px", "height": "250px"},
        },
    ],
}


def decode_qr(image_bytes: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(image_bytes)))]


def test_poster_qr_decodes_to_the_distributors_link(tenant):
    register(tenant, "amy")
    c = campaign(tenant)
    link = link_of(tenant, "amy", campaign_id=c["id"])
    response = tenant.get("/v1/posters/amy", scope="sdk", params={"campaign_id": c["id"]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert decode_qr(response.content) == [link["url"]]
    jpeg = tenant.get(
        "/v1/posters/amy", scope="sdk", params={"campaign_id": c["id"], "format": "jpeg"}
    )
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert decode_qr(jpeg.content) == [link["url"]]


def test_etag_and_304(tenant):
    register(tenant, "amy")
    first = tenant.get("/v1/posters/amy", scope="sdk")
    etag = first.headers["etag"]
    again = tenant.get("/v1/posters/amy", scope="sdk", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert tenant.get("/v1/posters/amy", scope="sdk").content == first.content


def test_templates_round_trip_and_render(tenant):
    stored = tenant.put("/v1/poster-templates/spring", PAINTER)
    assert stored.status_code == 200, stored.text
    assert stored.json() == PAINTER  # kept as written
    assert tenant.get("/v1/poster-templates/spring", scope="sdk").json() == PAINTER
    register(tenant, "amy")
    poster = tenant.get("/v1/posters/amy", scope="sdk", params={"template": "spring"})
    assert poster.status_code == 200
    assert Image.open(io.BytesIO(poster.content)).size == (600, 900)
    assert decode_qr(poster.content) == [link_of(tenant, "amy")["url"]]
    assert (
        tenant.get("/v1/posters/amy", scope="sdk", params={"template": "nope"}).status_code == 404
    )
    assert tenant.get("/v1/poster-templates/default", scope="sdk").status_code == 200


def test_bad_template_is_422_naming_the_field(tenant):
    bad = {**PAINTER, "views": [{"type": "circle", "css": {}}]}
    response = tenant.put("/v1/poster-templates/bad", bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("views[0]")
    assert tenant.put("/v1/poster-templates/x", PAINTER, scope="sdk").status_code == 403


def test_avatar_from_a_host_off_the_allow_list_falls_back(tenant):
    tenant.put(
        "/v1/distributors/amy",
        {"nickname": "amy", "avatar_url": "http://127.0.0.1:9/a.png"},
        scope="sdk",
    )
    response = tenant.get("/v1/posters/amy", scope="sdk")
    assert response.status_code == 200
    assert decode_qr(response.content)


def test_signed_public_url(tenant, client):
    register(tenant, "amy")
    signed = tenant.get("/v1/posters/amy/url", scope="sdk").json()
    path = urlsplit(signed["url"]).path
    public = client.get(path)
    assert public.status_code == 200
    assert public.headers["content-type"] == "image/jpeg"
    assert client.get(path[:-3] + "AAA").status_code == 404


def test_posters_are_tenant_scoped(tenant, other_tenant):
    register(tenant, "amy")
    assert other_tenant.get("/v1/posters/amy", scope="sdk").status_code == 404
    tenant.put("/v1/poster-templates/mine", PAINTER)
    assert other_tenant.get("/v1/poster-templates/mine", scope="sdk").status_code == 404


def test_emoji_nickname_and_missing_glyphs_header(tenant, client):
    """Emoji draw (the colour emoji face); a character no font has is drawn as a replacement
    and named in Liebian-Poster-Missing-Glyphs, on the API route and the signed public one."""
    register(tenant, "amy", nickname="小明😀🎉")
    plain = tenant.get("/v1/posters/amy", scope="sdk")
    assert plain.status_code == 200
    if find_fonts().emoji is not None:  # (without one, 🎉 has no font: the poster tests warn)
        assert "liebian-poster-missing-glyphs" not in plain.headers  # every glyph has a font
    register(tenant, "bob", nickname="小\U000f0000红\U000f0001\U000f0000")
    response = tenant.get("/v1/posters/bob", scope="sdk", params={"format": "jpeg"})
    assert response.status_code == 200, response.text
    assert response.headers["liebian-poster-missing-glyphs"] == "2; U+F0000 U+F0001"
    again = tenant.get("/v1/posters/bob", scope="sdk", params={"format": "jpeg"})  # cached
    assert again.headers["liebian-poster-missing-glyphs"] == "2; U+F0000 U+F0001"
    signed = tenant.get("/v1/posters/bob/url", scope="sdk").json()
    public = client.get(urlsplit(signed["url"]).path)
    assert public.status_code == 200
    assert public.headers["liebian-poster-missing-glyphs"] == "2; U+F0000 U+F0001"
