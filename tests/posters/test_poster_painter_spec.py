"""Painter's Palette spec is accepted as Painter's pen reads it (Kujiale-Mobile/Painter).

Expected boxes are derived by hand from ``components/painter/lib/pen.js`` (``_preProcess``);
each test cites the formula it checks.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from poster_helpers import LINK

from posters import ImageView, PosterData, PosterTemplateError, TextView, parse_template
from posters.boxes import css_box, qr_box
from posters.layers import text_layout
from posters.render import render_image

DATA = PosterData(nickname="Alice", campaign="Spring", link=LINK)
INK = 100  # a channel value below this counts as ink on a white canvas


def png_uri(size: tuple[int, int], color: tuple[int, int, int] = (200, 30, 30)) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def palette(*views: dict[str, Any], width: int = 300, height: int = 200) -> dict[str, Any]:
    return {"width": f"{width}px", "height": f"{height}px", "background": "#ffffff",
            "views": list(views)}  # fmt: skip


def ink_columns(image: Any) -> tuple[int, int]:
    """First and last x with a dark pixel."""
    gray = image.convert("L").point(lambda v: 255 if v < INK else 0)
    box = gray.getbbox()
    assert box is not None, "nothing was drawn"
    return box[0], box[2]


def test_text_anchored_by_right_needs_no_width() -> None:
    # pen.js: x = this.style.width - right; align defaults to 'right' when right is set;
    # left = x - width, width = measureText(text).width (the text's own width).
    t = parse_template(palette({"type": "text", "text": "Hello",
                                "css": {"top": "20px", "right": "30px", "fontSize": "24px"}}))
    view = t.views[0]
    assert isinstance(view, TextView)
    assert view.css.left == 300 - 30 and view.css.align == "right"
    laid = text_layout(view, {}, (300, 200))
    assert laid is not None
    block, (x, y, w, h) = laid
    assert w == pytest.approx(max(block.widths), abs=1) and w > 24  # measured, not given
    assert (x + w, y) == (270, 20)  # right edge = canvas width - right
    x0, x1 = ink_columns(render_image(t, DATA))
    assert x1 <= 270 and x0 >= x  # the ink ends at the anchor


def test_explicit_align_with_right_is_painters() -> None:
    # pen.js: x = width - right; align 'center' -> left = x - width / 2.
    t = parse_template(palette({"type": "rect", "css": {"top": 0, "right": 100, "width": 40,
                                                        "height": 10, "align": "center",
                                                        "color": "#000"}}))  # fmt: skip
    assert css_box(t.views[0].css) == (300 - 100 - 20, 0, 40, 10)


@pytest.mark.parametrize(("align", "left"), [("left", 100), ("center", 80), ("right", 60)])
@pytest.mark.parametrize("kind", ["rect", "image", "qrcode", "text"])
def test_align_for_every_view_type(kind: str, align: str, left: int) -> None:
    # pen.js: left = x (left), x - width / 2 (center), x - width (right).
    css = {"top": 10, "left": 100, "width": 40, "height": 40, "align": align}
    view: dict[str, Any] = {"type": kind, "css": css}
    if kind == "rect":
        css["background"] = "#000"
    elif kind == "image":
        view["url"] = png_uri((8, 8), (0, 0, 0))
    elif kind == "text":
        view["text"] = "ab"
    t = parse_template(palette(view))
    v = t.views[0]
    if kind == "qrcode":
        box = qr_box(v.css)
    elif isinstance(v, TextView):
        laid = text_layout(v, {}, (300, 200))
        assert laid is not None
        box = laid[1]
    else:
        box = css_box(v.css)
    assert box[:3] == (left, 10, 40)
    if kind in ("rect", "image"):
        x0, x1 = ink_columns(render_image(t, DATA))
        assert (x0, x1) == (left, left + 40)


def test_negative_offsets_clip_at_the_edge() -> None:
    t = parse_template(palette({"type": "rect", "css": {"top": "-20px", "left": "-30px",
                                                        "width": 50, "height": 40,
                                                        "color": "#000"}}))  # fmt: skip
    img = render_image(t, DATA).convert("L")
    assert img.getpixel((0, 0)) == 0 and img.getpixel((19, 19)) == 0
    assert img.getpixel((20, 0)) == 255 and img.getpixel((0, 20)) == 255


def test_css_list_merges_in_order_and_rpx_is_px() -> None:
    t = parse_template(palette({"type": "rect", "css": [
        {"top": "10rpx", "left": "10rpx", "width": "20rpx", "height": "20rpx", "color": "red"},
        {"color": "#0000ff", "left": "12px"}]}))  # fmt: skip
    css = t.views[0].css
    assert (css.top, css.left, css.width, css.height, css.color) == (10, 12, 20, 20, "#0000ff")


def test_image_without_size_is_its_natural_size() -> None:
    # pen.js (image, both 'auto'): width = sWidth / ratio, height = sHeight / ratio; a poster
    # has no device pixel ratio, so ratio is 1 here.
    t = parse_template(palette({"type": "image", "url": png_uri((40, 24)),
                                "css": {"top": 5, "left": 6}}))  # fmt: skip
    assert css_box(t.views[0].css) == (6, 5, 40, 24)
    bare = parse_template(palette({"type": "image", "url": png_uri((40, 24))}))
    assert css_box(bare.views[0].css) == (0, 0, 40, 24)
    img = render_image(bare, DATA)
    assert img.getpixel((39, 23)) == (200, 30, 30) and img.getpixel((40, 24)) == (255, 255, 255)


def test_image_height_auto_keeps_the_ratio() -> None:
    # pen.js: height = (sHeight / sWidth) * width; width = (sWidth / sHeight) * height.
    uri = png_uri((40, 24))
    t = parse_template(palette(
        {"type": "image", "url": uri, "css": {"width": "100px", "height": "auto"}},
        {"type": "image", "url": uri, "css": {"height": "60px"}},
    ))  # fmt: skip
    a, b = t.views
    assert isinstance(a, ImageView) and isinstance(b, ImageView)
    assert (a.css.width, a.css.height) == (100, pytest.approx(24 / 40 * 100))
    assert (b.css.width, b.css.height) == (pytest.approx(40 / 24 * 60), 60)


def test_natural_size_is_checked_against_the_budget_from_the_header() -> None:
    huge = png_uri((3000, 2000))  # 6 Mpx: refused from its header, never decoded
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(palette({"type": "image", "url": huge}))
    assert caught.value.field == "$.views[0].url"


def test_unknown_property_names_it_and_lists_the_supported() -> None:
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(palette({"type": "rect", "css": {"width": 1, "height": 1,
                                                        "fooBar": "1px"}}))  # fmt: skip
    assert caught.value.field == "$.views[0].css.fooBar"
    assert "supported:" in caught.value.message and "borderRadius" in caught.value.message
    for name in ("letterSpacing", "verticalAlign", "borderStyle"):
        assert name in caught.value.message


def _rect(**css: Any) -> dict[str, Any]:
    return {"type": "rect", "css": {"width": 10, "height": 10, **css}}


def test_calc_and_relative_positions() -> None:
    t = parse_template(palette(
        {"id": "a", "type": "rect", "css": {"left": 10, "top": 20, "width": 50, "height": 30}},
        _rect(left="calc((a.right - a.left) / 2 + -5px)", top="calc(100% - a.bottom * 2)"),
        _rect(left=["5px", "a", 2], top=["1px", "a"]),  # pen.js: length + factor x width
        {"id": "t", "type": "text", "text": "x", "css": {"width": 40, "height": 20,
                                                         "padding": "4px", "left": 100}},
        _rect(left="calc(t.right)", width="calc(t.width + 1rpx)"),
    ))  # fmt: skip
    a, b, c, _, d = t.views
    assert (b.css.left, b.css.top) == (20.0, 200 - 100)
    assert (c.css.left, c.css.top) == (5 + 100, 1 + 30)
    # a text's rect grows by its padding (pen.js view.rect), its width does not
    assert (d.css.left, d.css.width) == (144.0, 41.0)


def test_calc_over_a_measured_text_and_editor_flags() -> None:
    """pen.js measures a text without width as it draws; a static one is measured at save
    time. Painter's editor flags (scalable, deletable, minWidth) are accepted and ignored."""
    t = parse_template(palette(
        {"id": "t", "type": "text", "text": "长按识别", "css": {"left": 10, "top": 10,
                                                              "fontSize": 30, "scalable": True}},
        _rect(left="calc(t.right + 5px)", top="calc(t.bottom)", deletable=True, minWidth="9px"),
    ))  # fmt: skip
    text, rect = t.views
    x, y, w, h = text_layout(text, {}, (300, 200))[1]  # type: ignore[arg-type,index]
    assert (rect.css.left, rect.css.top) == (x + w + 5, y + h) == (10 + 4 * 30 + 5, 10 + 42)


