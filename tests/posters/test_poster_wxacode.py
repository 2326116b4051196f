"""The {wxacode} image source: the mini-program code when given, else the link's QR code."""

from __future__ import annotations

import io

import pytest
import qrcode
from PIL import Image
from poster_helpers import LINK, decode_qr

from posters import PosterData, PosterTemplateError, parse_template, render_image, render_poster
from posters.boxes import is_dynamic

TEMPLATE = {
    "width": 500, "height": 600, "background": "#fafafa",
    "views": [{"type": "image", "url": "{wxacode}",
               "css": {"top": 100, "left": 50, "width": 400, "height": 400}}],
}  # fmt: skip


def _code(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, border=2).get_image().convert("RGB").save(out, "PNG")
    return out.getvalue()


def test_wxacode_view_shows_the_given_code() -> None:
    template = parse_template(TEMPLATE)
    assert is_dynamic(template.views[0])
    image = render_image(template, PosterData(nickname="a", link=LINK, wxacode=_code("wxa|lb=1")))
    assert decode_qr(image) == ["wxa|lb=1"]
    assert decode_qr(image.crop((50, 100, 450, 500))) == ["wxa|lb=1"]


def test_without_a_code_the_view_falls_back_to_the_links_qr() -> None:
    template = parse_template(TEMPLATE)
    assert decode_qr(render_image(template, PosterData(nickname="a", link=LINK))) == [LINK]
    broken = PosterData(nickname="a", link=LINK, wxacode=b"not an image")
    assert decode_qr(render_image(template, broken)) == [LINK]


def test_the_code_changes_the_bytes() -> None:
    template = parse_template(TEMPLATE)
    one = render_poster(template, PosterData(nickname="a", link=LINK, wxacode=_code("1")))
    two = render_poster(template, PosterData(nickname="a", link=LINK, wxacode=_code("2")))
    assert one != two and Image.open(io.BytesIO(one)).size == (500, 600)


def test_other_image_sources_are_still_refused() -> None:
    bad = {**TEMPLATE, "views": [{**TEMPLATE["views"][0], "url": "{wxcode}"}]}  # type: ignore[index]
    with pytest.raises(PosterTemplateError, match="wxacode"):
        parse_template(bad)
