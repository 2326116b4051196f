"""Text that stays in its box: per-glyph fonts, wrapping by measured width, ellipsis.

Each character is drawn by the first face of the chain that has it (:mod:`posters.glyphs`):
the CJK face, Latin/symbol fallbacks, the colour emoji face; one without any face draws a
replacement glyph. A line is a sequence of runs of one face; measuring (widths, wrapping,
the ellipsis, alignment) walks the same runs as drawing does. Lines break between CJK
characters and at spaces between Latin words; a word wider than the box breaks between
letters. Past ``max_lines`` the last line ends in "…". ``letter_spacing`` px is added
between characters (CSS letter-spacing, not after the last one).

The unit of all of this is :func:`posters.glyphs.units`: a character, or an emoji sequence
(ZWJ family, flag, skin tone, keycap, VS16) that the colour face joins into one glyph. Such
a sequence is measured and drawn as that one glyph (shaped by RAQM, cached like the other
emoji), never split by wrapping or the ellipsis, and letter spacing goes between units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import regex
from PIL import Image, ImageChops, ImageDraw, ImageFont

from posters.fonts import (
    EMOJI_STRIKE,
    FontFace,
    family_face,
    find_fonts,
    load_emoji_font,
    load_font,
    load_shaping_font,
)
from posters.fonts import _load as _load_face
from posters.glyphs import (
    EMOJI,
    FAMILY,
    JOINERS,
    clean_text,
    cut_units,
    face_slot,
    slot_face,
    units,
)

__all__ = ["Run", "TextBlock", "clean_text", "draw_text_block", "layout_text"]

ELLIPSIS = "…"
_TOKEN = re.compile(r"[A-Za-z0-9\u00c0-\u024f'’_\-.@]+|\s+|.", re.DOTALL)
# The same over grapheme clusters, for text holding emoji sequences (a keycap 1️⃣ starts
# with a digit: it is one cluster of a word, never cut after its "1").
_CLUSTER_TOKEN = regex.compile(r"(?:(?=[A-Za-z0-9\u00c0-\u024f'’_\-.@])\X)+|\s+|\X", regex.DOTALL)
_NO_LINE_START = frozenset("，。、！？；：）》」』】〕”’…,.!?;:)]}%")


@dataclass(frozen=True)
class Run:
    """Characters drawn by one face from ``x`` px after the line's pen origin."""

    slot: int
    text: str
    x: int


@dataclass(frozen=True)
class TextBlock:
    """Laid-out lines; ``widths`` include the stroke on both sides; ``inks`` is each line's
    leftmost ink relative to its pen origin (<= 0 moves the line right by as much)."""

    lines: tuple[str, ...]
    widths: tuple[float, ...]
    font: ImageFont.FreeTypeFont  # the CJK face at this size: line metrics
    stroke: int
    line_height: float
    runs: tuple[tuple[Run, ...], ...] = ()
    inks: tuple[float, ...] = ()
    bold: bool = False
    family: FontFace | None = None  # the text's fontFamily face, if installed


