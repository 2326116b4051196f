"""Each property added for Painter parity, in isolation: a golden palette (PNG and JPEG) and
its layout boxes worked out from Painter's formulas.

Painter's pen (``components/painter/lib/pen.js``) and its ``painter.js`` ``toPx``:

- calc: ``toPx`` replaces ``id.left|top|right|bottom|width|height`` by ``penCache.viewRect``
  (recorded by ``_preProcess``: left = x, x - width / 2 or x - width by ``align``), lengths by
  px (``%`` of the canvas side), then evaluates + - * / with parentheses (``lib/calc.js``).
- verticalAlign: ``_preProcess`` top = y (top), y - height / 2 (center), y - height (bottom);
  bottom: y = canvas height - height - bottom.
- borderStyle: ``_border`` ``setLineDash([4/3 w, 4/3 w])`` (dashed), ``[w, w]`` (dotted).
- text borders: ``_fillAbsText`` ends with ``_doBorder(view, width, height)`` around the text
  box (stroked outside it).
- letterSpacing is not in pen.js: CSS letter-spacing, px added between characters.
"""

from __future__ import annotations

import io

import pytest
from golden_helpers import DATA, JPEG_TOLERANCE, PNG_TOLERANCE, compare, load
from PIL import Image
from poster_helpers import decode_qr, emoji_font_or_skip

from posters import (
    Template,
    TextView,
    borders,
    missing_glyphs,
    missing_glyphs_header,
    parse_template,
    render_poster,
)
from posters.borders import dash_mask, dash_pattern
from posters.boxes import css_box
from posters.layers import text_layout
from posters.render import render_image
from posters.text import layout_text

PROPERTIES = ["relative_layout", "letter_spacing", "vertical_align", "border_style", "emoji"]


@pytest.mark.parametrize("name", PROPERTIES)
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_property_palette_matches_its_golden(name: str, fmt: str) -> None:
    if name == "emoji":
        emoji_font_or_skip("the emoji golden test")
    image = Image.open(io.BytesIO(render_poster(load(name), DATA, fmt)))  # type: ignore[arg-type]
    assert image.format == fmt.upper()
    png = fmt == "png"
    compare(name, image, PNG_TOLERANCE if png else JPEG_TOLERANCE, source=png)


def _text_box(template: Template, i: int) -> tuple[int, int, int, int]:
    view = template.views[i]
    assert isinstance(view, TextView)
    laid = text_layout(view, {}, (template.width, template.height))
    assert laid is not None
    return laid[1]


def test_relative_layout_boxes() -> None:
    one, two, three, four = (css_box(v.css) for v in load("relative_layout").views)
    # one: left = 50% of 654 - 100 = 227; two: one.left + 100, one.bottom (30 + 100) + 10
    assert one == (227, 30, 200, 100) and two == (327, 140, 200, 100)
    # three: x = two.left + 100 = 427 centred -> 427 - 100; top = two.bottom + 3 * 10
    assert three == (327, 270, 200, 100)
    # four: width = 2 * one.width, x = one.left = 227 centred -> 227 - 200; three.bottom + 10
    assert four == (27, 380, 400, 100)


def test_vertical_align_boxes() -> None:
    t = load("vertical_align")
    assert css_box(t.views[1].css) == (20, 150, 80, 80)  # top: y
    assert css_box(t.views[2].css) == (120, 150 - 40, 80, 80)  # center: y - height / 2
    assert css_box(t.views[3].css) == (220, 150 - 80, 80, 80)  # bottom: y - height
    lh = round(30 * 1.4)
    assert _text_box(t, 4)[1] == 150
    assert _text_box(t, 5)[1] == round(150 - lh / 2)
    assert _text_box(t, 6)[1] == 150 - lh
    # bottom 20 without a height: y = 300 - measured height - 20; right 20: ends at 580
    x, y, w, h = _text_box(t, 7)
    assert (y + h, x + w, h) == (280, 580, round(24 * 1.4))