@pytest.mark.parametrize(
    ("css", "field", "hint"),
    [
        ({"left": "calc(nobody.left)"}, "left", "no earlier view with id 'nobody'"),
        ({"left": "calc(1px +)"}, "left", "missing"),
        ({"left": "calc(10px / 0)"}, "left", "calc()"),
        ({"left": "calc(1px ; 2px)"}, "left", "cannot read"),
        ({"left": "calc(" + "(" * 20 + "1" + ")" * 20 + ")"}, "left", "nested"),
        ({"left": "calc(" + "1+" * 150 + "1)"}, "left", "at most 200"),
        ({"left": "calc(m.left)"}, "left", "known only at render"),
        ({"letterSpacing": "10%"}, "letterSpacing", "not a percentage"),
        ({"borderStyle": "wavy"}, "borderStyle", "dashed"),
        ({"verticalAlign": "middle"}, "verticalAlign", "center"),
        ({"bottom": 4, "verticalAlign": "center"}, "bottom", "needs css.height"),
    ],
)
def test_bad_new_properties_are_422_naming_them(css: dict[str, Any], field: str,
                                                hint: str) -> None:  # fmt: skip
    measured = {"id": "m", "type": "text", "text": "{nickname}", "css": {"left": 1}}
    view = {"type": "text", "text": "y", "css": css}
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(palette(measured, view))
    assert caught.value.field == f"$.views[1].css.{field}"
    assert hint in caught.value.message, caught.value.message


