"""Painter's example palettes (our JSON stand-ins in palettes/) render as golden images.

The layout boxes are checked against numbers worked out by hand from Painter's pen
(``components/painter/lib/pen.js``, ``_preProcess``); the pixels against PNG goldens in
golden/, with a tolerance (fonts and Pillow versions move anti-aliasing a little).
Regenerate the goldens with ``LIEBIAN_POSTER_GOLDEN=update pytest tests/posters``.
"""

from __future__ import annotations

import io

import pytest
from golden_helpers import DATA, JPEG_TOLERANCE, PNG_TOLERANCE, compare, load
from PIL import Image
from poster_helpers import decode_qr

from posters import Template, TextView, render_poster
from posters.boxes import css_box, qr_box
from posters.layers import padded, text_layout
from posters.render import render_image

PALETTES = ["card", "shadow_example", "align_example", "text_example", "image_example"]
WITH_QR = ["card", "shadow_example", "align_example"]


@pytest.mark.parametrize("name", PALETTES)
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_example_palette_matches_its_golden(name: str, fmt: str) -> None:
    image = Image.open(io.BytesIO(render_poster(load(name), DATA, fmt)))  # type: ignore[arg-type]
    assert image.format == fmt.upper()
    png = fmt == "png"
    compare(name, image, PNG_TOLERANCE if png else JPEG_TOLERANCE, source=png)


@pytest.mark.parametrize("name", WITH_QR)
def test_example_palette_qr_codes_decode(name: str) -> None:
    template = load(name)
    image = render_image(template, DATA)
    expected = {"card": "https://github.com/Kujiale-Mobile/Painter",
                "shadow_example": "https://github.com/Kujiale-Mobile/Painter",
                "align_example": "/palette/avatar.jpg"}[name]  # fmt: skip
    assert expected in decode_qr(image)


def _text_box(template: Template, i: int) -> tuple[int, int, int, int]:
    view = template.views[i]
    assert isinstance(view, TextView)
    laid = text_layout(view, {}, (template.width, template.height))
    assert laid is not None
    return laid[1]


def test_shadow_example_boxes() -> None:
    t = load("shadow_example")
    image, rect, qr, text = t.views
    # image without width/height: natural size (sWidth, sHeight; pixel ratio 1), at 0, 0
    assert css_box(image.css) == (0, 0, 240, 160)
    # rect: x = 654 - right(50); align defaults to right -> left = x - width(250)
    assert css_box(rect.css) == (654 - 50 - 250, 60, 250, 150)
    # qrcode: left 0 (no left given), top 230, width = height = 120
    assert qr_box(qr.css) == (0, 230, 120, 120)
    x, y, w, h = _text_box(t, 3)
    # text: left 180, top 290, no width -> measured; one line of lineHeight
    assert (x, y) == (180, 290) and 300 < w < 654 - 180 and h == round(30 * 1.4)


def test_align_example_boxes() -> None:
    t = load("align_example")
    # pen.js: left = x (left), x - width / 2 (center), x - width (right), x = 327
    assert css_box(t.views[1].css) == (327 - 50, 40, 100, 100)
    assert qr_box(t.views[2].css) == (327, 180, 120, 120)
    left, right, centre = (_text_box(t, i) for i in (3, 4, 5))
    assert left[0] == 327
    assert right[0] + right[2] == 327
    assert abs(centre[0] + centre[2] / 2 - 327) <= 0.5
    # right: 327 -> x = 654 - 327 = 327 and align center -> left = 327 - 400 / 2
    many = _text_box(t, 6)
    assert many[0] == 327 - 200 and many[2] == 400 and many[3] > round(30 * 1.4)  # wraps


def test_card_boxes() -> None:
    t = load("card")
    views = t.views
    # rect: right 20, width 200 -> left = 654 - 20 - 200; borderRadius 100% of 100 (min side)
    assert css_box(views[4].css) == (434, 30, 200, 100) and views[4].css.border_radius == 100
    # calc(my_text_id.right + 20rpx): the measured bold text's right edge + 20 (pen.js
    # viewRect.right = left + measured width)
    x, _, w, _ = _text_box(t, 5)
    assert css_box(views[6].css) == (x + w + 20, 345, 20, 20)
    # text_id_2: css list merged in order (left 20 then 300); align center, width 400,
    # padding 10 -> content width 400 - 10 - 10 = 380 about x = 300, background 10 further out
    box = _text_box(t, 7)
    assert box[:3] == (300 - 190, 400, 380)
    assert padded(views[7].css, box)[:3] == (100, 390, 400)
    # calc(text_id_2.bottom + 20rpx): its bottom with the padding (viewRect.bottom + paddings[2])
    assert css_box(views[8].css) == (200, box[1] + box[3] + 10 + 20, 20, 20)
    # maxLines 1 -> one line of the given width, ended by the ellipsis
    laid = text_layout(views[9], {}, (654, 1000))  # type: ignore[arg-type]
    assert laid is not None and len(laid[0].lines) == 1 and laid[0].lines[0].endswith("…")
    # bottom-anchored avatar: y = 1000 - height(100) - bottom(40)
    assert css_box(views[18].css) == (40, 860, 100, 100)
    # qrcode bottom 40, height 120 -> top 840; radial rect: right 40 -> left 654 - 40 - 120
    assert qr_box(views[19].css) == (180, 840, 120, 120)
    assert views[19].css.border_style == "dashed"
    assert css_box(views[20].css) == (494, 840, 120, 120)
    # "圆形" anchored by right 60 without width: ends at 654 - 60
    x, _, w, _ = _text_box(t, 17)
    assert x + w == 594
    # "borderWidth": bottom 40 and right 200 without width or height: measured, then placed
    x, y, w, h = _text_box(t, 21)
    assert (x + w, y + h) == (454, 960)
    # left 50%, top 50%, align and verticalAlign center: centred on (327, 500)
    assert css_box(views[22].css) == (277, 450, 100, 100)


def test_text_example_boxes() -> None:
    t = load("text_example")
    for i, right in enumerate((50, 100, 150, 200)):
        view = t.views[i]
        assert isinstance(view, TextView)
        laid = text_layout(view, {}, (654, 500))
        assert laid is not None
        # pen.js: text.split("\n"), an empty line kept as " "; width = the widest line
        # (one CJK character, 40); x = 654 - right, align right; height = lineHeight x lines
        assert len(laid[0].lines) == 6
        assert laid[1] == (654 - right - 40, 60, 40, 50 * 6)


def test_image_example_boxes() -> None:
    t = load("image_example")
    assert css_box(t.views[0].css) == (0, 0, 240, 160)  # natural size
    assert css_box(t.views[2].css) == (0, 230, 200, 200)
    assert t.views[4].css.mode == "scaleToFill"
    # height auto: (sHeight / sWidth) * width = 160 / 240 * 200
    assert css_box(t.views[6].css) == (0, 750, 200, round(160 / 240 * 200))
    x, _, w, _ = _text_box(t, 1)
    assert x + w == 654  # right 0