class _Measure:
    """Glyph metrics through the font chain at one size, weight and letter spacing."""

    def __init__(self, size: int, bold: bool = False, spacing: float = 0.0,
                 family: FontFace | None = None) -> None:  # fmt: skip
        self.size, self.bold, self.family = size, bold, family
        self.font, self.stroke = load_font(size, bold=bold)
        self.spacing = round(spacing * 64)  # 1/64 px, like the advances
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {0: self.font}
        self._glyphs: dict[str, tuple[int, int, float, float]] = {}
        self._kerning: dict[str, int] = {}

    def font_of(self, slot: int) -> ImageFont.FreeTypeFont:
        font = self._fonts.get(slot)
        if font is None:
            if slot == FAMILY and self.family is not None:
                face = self.family
            else:
                face = slot_face(find_fonts(), slot, self.bold)
            font = load_emoji_font(face) if slot == EMOJI else _load_face(face, self.size)
            self._fonts[slot] = font
        return font

    def __call__(self, text: str) -> float:
        """Width from the leftmost to the rightmost of pen advance and ink, plus the bold,
        measured by Pillow run by run (what drawing does)."""
        if not text:
            return 0.0
        pen, left, right = 0, 0.0, 0.0
        for i, run in enumerate(_split(text, self)):
            if i:
                pen = ((pen + 32) >> 6) << 6
            x = pen >> 6
            if run.slot == EMOJI:
                advance, ink_left, ink_right = self.glyph(run.text)[1:]
            else:
                font = self.font_of(run.slot)
                ink_left, _, ink_right, _ = font.getbbox(run.text, anchor="ls")
                advance = round(font.getlength(run.text) * 64) + self.spacing * len(run.text)
            left = x + ink_left if i == 0 else min(left, x + ink_left)
            right = x + ink_right if i == 0 else max(right, x + ink_right)
            pen += advance
        return max(right, (pen - self.spacing) / 64) - min(left, 0) + 2 * self.stroke

    def emoji_font(self, unit: str) -> ImageFont.FreeTypeFont:
        """The colour face at its strike: shaped by RAQM for a joined sequence."""
        if len(unit) > 1:  # only sequences the shaping font joined are units
            font = load_shaping_font(slot_face(find_fonts(), EMOJI, False))
            assert font is not None  # noqa: S101 - units() joins nothing without it
            return font
        return self.font_of(EMOJI)

    def glyph(self, ch: str) -> tuple[int, int, float, float]:
        """(slot, advance in 1/64 px with the spacing, ink left, ink right) of one unit (a
        character or a joined emoji sequence) at the pen origin."""
        glyph = self._glyphs.get(ch)
        if glyph is None:
            slot = EMOJI if len(ch) > 1 else face_slot(ch, family=self.family) or 0
            font = self.emoji_font(ch) if slot == EMOJI else self.font_of(slot)
            length, left, right = glyph_metrics(font, ch)
            if slot == EMOJI:  # drawn at the bitmap strike, scaled to the text size
                k = self.size / EMOJI_STRIKE
                left, right, length = left * k, right * k, length * k
            glyph = (slot, round(length * 64) + self.spacing, left, right)
            self._glyphs[ch] = glyph
        return glyph

    def kerning(self, pair: str) -> int:
        """What the font's kerning adds to the first advance of ``pair`` (1/64 px; mostly 0)."""
        known = self._kerning.get(pair)
        if known is None:
            font = self.font_of(self.glyph(pair[0])[0])
            whole = round(font.getlength(pair) * 64) + 2 * self.spacing
            known = whole - self.glyph(pair[0])[1] - self.glyph(pair[1])[1]
            if len(self._kerning) > 100_000:
                self._kerning.clear()
            self._kerning[pair] = known
        return known

    def joins(self, prev: int, slot: int) -> bool:
        """Whether a character of ``slot`` continues a run of ``prev`` (Pillow draws a run
        in one call, which cannot add letter spacing or draw scaled emoji)."""
        return prev == slot and slot != EMOJI and self.spacing == 0


@lru_cache(maxsize=65536)
def glyph_metrics(font: ImageFont.FreeTypeFont, ch: str) -> tuple[float, float, float]:
    """(advance, ink left, ink right) of ``ch`` in px at the pen origin; kept across layouts
    (a new nickname reuses its characters' metrics)."""
    left, _, right, _ = font.getbbox(ch, anchor="ls")
    return font.getlength(ch), left, right


def _split(text: str, measure: _Measure) -> list[Run]:
    """``text`` cut into runs (x not filled in: the ground truth for :class:`_Line`)."""
    runs: list[Run] = []
    for ch in units(text):
        slot = measure.glyph(ch)[0]
        if runs and measure.joins(runs[-1].slot, slot):
            runs[-1] = Run(slot, runs[-1].text + ch, 0)
        else:
            runs.append(Run(slot, ch, 0))
    return runs


