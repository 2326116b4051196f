"""Chinese renders as real glyphs; emoji and long nicknames never escape their box."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw
from poster_helpers import LINK, emoji_font_or_skip

from posters import PosterData, default_template, parse_template, render_image, render_poster
from posters.fonts import find_fonts, has_glyph, load_font
from posters.glyphs import EMOJI, REPLACEMENTS, clean_text, face_slot
from posters.layers import text_layout
from posters.text import ELLIPSIS, layout_text

NOTDEF = "\U0010fffd"
LONG_NICKNAME = "超级无敌推广达人" * 12 + "abcd"  # 100 characters
EMOJI_NICKNAME = "小明🌸同学👨‍👩‍👧‍👦🇨🇳✨ok"


def _mask(text: str, size: int = 48) -> tuple[tuple[int, int], bytes]:
    font, _ = load_font(size)
    image = Image.new("L", (size * (len(text) + 1), size * 2), 0)
    ImageDraw.Draw(image).text((0, 0), text, fill=255, font=font)
    return image.size, image.tobytes()


def test_chinese_characters_are_real_glyphs_not_the_missing_glyph_box() -> None:
    notdef = _mask(NOTDEF)
    assert any(notdef[1])  # the font's .notdef really is a visible box
    for ch in "长按识别二维码一起参与海报邀请你":
        assert _mask(ch) != notdef, ch
        assert has_glyph(find_fonts().regular, ch)


def test_each_character_goes_to_the_first_face_that_has_it() -> None:
    fonts = find_fonts()
    assert not has_glyph(fonts.regular, "😀")  # the CJK face has no emoji...
    assert face_slot("小") == 0 and face_slot("A") == 0 and face_slot("…") == 0
    if fonts.emoji is not None:  # ...the colour face draws them, before any monochrome one
        assert face_slot("😀") == EMOJI and face_slot("🎉") == EMOJI
    assert face_slot("\U000f0000") is None  # private use: no face has it


def test_no_character_is_dropped_silently() -> None:
    text, missing = clean_text("小明\U000f0000x\U000f0001\U000f0000")
    assert missing == (0xF0000, 0xF0001)  # each once, in order of first use
    assert text[:2] == "小明" and text[3] == "x" and len(text) == 6
    assert {text[2], text[4], text[5]} <= set(REPLACEMENTS) and face_slot(text[2]) is not None
    # Invisible format characters (joiner, variation selector, bidi) draw nothing anywhere.
    assert clean_text("a\tb\u00a0c\nd\u202ee\u200d\ufe0f") == ("a b c\nde", ())
    assert clean_text(EMOJI_NICKNAME)[0].startswith("小明")
    if find_fonts().emoji is not None:
            # The family and the flag stay whole: the colour face joins each into one glyph.
            assert clean_text(EMOJI_NICKNAME) == (EMOJI_NICKNAME, ())


def _emoji_box_colours(fmt: str, nickname: str) -> tuple[set[tuple[int, int, int]], int]:
    """Render ``nickname`` in black on white; the distinct strongly coloured pixels inside
    the emoji's laid-out boxes, and how many."""
    template = parse_template({"width": 400, "height": 120, "background": "#ffffff", "views": [
        {"type": "text", "text": "{nickname}",
         "css": {"left": 10, "top": 20, "fontSize": 48, "color": "#000000"}}]})  # fmt: skip
    data = PosterData(nickname=nickname, link=LINK)
    image = Image.open(io.BytesIO(render_poster(template, data, fmt))).convert("RGB")  # type: ignore[arg-type]
    laid = text_layout(template.views[0], {"nickname": nickname}, (400, 120))  # type: ignore[arg-type]
    assert laid is not None
    block, (x, y, _, h) = laid
    colours: set[tuple[int, int, int]] = set()
    count = 0
    emoji = [run for run in block.runs[0] if run.slot == EMOJI]
    assert len(emoji) == 2, block.runs  # 😀 and 🎉, each its own run
    for run in emoji:
        width = round(48 * 1.2)
        for px in range(x + run.x, x + run.x + width):
            for py in range(y, y + h):
                r, g, b = image.getpixel((px, py))  # type: ignore[misc]
                if max(r, g, b) - min(r, g, b) > 80:  # far from any grey: colour
                    colours.add((r // 32, g // 32, b // 32))
                    count += 1
    return colours, count


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_an_emoji_nickname_draws_its_emoji_in_colour(fmt: str) -> None:
    emoji_font_or_skip("the colour emoji test")
    colours, count = _emoji_box_colours(fmt, "小明😀🎉")
    # Drawn in the text colour (black) they would have no saturated pixel at all.
    assert count > 300 and len(colours) >= 4, (count, colours)


def test_emoji_share_the_measurement_of_the_line() -> None:
    emoji_font_or_skip("the emoji measurement test")
    plain = layout_text("小明", size=40, bold=False, width=600, max_lines=1, line_height=56)
    both = layout_text("小明😀🎉", size=40, bold=False, width=600, max_lines=1, line_height=56)
    assert both.widths[0] > plain.widths[0] + 2 * 40  # two emoji of about 1.2 em each
    # Wrapping and the ellipsis count them too: 20 emoji do not fit 300 px on one line.
    cut = layout_text("😀" * 20, size=40, bold=False, width=300, max_lines=1, line_height=56)
    assert cut.lines[0].endswith(ELLIPSIS) and cut.widths[0] <= 300
    wrapped = layout_text("😀" * 20, size=40, bold=False, width=300, max_lines=5,
                          line_height=56)  # fmt: skip
    assert len(wrapped.lines) > 1 and all(w <= 300 for w in wrapped.widths)


def test_long_text_is_ellipsized_within_width() -> None:
    block = layout_text(LONG_NICKNAME, size=38, bold=True, width=482, max_lines=1,
                        line_height=53)  # fmt: skip
    assert len(block.lines) == 1 and block.lines[0].endswith(ELLIPSIS)
    assert block.widths[0] <= 482
    two = layout_text(LONG_NICKNAME, size=30, bold=False, width=300, max_lines=2, line_height=40)
    assert len(two.lines) == 2 and two.lines[1].endswith(ELLIPSIS)
    assert all(w <= 300 for w in two.widths)


def test_latin_words_wrap_at_spaces() -> None:
    block = layout_text("hello wonderful world of posters", size=30, bold=False, width=200,
                        max_lines=10, line_height=40)  # fmt: skip
    assert all(" " not in (line[0], line[-1]) for line in block.lines)
    assert " ".join(block.lines) == "hello wonderful world of posters"


BOX = {"top": 100, "left": 50, "width": 300, "fontSize": 30, "lineHeight": 40, "maxLines": 2}


def _text_only(css: dict[str, Any]) -> Any:
    return parse_template(
        {
            "width": 400,
            "height": 300,
            "background": "#ffffff",
            "views": [{"type": "text", "text": "{nickname}", "css": {**css, "color": "#000000"}}],
        }
    )


def _ink_bounds(css: dict[str, Any], nickname: str) -> tuple[int, int, int, int] | None:
    template = _text_only(css)
    blank = render_image(template, PosterData(nickname="", link=LINK))
    image = render_image(template, PosterData(nickname=nickname, link=LINK))
    return ImageChops.difference(image, blank).getbbox()


@pytest.mark.parametrize(
    "nickname",
    [
        LONG_NICKNAME,
        EMOJI_NICKNAME,
        "😀😀😀",
        "W" * 100,
        "a" + "\u0301" * 50,
        "مرحبا بالعالم",
        "\n\n\nx",
    ],
)
@pytest.mark.parametrize("bold", ["normal", "bold"])
def test_nickname_stays_inside_its_box(nickname: str, bold: str) -> None:
    bounds = _ink_bounds({**BOX, "fontWeight": bold}, nickname)
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        assert x0 >= 50 and x1 <= 350 and y0 >= 100 and y1 <= 100 + 2 * 40, bounds


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=120),
    st.sampled_from(["left", "center", "right"]),
    st.sampled_from(["normal", "bold"]),
)
def test_any_text_stays_inside_its_box(text: str, align: str, bold: str) -> None:
    bounds = _ink_bounds({**BOX, "textAlign": align, "fontWeight": bold}, text)
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        assert x0 >= 50 and x1 <= 350 and y0 >= 100 and y1 <= 180, bounds