def text_palette(text: str, **css: Any) -> dict[str, Any]:
    base = {"top": 40, "left": 40, "fontSize": 40, "color": "#000000"}
    return palette({"type": "text", "text": text, "css": {**base, **css}}, width=400)


def laid_box(t: Any) -> tuple[Any, tuple[int, int, int, int]]:
    laid = text_layout(t.views[0], {}, (t.width, t.height))
    assert laid is not None
    return laid


@pytest.mark.parametrize(
    ("padding", "sides"),
    [("6px", (6, 6, 6, 6)), ("6px 12px", (6, 12, 6, 12)), ("6px 12px 3px", (6, 12, 3, 12)),
     ("1px 2px 3px 4px", (1, 2, 3, 4))],
)  # fmt: skip
def test_padding_grows_the_background_not_the_text(padding: str, sides: tuple[int, ...]) -> None:
    # pen.js _doPaddings: [top, right, bottom, left] from 1-4 values; _doBackground: the
    # background is width + left + right by height + top + bottom around the unmoved text.
    plain = parse_template(text_palette("Hi", background="#ff0000"))
    t = parse_template(text_palette("Hi", background="#ff0000", padding=padding))
    assert t.views[0].css.padding == sides
    (x, y, w, h) = laid_box(t)[1]
    assert (x, y, w, h) == laid_box(plain)[1]  # the text stays where it was
    top, right, bottom, left = sides
    img = render_image(t, DATA)
    assert img.getpixel((x - left, y - top)) == (255, 0, 0)
    assert img.getpixel((x + w + right - 1, y + h + bottom - 1)) == (255, 0, 0)
    assert img.getpixel((x - left - 1, y - top)) == (255, 255, 255)
    assert img.getpixel((x + w + right, y + h + bottom)) == (255, 255, 255)