class _Line:
    """A line that grows a character at a time, its width known in O(1) per character.

    Pillow's basic layout places glyph i of a run at the rounded pen position (the sum of
    the advances before it, kerning included) and takes the bounding box over all glyphs;
    a new run starts at the pen rounded to a whole pixel. Keeping the pen, the leftmost and
    the rightmost ink gives exactly ``measure(text)`` without re-measuring the line for
    every character (which made wrapping quadratic).
    """

    __slots__ = ("chars", "left", "measure", "pen", "right", "slot")

    def __init__(self, measure: _Measure, text: str = "") -> None:
        self.measure = measure
        self.chars: list[str] = []
        self.pen = 0
        self.slot = 0
        self.left, self.right = 0.0, 0.0
        self.extend(text)

    def _after(self, text: str, runs: list[Run] | None = None) -> tuple[int, float, float, int]:
        pen, left, right, slot = self.pen, self.left, self.right, self.slot
        prev = self.chars[-1] if self.chars else None
        first = not self.chars
        measure = self.measure
        for ch in units(text):
            glyph_slot, advance, ink_left, ink_right = measure.glyph(ch)
            if prev is not None:
                if measure.joins(slot, glyph_slot):
                    pen += measure.kerning(prev + ch)
                else:
                    pen = ((pen + 32) >> 6) << 6
            if runs is not None:
                if runs and prev is not None and measure.joins(slot, glyph_slot):
                    last = runs[-1]
                    runs[-1] = Run(last.slot, last.text + ch, last.x)
                else:
                    runs.append(Run(glyph_slot, ch, pen >> 6))
            x = (pen + 32) >> 6
            if first:
                left, right, first = x + ink_left, x + ink_right, False
            else:
                left, right = min(left, x + ink_left), max(right, x + ink_right)
            pen += advance
            prev, slot = ch, glyph_slot
        return pen, left, right, slot

    def width_with(self, text: str) -> float:
        """``measure(str(self) + text)`` in O(len(text))."""
        if not self.chars and not text:
            return 0.0
        pen, left, right, _ = self._after(text)
        pen -= self.measure.spacing  # spacing goes between characters, not after the last
        return max(right, pen / 64) - min(left, 0) + 2 * self.measure.stroke

    def extend(self, text: str) -> None:
        self.pen, self.left, self.right, self.slot = self._after(text)
        self.chars.extend(units(text))

    def runs(self) -> tuple[tuple[Run, ...], float]:
        """The line's runs and its leftmost ink (relative to the pen origin)."""
        runs: list[Run] = []
        _, left, _, _ = _Line(self.measure)._after(str(self), runs)
        return tuple(runs), left

    def __str__(self) -> str:
        return "".join(self.chars)


def _wrap_paragraph(para: str, width: float, measure: _Measure) -> list[str]:
    lines: list[str] = []
    line = _Line(measure)
    tokens = _CLUSTER_TOKEN.findall(para) if JOINERS.search(para) else _TOKEN.findall(para)
    for token in tokens:
        if line.width_with(token) <= width:
            line.extend(token)
            continue
        if token.isspace():  # a space never starts a line
            lines.append(str(line))
            line = _Line(measure)
            continue
        text, carry = str(line), ""
        kept = units(text.rstrip())
        if token[0] in _NO_LINE_START and len(kept) > 1:
            # 避头: closing punctuation never starts a line; take the last character with it.
            text, carry = "".join(kept[:-1]), kept[-1]
        if text.strip():
            lines.append(text.rstrip())
        line = _Line(measure, carry)
        for ch in units(token):  # token alone may still be too wide: break it between units
            if line.chars and line.width_with(ch) > width:
                lines.append(str(line))
                line = _Line(measure)
            line.extend(ch)
    lines.append(str(line).rstrip())
    return lines


def _ellipsize(line: str, width: float, measure: _Measure) -> str:
    kept = list(units(line.rstrip()))
    # Widths of every prefix plus the ellipsis, in one pass (not one measurement per cut).
    prefix = _Line(measure)
    fits = [prefix.width_with(ELLIPSIS) <= width]
    for ch in kept:
        prefix.extend(ch)
        fits.append(prefix.width_with(ELLIPSIS) <= width)
    while kept and not fits[len(kept)]:
        kept.pop()
        while kept and kept[-1].isspace():
            kept.pop()
    return "".join(kept) + ELLIPSIS if fits[len(kept)] else "".join(kept)


