"""Chinese renders as real glyphs; emoji and long nicknames never escape their box."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw
from poster_helpers import LINK

from posters import PosterData, default_template, parse_template, render_image
from posters.fonts import find_fonts, has_glyph, load_font
from posters.text import ELLIPSIS, clean_text, layout_text

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


def test_emoji_are_detected_as_missing_and_dropped() -> None:
    face = find_fonts().regular
    assert not has_glyph(face, "😀")
    assert not has_glyph(face, "\u200d")  # zero-width joiner draws nothing
    assert has_glyph(face, " ") and has_glyph(face, "A") and has_glyph(face, "…")
    assert clean_text(EMOJI_NICKNAME) in ("小明同学✨ok", "小明同学ok")  # ✨ depends on the font
    assert clean_text("a\tb\u00a0c\nd\u202ee") == "a b c\nde"


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