def test_padding_narrows_a_given_width() -> None:
    # pen.js: width = css.width - paddings[1] - paddings[3]
    t = parse_template(text_palette("Hi", width=200, padding="0 30px 0 20px"))
    assert laid_box(t)[1][2] == 200 - 30 - 20


def test_bad_padding_is_a_422() -> None:
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(text_palette("Hi", padding="1px 2px 3px 4px 5px"))
    assert caught.value.field == "$.views[0].css.padding"


def _row_ink(img: Any, y: int, x0: int, x1: int) -> float:
    gray = img.convert("L")
    return sum(gray.getpixel((x, y)) < INK for x in range(x0, x1)) / (x1 - x0)


@pytest.mark.parametrize(
    "decoration", ["underline", "overline", "line-through", "overline underline line-through"]
)
def test_text_decoration_lines(decoration: str) -> None:
    # pen.js: lineWidth = fontSize / 13; underline at the baseline y, overline at y - fontSize,
    # line-through at y - fontSize / 3, from lineX to lineX + measuredWidth.
    t = parse_template(text_palette("Hello", textDecoration=decoration))
    block, (x, y, w, h) = laid_box(t)
    ascent, descent = block.font.getmetrics()
    baseline = round(y + (block.line_height - ascent - descent) / 2 + ascent)
    img = render_image(t, DATA)
    plain = render_image(parse_template(text_palette("Hello")), DATA)
    rises = {"underline": 0, "overline": 40, "line-through": 40 / 3}
    for name, rise in rises.items():
        row = round(baseline - rise)
        drawn = _row_ink(img, row, x + 2, x + w - 2)
        if name in decoration.split():
            assert drawn == 1.0, name  # a solid line across the text
            assert _row_ink(plain, row, x + 2, x + w - 2) < 1.0
        elif name == "overline":
            assert drawn < 1.0


def test_unknown_text_decoration_is_a_422() -> None:
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(text_palette("Hi", textDecoration="blink"))
    assert caught.value.field == "$.views[0].css.textDecoration"
    assert "underline" in caught.value.message


def test_text_style_stroke_draws_the_outline_only() -> None:
    # pen.js: textStyle 'stroke' -> ctx.strokeText (an outline), else fillText.
    def dark(style: str) -> int:
        img = render_image(parse_template(text_palette("H", fontSize=80, textStyle=style)), DATA)
        return img.convert("L").point(lambda v: 255 if v < INK else 0).histogram()[255]

    filled, outlined = dark("fill"), dark("stroke")
    assert 0 < outlined < filled * 0.8


def ink_box(image: Any) -> tuple[int, int, int, int]:
    box = image.convert("L").point(lambda v: 255 if v < INK else 0).getbbox()
    assert box is not None, "nothing was drawn"
    return box


def test_rotate_turns_a_rect_about_its_centre() -> None:
    # pen.js: translate(x + width / 2, y + height / 2); rotate(rotate * PI / 180), clockwise.
    t = parse_template(palette({"type": "rect", "css": {"top": 100, "left": 100, "width": 60,
                                                        "height": 20, "color": "#000",
                                                        "rotate": 90}}))  # fmt: skip
    x0, y0, x1, y1 = ink_box(render_image(t, DATA))
    assert abs(x0 - 120) <= 1 and abs(x1 - 140) <= 1  # 20 wide about x = 130
    assert abs(y0 - 80) <= 1 and abs(y1 - 140) <= 1  # 60 tall about y = 110