@lru_cache(maxsize=512)
def layout_text(
    text: str,
    *,
    size: int,
    bold: bool,
    width: float,
    max_lines: int,
    line_height: float,
    letter_spacing: float = 0.0,
    font_family: str | None = None,
) -> TextBlock:
    """Wrap cleaned ``text`` into at most ``max_lines`` lines no wider than ``width`` px.

    Cached: a campaign title is laid out once for all of its distributors' posters.
    """
    family = family_face(font_family) if font_family else None
    measure = _Measure(size, bold, letter_spacing, family)
    text = clean_text(text)[0]
    # No glyph is narrower than ~0.2 em, so more characters than this can never be shown;
    # cutting first keeps a 100k-character nickname from costing 100k measurements. (At the
    # smallest sizes glyphs may advance 0 px, so layout itself is linear in the text too.)
    narrowest = max(1.0, size * 0.2 + min(letter_spacing, 0.0))
    limit = max_lines * (int(width // narrowest) + 1)
    text, cut = cut_units(text, limit)
    lines: list[str] = []
    for para in text.split("\n"):
        lines.extend(_wrap_paragraph(para, width, measure))
        if len(lines) > max_lines:
            break
    if len(lines) > max_lines or cut:
        last = min(max_lines, len(lines)) - 1
        lines = [*lines[:last], _ellipsize(lines[last], width, measure)]
    laid = [_Line(measure, line) for line in lines]
    runs = [line.runs() for line in laid]
    return TextBlock(
        tuple(lines), tuple(line.width_with("") for line in laid), measure.font,
        measure.stroke, line_height, tuple(r for r, _ in runs), tuple(i for _, i in runs), bold,
        family,
    )  # fmt: skip


def _embolden(mask: Image.Image, strength: int) -> Image.Image:
    """Grow the glyph coverage by ``strength`` px in every direction (faux bold).

    Looks like FreeType's ``stroke_width`` of the same size at under half the cost; the
    mask carries ``strength`` px of empty padding, so offset()'s wrap-around adds nothing.
    """
    for _ in range(strength):
        grown = mask
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            grown = ImageChops.lighter(grown, ImageChops.offset(mask, dx, dy))
        mask = grown
    return mask


_CACHED_MASK_PIXELS = 256 * 1024  # glyph masks larger than this are drawn per use, not kept


def _mask_of(
    font: ImageFont.FreeTypeFont, stroke: int, line: str, outline: bool = False
) -> tuple[Image.Image, tuple[int, int]]:
    if len(line) * font.size * font.size > _CACHED_MASK_PIXELS:
        return _line_mask.__wrapped__(font, stroke, line, outline)
    return _line_mask(font, stroke, line, outline)


@lru_cache(maxsize=256)
def _line_mask(
    font: ImageFont.FreeTypeFont, stroke: int, line: str, outline: bool = False
) -> tuple[Image.Image, tuple[int, int]]:
    """Coverage mask of ``line`` (bold by ``stroke`` px) and its offset from the baseline.

    ``outline``: only the glyphs' contour, 1 px either side of it (Painter's ``textStyle:
    stroke`` is canvas ``strokeText`` with the default lineWidth of 1).
    """
    x0, y0, x1, y1 = (round(v) for v in font.getbbox(line, anchor="ls"))
    grow = stroke + (1 if outline else 0)
    x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
    mask = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)), 0)
    ImageDraw.Draw(mask).text((-x0, -y0), line, fill=255, font=font, anchor="ls")
    mask = _embolden(mask, stroke)
    if outline:
        mask = ImageChops.subtract(_embolden(mask, 1), _shrink(mask))
    return mask, (x0, y0)


def _shrink(mask: Image.Image) -> Image.Image:
    """Coverage eroded by 1 px (the inside of an outline)."""
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        mask = ImageChops.darker(mask, ImageChops.offset(mask, dx, dy))
    return mask


def draw_text_block(
    canvas: Image.Image,
    block: TextBlock,
    box: tuple[int, int, int, int],
    align: str,
    fill: tuple[int, int, int, int],
    *,
    decoration: frozenset[str] = frozenset(),
    outline: bool = False,
) -> None:
    """Paint ``block`` in ``fill`` into ``box`` = (left, top, width, height), clipped to it.

    Glyph masks are cached per run, so repeated lines (a campaign title) cost one paste per
    run. Colour emoji keep their own colours (``fill``'s alpha still applies). The clip is a
    backstop for fonts whose ink leaves their own metrics.

    ``decoration`` holds any of underline, overline, line-through: lines fontSize / 13 thick
    across the line's measured width at the baseline, baseline - fontSize and baseline -
    fontSize / 3 (pen.js ``_fillAbsText``). ``outline`` draws the glyphs' contour only.
    """
    left, top, width, height = box
    ascent, descent = block.font.getmetrics()
    pad = (block.line_height - (ascent + descent)) / 2.0
    size = block.font.size
    measure = _Measure(round(size), block.bold, family=block.family)
    for i, (line, line_width) in enumerate(zip(block.lines, block.widths, strict=True)):
        if not line:
            continue
        if align == "center":
            x = left + (width - line_width) / 2.0
        elif align == "right":
            x = left + width - line_width
        else:
            x = left
        baseline = top + i * block.line_height + pad + ascent
        # A line whose ink cannot reach the box or the canvas is skipped before its glyph
        # mask exists (the margin of a font size covers ink beyond the font's metrics).
        reach = size + block.stroke
        low, high = max(top, 0), min(top + height, canvas.height)
        if round(baseline) + descent + reach <= low or round(baseline) - ascent - reach >= high:
            continue
        if decoration:
            _decorate(canvas, decoration, (round(x), round(baseline), round(line_width)),
                      round(size), box, fill)  # fmt: skip
        # The pen origin: right of x by the bold, and by the ink that starts left of the pen.
        origin = round(x) + block.stroke - min(round(block.inks[i]), 0)
        for run in block.runs[i]:
            if run.slot == EMOJI:
                emoji = _emoji if size <= _CACHED_EMOJI_SIZE else _emoji.__wrapped__
                rgb, mask, (dx, dy) = emoji(measure.emoji_font(run.text), run.text, round(size))
                paint: tuple[int, int, int] | Image.Image = rgb
            else:
                mask, (dx, dy) = _mask_of(measure.font_of(run.slot), block.stroke, run.text,
                                          outline)  # fmt: skip
                paint = fill[:3]
            at = (origin + run.x + dx, round(baseline) + dy)
            _paste(canvas, box, paint, mask, at, fill[3])


