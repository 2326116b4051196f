"""Emoji sequences (ZWJ families, flags, skin tones, VS16, keycaps) are ONE glyph each:
measured, wrapped, ellipsized and drawn as the colour face joins them (issue 18)."""

from __future__ import annotations

import io

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from poster_helpers import LINK, emoji_shaping_or_skip

from posters import PosterData, glyphs, parse_template, render_poster
from posters.fonts import FontSet
from posters.glyphs import EMOJI, clean_text, units
from posters.render import missing_glyphs
from posters.text import ELLIPSIS, layout_text

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦
FLAG = "\U0001f1e8\U0001f1f3"  # 🇨🇳
THUMB, TONE = "\U0001f44d", "\U0001f3fd"  # 👍 and the medium skin tone 🏽
HEART = "\u2764\ufe0f"  # ❤️ (VS16)
KEYCAP = "1\ufe0f\u20e3"  # 1️⃣
SMILE = "\U0001f600"  # 😀, one code point: the width of one emoji
SEQUENCES = (FAMILY, FLAG, THUMB + TONE, HEART, KEYCAP)
SIZE = 48


def _one_line(text: str, **kw: float) -> tuple[tuple[str, ...], float]:
    block = layout_text(text, size=SIZE, bold=False, width=2000, max_lines=1,
                        line_height=60, **kw)  # fmt: skip
    runs = block.runs[0]
    return tuple(run.text for run in runs if run.slot == EMOJI), block.widths[0]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=["family", "flag", "thumb", "heart", "keycap"])
def test_a_sequence_is_one_unit_as_wide_as_one_emoji(sequence: str) -> None:
    emoji_shaping_or_skip("the emoji sequence test")
    assert units(clean_text(sequence)[0]) == (sequence,)
    emoji, width = _one_line(sequence)
    _, one = _one_line(SMILE)
    assert emoji == (sequence,)  # one emoji run holding the whole sequence
    assert abs(width - one) <= 2, (width, one)  # not four people, two letters, two glyphs


def _ink(fmt: str, text: str) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """``text`` drawn at 48 px in black on white; the image and its ink's bounding box."""
    template = parse_template({"width": 400, "height": 100, "background": "#ffffff", "views": [
        {"type": "text", "text": "{nickname}",
         "css": {"left": 10, "top": 10, "fontSize": SIZE, "color": "#000000"}}]})  # fmt: skip
    data = PosterData(nickname=text, link=LINK)
    image = Image.open(io.BytesIO(render_poster(template, data, fmt))).convert("RGB")  # type: ignore[arg-type]
    ink = Image.eval(image.convert("L"), lambda v: 255 if v < 235 else 0).getbbox()
    assert ink is not None, f"{text!r} drew nothing"
    return image, ink


def _saturated(image: Image.Image, box: tuple[int, int, int, int]) -> set[tuple[int, int, int]]:
    pixels = image.crop(box).getcolors(1 << 20) or []
    return {(r // 32, g // 32, b // 32) for _, (r, g, b) in pixels
            if max(r, g, b) - min(r, g, b) > 80}  # fmt: skip


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_the_family_draws_one_glyph_not_four_people(fmt: str) -> None:
    emoji_shaping_or_skip("the emoji ZWJ drawing test")
    _, (x0, y0, x1, y1) = _ink(fmt, SMILE)
    _, (f0, g0, f1, g1) = _ink(fmt, FAMILY)
    # Noto draws the family as one grey tile of four silhouettes: one emoji's box.
    assert abs((f1 - f0) - (x1 - x0)) <= 0.25 * (x1 - x0), ((f0, f1), (x0, x1))
    assert abs((g1 - g0) - (y1 - y0)) <= 0.25 * (y1 - y0), ((g0, g1), (y0, y1))


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_flag_draws_one_coloured_glyph(fmt: str) -> None:
    emoji_shaping_or_skip("the emoji flag test")
    _, (x0, _, x1, _) = _ink(fmt, SMILE)
    image, (f0, y0, f1, y1) = _ink(fmt, FLAG)
    assert f1 - f0 <= 1.25 * (x1 - x0)  # one flag, not two letters side by side
    colours = _saturated(image, (f0, y0, f1, y1))
    red = any(r >= 5 and g <= 2 and b <= 2 for r, g, b in colours)
    yellow = any(r >= 6 and g >= 5 and b <= 3 for r, g, b in colours)
    assert red and yellow, colours  # China's flag: red field, yellow stars


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_skin_tone_thumb_is_one_toned_glyph(fmt: str) -> None:
    emoji_shaping_or_skip("the emoji skin-tone test")
    plain, (x0, y0, x1, y1) = _ink(fmt, THUMB)
    toned, (t0, _, t1, _) = _ink(fmt, THUMB + TONE)
    assert abs((t1 - t0) - (x1 - x0)) <= 0.25 * (x1 - x0)  # no swatch beside the thumb
    box = (x0, y0, x1, y1)
    assert _saturated(plain, box) != _saturated(toned, box)  # the thumb itself is toned


def test_a_sequence_the_face_cannot_join_falls_back_to_its_parts() -> None:
    emoji_shaping_or_skip("the emoji fallback test")
    man, woman = "\U0001f468", "\U0001f469"
    # Man ZWJ woman is no sequence of the font: two people, the joiner dropped, nothing lost.
    assert clean_text(man + "\u200d" + woman) == (man + woman, ())
    assert units(man + woman) == (man, woman)
    emoji, width = _one_line(man + "\u200d" + woman)
    _, one = _one_line(SMILE)
    assert emoji == (man, woman) and width > 1.8 * one
    # A sequence around a character no font has: the rest drawn, the missing one reported.
    text, missing = clean_text(man + "\u200d\U0010fffd " + FAMILY)
    assert missing == (0x10FFFD,) and text.endswith(" " + FAMILY)


def test_the_missing_glyphs_header_ignores_joined_sequences() -> None:
    emoji_shaping_or_skip("the emoji header test")
    template = parse_template({"width": 300, "height": 100, "views": [
        {"type": "text", "text": "{nickname}",
         "css": {"left": 0, "top": 0, "width": 300, "height": 60, "fontSize": 20}}]})  # fmt: skip
    nickname = "".join(SEQUENCES) + "\U000f0000"
    assert missing_glyphs(template, PosterData(nickname=nickname, link=LINK)) == (0xF0000,)


def test_letter_spacing_goes_between_sequences() -> None:
    emoji_shaping_or_skip("the emoji letter-spacing test")
    _, two = _one_line(FAMILY + FLAG)
    _, spaced = _one_line(FAMILY + FLAG, letter_spacing=10)
    assert abs(spaced - two - 10) <= 1  # one gap, not one per code point


_piece = st.sampled_from([*SEQUENCES, SMILE, "明", "ab", " ", "，"])


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(_piece, min_size=1, max_size=30),
       width=st.integers(min_value=30, max_value=400),
       max_lines=st.integers(min_value=1, max_value=4))  # fmt: skip