def test_rotate_45_keeps_the_centre_and_the_diagonal() -> None:
    t = parse_template(palette({"type": "rect", "css": {"top": 60, "left": 100, "width": 40,
                                                        "height": 40, "color": "#000",
                                                        "rotate": "45"}}))  # fmt: skip
    x0, y0, x1, y1 = ink_box(render_image(t, DATA))
    half = 20 * 2**0.5
    assert abs((x0 + x1) / 2 - 120) <= 1 and abs((y0 + y1) / 2 - 80) <= 1
    assert abs((x1 - x0) / 2 - half) <= 2


def test_rotated_text_is_mirrored_by_180_about_its_box_centre() -> None:
    css = {"top": 60, "left": 50, "fontSize": 40, "color": "#000", "background": "#ffffff"}
    flat = parse_template(palette({"type": "text", "text": "Lj", "css": css}))
    turned = parse_template(palette({"type": "text", "text": "Lj", "css": {**css, "rotate": 180}}))
    x, y, w, h = laid_box(flat)[1]
    fx0, fy0, fx1, fy1 = ink_box(render_image(flat, DATA))
    tx0, ty0, tx1, ty1 = ink_box(render_image(turned, DATA))
    assert abs(tx0 - (2 * x + w - fx1)) <= 2 and abs(tx1 - (2 * x + w - fx0)) <= 2
    assert abs(ty0 - (2 * y + h - fy1)) <= 2 and abs(ty1 - (2 * y + h - fy0)) <= 2


def test_rotated_qrcode_and_avatar_still_draw() -> None:
    from poster_helpers import decode_qr

    t = parse_template(palette(
        {"type": "image", "url": "{avatar}", "css": {"top": 10, "left": 10, "width": 60,
                                                      "height": 60, "rotate": 30}},
        {"type": "qrcode", "content": "{link}", "css": {"top": 20, "left": 120, "width": 160,
                                                         "rotate": 90}},
        width=300, height=200,
    ))  # fmt: skip
    img = render_image(t, DATA)
    assert decode_qr(img.crop((100, 0, 300, 200))) == [LINK]
    assert img.getpixel((40, 40)) != (255, 255, 255)  # the avatar's middle is painted


def test_a_rotated_view_counts_its_layers_in_the_budget() -> None:
    from posters.budget import MAX_PAINT_PIXELS

    side = 2048  # 4 Mpx canvas: each rotated view costs its area plus 8 Mpx of layers
    views = [{"type": "rect", "css": {"width": 1, "height": 1, "color": "#000", "rotate": 5}}]
    n = MAX_PAINT_PIXELS // (2 * side * side) + 1
    with pytest.raises(PosterTemplateError) as caught:
        parse_template(palette(*views * n, width=side, height=side))
    assert caught.value.field.endswith(".css")
    parse_template(palette(*views * (n - 2), width=side, height=side))  # fits


@pytest.mark.parametrize("where", ["rect", "text", "canvas"])
def test_radial_gradient_wherever_a_colour_goes(where: str) -> None:
    # gradient.js radialEffect: createRadialGradient(0, 0, 0, 0, 0, max(w, h) / 2) about the
    # box centre, so t = distance from the centre / (max(w, h) / 2).
    paint = "radial-gradient(#ffffff 0%, #000000 100%)"
    box = {"top": 20, "left": 40, "width": 100, "height": 60}
    if where == "rect":
        t = parse_template(palette({"type": "rect", "css": {**box, "color": paint}}))
        x, y = 40, 20
    elif where == "text":
        t = parse_template(palette({"type": "text", "text": " .", "css": {
            **box, "background": paint, "color": "#ffffff", "fontSize": 10}}))  # fmt: skip
        x, y = 40, 20
    else:
        t = {**palette(), "width": 100, "height": 60, "background": paint}
        t = parse_template(t)
        x, y = 0, 0
    img = render_image(t, DATA).convert("L")
    centre = img.getpixel((x + 50, y + 30))
    assert centre >= 250  # t = 0: the first stop
    # (x + 25, y + 30): pixel centre 24.5 px from the centre, t = 24.5 / 50 -> 255 * (1 - t)
    assert abs(img.getpixel((x + 25, y + 30)) - 255 * (1 - 24.5 / 50)) <= 3
    assert img.getpixel((x, y)) <= 3  # the corner is past the radius: the last stop