def test_letter_spacing_widths() -> None:
    plain = layout_text("分销海报", size=32, bold=False, width=600, max_lines=1, line_height=45)
    spaced = layout_text("分销海报", size=32, bold=False, width=600, max_lines=1,
                         line_height=45, letter_spacing=8)  # fmt: skip
    # CJK glyphs advance one em: 4 x 32, plus 8 px between the 4 characters (not after)
    assert (plain.widths[0], spaced.widths[0]) == (128, 128 + 3 * 8)
    t = load("letter_spacing")
    x, _, w, _ = _text_box(t, 2)
    assert x + w == 580  # right 20: the spaced width ends at the edge
    x, _, w, _ = _text_box(t, 3)
    assert abs(x + w / 2 - 300) <= 0.5
    view = t.views[4]
    assert isinstance(view, TextView)
    laid = text_layout(view, {}, (600, 360))
    assert laid is not None
    block = laid[0]
    assert len(block.lines) == 2 and block.lines[1].endswith("…")
    assert all(w <= 360 for w in block.widths)
    unspaced = layout_text(view.text, size=26, bold=False, width=360, max_lines=2, line_height=36)
    assert len(block.lines[0]) < len(unspaced.lines[0])  # the spacing wraps sooner


def _runs(row: list[int]) -> list[int]:
    """Lengths of the runs of covered pixels in ``row``."""
    runs, length = [], 0
    for v in row:
        if v >= 128:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return [*runs, length] if length else runs


@pytest.mark.parametrize(("style", "width"), [("dashed", 6), ("dotted", 6), ("dashed", 3)])
def test_dash_lengths_follow_the_line_width(style: str, width: int) -> None:
    dash = dash_pattern(width, style)
    assert dash == {"dashed": 4 / 3, "dotted": 1.0}[style] * width
    mask = dash_mask(160, 100, 0, width, style)
    row = [mask.getpixel((x, width // 2)) for x in range(width, 160 - width)]  # the top edge
    inner = _runs(row)[1:-1]  # the first and last may be cut by the corners
    assert inner and all(abs(length - dash) <= 1 for length in inner), inner
    assert mask.getpixel((80, 50)) == 0  # the middle stays uncovered


@pytest.mark.parametrize("region", [(0, 0, 700, 500), (650, 450, 1400, 1100), (3, 990, 40, 1100)])
def test_border_masks_of_a_large_box_are_drawn_only_where_visible(
        region: tuple[int, int, int, int]) -> None:  # fmt: skip
    """A box over the cached size draws only its visible region, the same pixels as the
    whole mask would have there."""
    w, h = 1400, 1100
    whole = borders._dashes(w, h, 90, 6, "dashed", (0, 0, w, h))
    part = dash_mask(w, h, 90, 6, "dashed", region)
    assert part.size == (region[2] - region[0], region[3] - region[1])
    assert part.tobytes() == whole.crop(region).tobytes()
    ring = borders._ring_region(w, h, 90, 6, (0, 0, w, h))
    assert borders.rounded_ring_mask(w, h, 90, 6, region).tobytes() == ring.crop(region).tobytes()


def test_a_dashed_box_twice_the_canvas_draws_its_visible_edges() -> None:
    t = parse_template({"width": 400, "height": 300, "background": "#ffffff", "views": [
        {"type": "rect", "css": {"left": -200, "top": 100, "width": 800, "height": 600,
                                 "borderWidth": 8, "borderStyle": "dotted",
                                 "borderColor": "#ff0000"}}]})  # fmt: skip
    image = render_image(t, DATA)
    top_edge = [image.getpixel((x, 103)) for x in range(400)]
    assert (255, 0, 0) in top_edge and (255, 255, 255) in top_edge  # dots and gaps
    assert image.getpixel((200, 200)) == (255, 255, 255)  # no fill: the middle is untouched


def test_border_style_palette_qr_decodes_and_text_borders_are_outside() -> None:
    t = load("border_style")
    image = render_image(t, DATA)
    assert "https://github.com/Kujiale-Mobile/Painter" in decode_qr(image)
    x, y, w, h = _text_box(t, 5)
    mid = y + h // 2
    assert image.getpixel((x - 1, mid)) == (0x33, 0x33, 0x33)  # 2 px outside the box
    assert image.getpixel((x - 2, mid)) == (0x33, 0x33, 0x33)
    assert image.getpixel((x - 3, mid)) == (255, 255, 255)


def test_emoji_palette_names_its_missing_glyph() -> None:
    t = load("emoji")
    assert missing_glyphs(t, DATA) == (0xF0000,)
    assert missing_glyphs_header((0xF0000,)) == "1; U+F0000"
    many = tuple(range(0xF0000, 0xF0020))
    header = missing_glyphs_header(many)
    assert header.startswith("32; U+F0000 ") and header.count("U+") == 16  # bounded
    assert missing_glyphs_header(()) == ""
