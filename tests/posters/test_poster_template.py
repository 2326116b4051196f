"""Painter-style JSON in, Template out; errors name the JSON path and the fix."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from poster_helpers import solid_image

from posters import (
    ImageView,
    PosterTemplateError,
    QrCodeView,
    RectView,
    Template,
    TextView,
    default_template,
    parse_template,
    template_to_json,
)
from posters.boxes import qr_box
from posters.colors import Gradient, Solid, parse_paint

PAINTER_SAMPLE: dict[str, Any] = {
    "width": "654px",
    "height": "1000px",
    "background": "#eeeeee",
    "views": [
        {"type": "image", "url": "{avatar}", "id": "avatar",
         "css": {"top": "48px", "left": "48px", "width": "120rpx", "height": "120rpx",
                 "borderRadius": "50%"}},
        {"type": "text", "text": "{nickname}",
         "css": [{"top": "60px", "left": "190px", "fontSize": "32px"},
                 {"color": "#333", "width": "400px", "maxLines": "1", "fontWeight": 700}]},
        {"type": "rect", "css": {"top": "200px", "left": "5%", "width": "90%", "height": "2px",
                                 "color": "#dddddd"}},
        {"type": "text", "text": "扫码加入 {campaign}",
         "css": {"bottom": "60px", "height": "40px", "left": "327px", "align": "center",
                 "fontSize": "28px", "textAlign": "center"}},
        {"type": "qrcode", "content": "{link}",
         "css": {"top": "600px", "right": "227px", "width": "200px", "color": "#000000",
                 "background": "#ffffff"}},
    ],
}  # fmt: skip


def test_painter_sample_normalises_units() -> None:
    t = parse_template(json.dumps(PAINTER_SAMPLE))
    assert (t.width, t.height, t.background) == (654, 1000, "#eeeeee")
    avatar, nickname, rule, caption, qr = t.views
    assert isinstance(avatar, ImageView) and avatar.id == "avatar"
    assert avatar.css.width == 120.0 and avatar.css.border_radius == 60.0  # 50% of 120
    assert isinstance(nickname, TextView)
    assert nickname.css.max_lines == 1 and nickname.css.font_weight == "bold"
    assert nickname.css.color == "#333" and nickname.css.top == 60.0  # css lists merge
    assert isinstance(rule, RectView)
    assert rule.css.left == pytest.approx(32.7) and rule.css.width == pytest.approx(588.6)
    assert isinstance(caption, TextView) and caption.css.top == 900.0  # bottom -> top
    # right -> left = canvas width - right, align right (pen.js: x = width - right)
    assert isinstance(qr, QrCodeView) and qr.css.left == 427.0 and qr.css.align == "right"
    assert qr_box(qr.css) == (227, 600, 200, 200)


def test_plain_numbers_and_px_strings_are_equal() -> None:
    as_strings = parse_template({"width": "300px", "height": "200px", "views": [
        {"type": "rect", "css": {"top": "10px", "left": "20px", "width": "30px",
                                 "height": "40px", "color": "red"}}]})  # fmt: skip
    as_numbers = parse_template({"width": 300, "height": 200, "views": [
        {"type": "rect", "css": {"top": 10, "left": 20, "width": 30, "height": 40,
                                 "color": "red"}}]})  # fmt: skip
    assert as_strings == as_numbers


def test_canonical_json_round_trips() -> None:
    for template in (default_template(), parse_template(PAINTER_SAMPLE)):
        encoded = template_to_json(template)
        assert parse_template(encoded) == template
        assert template_to_json(parse_template(encoded)) == encoded


_lengths = st.one_of(
    st.integers(-500, 2000),
    st.floats(-500, 2000, allow_nan=False).map(lambda v: round(v, 2)),
    st.integers(0, 2000).map(lambda v: f"{v}px"),
    st.integers(0, 2000).map(lambda v: f"{v}rpx"),
)
_views = st.one_of(
    st.builds(lambda top, left, w: {"type": "rect", "css": {"top": top, "left": left,
              "width": w, "height": w, "background": "#abcdef"}},
              _lengths, _lengths, st.integers(1, 500)),
    st.builds(lambda top, text, lines: {"type": "text", "text": text,
              "css": {"top": top, "maxLines": lines, "textAlign": "center", "width": 300}},
              _lengths, st.text(max_size=30).filter(lambda s: "{" not in s),
              st.integers(1, 5)),
    st.builds(lambda top, w: {"type": "qrcode", "css": {"top": top, "width": w}},
              _lengths, st.integers(10, 500)),
)  # fmt: skip


# Canvases within the render budget (<= 8 Mpx; boxes up to 500 px are < 2x a 250 px side).
@given(st.lists(_views, max_size=6), st.integers(250, 4096), st.integers(250, 2048))
def test_any_valid_palette_round_trips(views: list[Any], width: int, height: int) -> None:
    template = parse_template({"width": width, "height": height, "views": views})
    assert parse_template(template_to_json(template)) == template


@pytest.mark.parametrize(
    ("palette", "field", "hint"),
    [
        ({"height": 10}, "$.width", "required"),
        ({"width": "10em", "height": 10}, "$.width", "24px"),
        ({"width": "50%", "height": 10}, "$.width", "px"),
        ({"width": 10, "height": 10, "background": "#ggg"}, "$.background", "#rrggbb"),
        ({"width": 10, "height": 10, "views": [{"type": "circle"}]}, "$.views[0].type",
         "rect, text, image, qrcode"),
        ({"width": 10, "height": 10, "views": [{"css": {}}]}, "$.views[0].type", "missing"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "css": {"boxShadow": "1px"}}]},
         "$.views[0].css.boxShadow", "fontSize"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "css": {"shadow": "1px"}}]},
         "$.views[0].css.shadow", "x y blur color"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "css": {
          "shadow": "0 0 500px red"}}]}, "$.views[0].css.shadow", "at most 100 px"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "css": {"fontSize": "big"}}]},
         "$.views[0].css.fontSize", "24px"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "css": {"color": "nope"}}]},
         "$.views[0].css.color", "rgba("),
        ({"width": 10, "height": 10, "views": [{"type": "text", "text": "hi {name}"}]},
         "$.views[0].text", "{nickname}"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "text": "{avatar}"}]},
         "$.views[0].text", "{nickname}"),
        ({"width": 10, "height": 10, "views": [{"type": "image", "url": "https://x.cn/a.png",
          "css": {"width": 5, "height": 5}}]}, "$.views[0].url", "data URI"),
        ({"width": 10, "height": 10, "views": [{"type": "image", "url": "{avatar}"}]},
         "$.views[0].css.width", "required"),
        ({"width": 10, "height": 10, "views": [{"type": "qrcode", "css": {"height": 4}}]},
         "$.views[0].css.width", "required"),
        ({"width": 10, "height": 10, "views": [{"type": "rect", "css": {"right": 4}}]},
         "$.views[0].css.width", "required"),
        ({"width": 10, "height": 10, "views": [{"type": "rect", "css": {"bottom": 4,
          "width": 2}}]}, "$.views[0].css.height", "required"),
        ({"width": 10, "height": 10, "views": [{"type": "rect", "css": {"width": "auto",
          "height": 2}}]}, "$.views[0].css.width", "images only"),
        ({"width": 10, "height": 10, "views": [{"type": "image", "url": "{avatar}",
          "css": {"width": 4, "height": "auto"}}]}, "$.views[0].css.height", "{avatar}"),
        ({"width": 10, "height": 10, "views": [{"type": "text", "css": {"maxLines": 0}}]},
         "$.views[0].css.maxLines", ">= 1"),
        ({"width": 10, "height": 10, "views": [{"type": "image", "url": "data:image/png;base64,@@",
          "css": {"width": 5, "height": 5}}]}, "$.views[0].url", "base64"),
        ({"width": 10, "height": 10, "views": {"type": "rect"}}, "$.views", "list"),
    ],
)  # fmt: skip
def test_errors_name_the_field_and_the_fix(palette: dict[str, Any], field: str, hint: str) -> None:
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(palette)
    assert caught.value.field == field
    assert hint in caught.value.message
    assert str(caught.value).startswith(field)


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(PosterTemplateError, match="not valid JSON") as caught:
        parse_template(b"{oops")
    assert caught.value.field == "$"
    with pytest.raises(PosterTemplateError, match="JSON object"):
        parse_template("[1, 2]")


def test_data_uri_images_are_accepted() -> None:
    png = base64.b64encode(solid_image((4, 4), (255, 0, 0), "PNG")).decode()
    template = parse_template({"width": 10, "height": 10, "views": [
        {"type": "image", "url": f"data:image/png;base64,{png}",
         "css": {"width": 5, "height": 5}}]})  # fmt: skip
    assert isinstance(template.views[0], ImageView)


def test_templates_are_hashable_and_immutable() -> None:
    t = default_template()
    assert hash(t) == hash(msgspec.json.decode(template_to_json(t), type=Template))
    with pytest.raises(AttributeError):
        t.width = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#fff", Solid((255, 255, 255, 255))),
        ("#11223380", Solid((0x11, 0x22, 0x33, 0x80))),
        ("rgba(255, 0, 0, 0.5)", Solid((255, 0, 0, 128))),
        ("rgb(10 20 30 / 50%)", Solid((10, 20, 30, 128))),
        ("transparent", Solid((0, 0, 0, 0))),
        ("white", Solid((255, 255, 255, 255))),
        ("linear-gradient(to right, #000, #fff)",
         Gradient(90.0, ((0.0, (0, 0, 0, 255)), (1.0, (255, 255, 255, 255))))),
        ("linear-gradient(#000 10%, red, rgba(0,0,255,1) 90%)",
         Gradient(180.0, ((0.1, (0, 0, 0, 255)), (0.5, (255, 0, 0, 255)),
                          (0.9, (0, 0, 255, 255))))),
    ],
)  # fmt: skip
def test_paints(text: str, expected: Solid | Gradient) -> None:
    assert parse_paint(text) == expected


@pytest.mark.parametrize("text", ["#12", "rgba(1,2)", "linear-gradient(45deg, red)", "bleu"])
def test_bad_paints(text: str) -> None:
    with pytest.raises(ValueError, match="colour|two colour stops"):
        parse_paint(text)