def test_radial_gradient_part_equals_the_whole() -> None:
    from posters.colors import gradient_image, parse_paint

    g = parse_paint("radial-gradient(circle, red 0%, blue 60%, #00ff0080 100%)")
    whole = gradient_image(g, (90, 50))  # type: ignore[arg-type]
    part = gradient_image(g, (90, 50), (30, 10, 70, 45))  # type: ignore[arg-type]
    assert part.tobytes() == whole.crop((30, 10, 70, 45)).tobytes()


@pytest.mark.parametrize("kind", ["rect", "image", "text", "qrcode"])
def test_shadow_falls_offset_and_blurred_under_every_view(kind: str) -> None:
    # pen.js _doShadow: shadowOffsetX/Y = x, y; shadowBlur = blur; shadowColor = color.
    css: dict[str, Any] = {"top": 40, "left": 40, "width": 80, "height": 80,
                           "shadow": "20px 30px 0 #ff0000"}  # fmt: skip
    view: dict[str, Any] = {"type": kind, "css": css}
    if kind == "rect":
        css["color"] = "#000000"
    elif kind == "image":
        view["url"] = png_uri((8, 8), (0, 0, 0))
    elif kind == "text":
        view["text"] = "█"
        css.update(fontSize=60, background="#000000")
    img = render_image(parse_template(palette(view)), DATA)
    # the view itself is unchanged; the shadow shows below/right of it, offset by (20, 30)
    if kind != "qrcode":  # a QR code's corner is its white quiet zone
        assert img.getpixel((45, 45)) == (0, 0, 0)
    assert img.getpixel((40 + 80 + 10, 40 + 80 + 20)) == (255, 0, 0)
    assert img.getpixel((40 + 80 + 21, 40 + 80 + 31)) == (255, 255, 255)
    assert img.getpixel((30, 30)) == (255, 255, 255)  # no shadow up and left
    if kind == "qrcode":
        from poster_helpers import decode_qr

        assert decode_qr(img) == [LINK]


def test_shadow_blur_softens_the_edge() -> None:
    def row(blur: int) -> list[int]:
        t = parse_template(palette({"type": "rect", "css": {
            "top": 40, "left": 40, "width": 80, "height": 80, "color": "#000000",
            "shadow": f"0 0 {blur}px rgba(0, 0, 0, 0.5)"}}))  # fmt: skip
        gray = render_image(t, DATA).convert("L")
        return [gray.getpixel((x, 80)) for x in range(120, 140)]

    sharp, soft = row(0), row(12)
    assert set(sharp) == {255}  # no blur, no offset: hidden under the rect
    assert soft[0] < 250 and soft[-1] > soft[0]  # a half-dark halo fading outwards
    assert min(soft) >= 255 // 2 - 2  # 0.5 alpha at most


def test_shadow_with_rotate() -> None:
    t = parse_template(palette({"type": "rect", "css": {
        "top": 60, "left": 100, "width": 60, "height": 20, "color": "#000000", "rotate": 90,
        "shadow": "15px 0 0 #0000ff"}}))  # fmt: skip
    img = render_image(t, DATA)
    # turned: 20 wide about x = 130 (120..140); its shadow is the turned shape moved 15 px right
    assert img.getpixel((130, 70)) == (0, 0, 0)
    assert img.getpixel((150, 70)) == (0, 0, 255)