@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_text_without_width_stays_on_the_canvas(align: str) -> None:
    css = {"top": 10, "left": 200, "fontSize": 40, "align": align}
    bounds = _ink_bounds(css, LONG_NICKNAME)
    assert bounds is not None
    x0, _, x1, _ = bounds
    assert x0 >= 0 and x1 <= 400


def test_long_and_emoji_nicknames_in_the_default_template() -> None:
    for nickname in (LONG_NICKNAME, EMOJI_NICKNAME, "🌸" * 50):
        image = render_image(
            default_template(),
            PosterData(nickname=nickname, campaign=LONG_NICKNAME, rank=LONG_NICKNAME, link=LINK),
        )
        assert image.size == (750, 1334)


def test_closing_punctuation_never_starts_a_line() -> None:
    font, _ = load_font(30)
    width = font.getlength("好友通过你的专属二维码") + 1  # the comma would just overflow
    block = layout_text("好友通过你的专属二维码，参与活动。", size=30, bold=False, width=width,
                        max_lines=5, line_height=40)  # fmt: skip
    assert all(line[:1] not in "，。" for line in block.lines)
    assert "".join(block.lines) == "好友通过你的专属二维码，参与活动。"


def test_huge_text_is_cut_before_layout() -> None:
    block = layout_text("长" * 200_000, size=30, bold=False, width=300, max_lines=2,
                        line_height=40)  # fmt: skip
    assert len(block.lines) == 2 and block.lines[-1].endswith(ELLIPSIS)
    short = layout_text("i" * 500, size=30, bold=False, width=300, max_lines=1, line_height=40)
    assert short.lines[0].endswith(ELLIPSIS) and short.widths[0] <= 300


def test_large_emoji_are_drawn_but_not_kept() -> None:
    """Emoji masks are cached up to 128 px (512 of them stay small); larger ones are drawn
    per use, so a template of 512 px emoji cannot pin hundreds of MB."""
    emoji_font_or_skip("the large emoji test")
    from posters.text import _emoji

    template = parse_template({"width": 800, "height": 500, "background": "#ffffff", "views": [
        {"type": "text", "text": "{nickname}", "css": {"left": 10, "top": 10, "fontSize": 300}}]})
    _emoji.cache_clear()
    image = render_image(template, PosterData(nickname="😀", link=LINK))
    assert _emoji.cache_info().currsize == 0
    colours = image.crop((10, 10, 400, 400)).convert("RGB").getcolors(1 << 20) or []
    assert any(max(c) - min(c) > 80 for _, c in colours)  # drawn, in colour