def test_wrapping_and_the_ellipsis_never_split_a_sequence(
    pieces: list[str], width: int, max_lines: int
) -> None:
    emoji_shaping_or_skip("the emoji wrapping test")
    text = clean_text("".join(pieces))[0]
    whole = units(text)
    block = layout_text(text, size=SIZE // 2, bold=False, width=width, max_lines=max_lines,
                        line_height=30)  # fmt: skip
    laid: list[str] = []
    for line in block.lines:
        line_units = units(line.removesuffix(ELLIPSIS))
        # Every unit of a line is a unit of the text: no sequence was cut in two.
        assert set(line_units) <= set(whole), (line, whole)
        laid.extend(u for u in line_units if not u.isspace())
        for run in block.runs[block.lines.index(line)]:
            if len(run.text) > 1 and run.slot == EMOJI:
                assert run.text in SEQUENCES
    kept = [u for u in whole if not u.isspace()]
    assert laid == kept[: len(laid)]  # in order, nothing but the ellipsized tail missing
    # Each line's clusters are the text's clusters (regex \X agrees with the cut).
    for line in block.lines:
        for cluster in regex.findall(r"\X", line):
            assert cluster in whole or len(cluster) == 1 or cluster == " "


def test_without_raqm_sequences_fall_back_to_their_parts(fresh_fonts: pytest.MonkeyPatch) -> None:
    emoji_shaping_or_skip("the emoji no-RAQM fallback test")
    fresh_fonts.setattr(glyphs, "load_shaping_font", lambda face: None)
    text, missing = clean_text(FAMILY + FLAG)
    assert missing == () and units(text) == (*FAMILY[::2], *FLAG)  # people, then two letters
    emoji, _ = _one_line(FAMILY + FLAG)
    assert len(emoji) == 6  # each drawn, none dropped


def test_a_hostile_cluster_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100k-code-point grapheme cluster (one thumb and 99,999 skin tones) is never shaped
    nor kept in a cache (clusters over 32 code points are not): it falls back to its parts
    and layout cuts it like any text."""
    emoji_shaping_or_skip("the hostile emoji cluster test")
    shaped: list[int] = []
    real = glyphs._shaped_as_one

    def spy(fonts: FontSet, cluster: str) -> bool:
        shaped.append(len(cluster))
        return real(fonts, cluster)

    monkeypatch.setattr(glyphs, "_shaped_as_one", spy)
    hostile = THUMB + TONE * 99_999
    assert clean_text(hostile) == (hostile, ())  # every part drawn (the tones as swatches)
    block = layout_text(hostile, size=20, bold=False, width=300, max_lines=2, line_height=24)
    assert len(block.lines) == 2 and block.lines[-1].endswith(ELLIPSIS)
    assert sum(len(line) for line in block.lines) < 200
    assert max(shaped, default=0) <= 32, max(shaped)