def _paste(canvas: Image.Image, box: tuple[int, int, int, int],
           paint: tuple[int, int, int] | Image.Image, mask: Image.Image,
           at: tuple[int, int], alpha: int) -> None:  # fmt: skip
    """Paste ``paint`` through ``mask`` at ``at``, clipped to ``box``."""
    left, top, width, height = box
    px, py = at
    crop = (max(0, left - px), max(0, top - py), min(mask.width, left + width - px),
            min(mask.height, top + height - py))  # fmt: skip
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        return
    if crop != (0, 0, mask.width, mask.height):
        mask = mask.crop(crop)
        if isinstance(paint, Image.Image):
            paint = paint.crop(crop)
    if alpha < 255:
        mask = mask.point(lambda v: v * alpha // 255)
    canvas.paste(paint, (px + crop[0], py + crop[1]), mask)


_CACHED_EMOJI_SIZE = 128  # larger emoji are drawn per use: 512 kept stay under ~40 MB


@lru_cache(maxsize=512)
def _emoji(
    font: ImageFont.FreeTypeFont, ch: str, size: int
) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """One colour emoji (a character, or a sequence ``font`` shapes into one glyph) at
    ``size`` px: its colours, its coverage and its offset from the pen on the baseline.

    Drawn at the font's bitmap strike with its embedded colours, then scaled (Lanczos).
    """
    x0, y0, x1, y1 = (round(v) for v in font.getbbox(ch, anchor="ls"))
    strike = Image.new("RGBA", (max(1, x1 - x0), max(1, y1 - y0)), (0, 0, 0, 0))
    ImageDraw.Draw(strike).text((-x0, -y0), ch, font=font, anchor="ls", embedded_color=True)
    k = size / EMOJI_STRIKE
    scaled = (max(1, round(strike.width * k)), max(1, round(strike.height * k)))
    # Premultiplied while scaling, so transparent pixels' colour does not bleed into edges.
    image = strike.convert("RGBa").resize(scaled, Image.Resampling.LANCZOS).convert("RGBA")
    # Kept split (colour, coverage): a paste needs both, and splitting costs as much as it.
    return image.convert("RGB"), image.getchannel("A"), (round(x0 * k), round(y0 * k))


_DECORATION_RISE = {"underline": 0.0, "overline": 1.0, "line-through": 1.0 / 3.0}


def _decorate(canvas: Image.Image, decoration: frozenset[str], at: tuple[int, int, int],
              size: int, box: tuple[int, int, int, int],
              fill: tuple[int, int, int, int]) -> None:  # fmt: skip
    """Paint the decoration lines of one text line (clipped to the box and the canvas)."""
    x, baseline, width = at
    thick = max(1, round(size / 13))
    left, top, bw, bh = box
    for name in sorted(decoration):
        y = round(baseline - size * _DECORATION_RISE[name] - thick / 2)
        x0, y0 = max(x, left, 0), max(y, top, 0)
        x1 = min(x + width, left + bw, canvas.width)
        y1 = min(y + thick, top + bh, canvas.height)
        if x1 <= x0 or y1 <= y0:
            continue
        if fill[3] == 255:
            canvas.paste(fill[:3], (x0, y0, x1, y1))
        else:
            canvas.paste(fill[:3], (x0, y0, x1, y1), Image.new("L", (x1 - x0, y1 - y0), fill[3]))
