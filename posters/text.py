"""Text that stays in its box: glyph filtering, wrapping by measured width, ellipsis.

Characters the font cannot draw (emoji, rare symbols) are dropped rather than drawn as
missing-glyph boxes. Lines break between CJK characters and at spaces between Latin words;
a word wider than the box breaks between letters. Past ``max_lines`` the last line ends in "…".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont

from posters.fonts import FontFace, find_fonts, has_glyph, load_font

__all__ = ["TextBlock", "clean_text", "draw_text_block", "layout_text"]

ELLIPSIS = "…"
_TOKEN = re.compile(r"[A-Za-z0-9\u00c0-\u024f'’_\-.@]+|\s+|.", re.DOTALL)
_NO_LINE_START = frozenset("，。、！？；：）》」』】〕”’…,.!?;:)]}%")
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def clean_text(text: str, face: FontFace | None = None) -> str:
    """NFC-normalise, turn whitespace into spaces (keeping newlines) and drop undrawable chars."""
    face = face or find_fonts().regular
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if ch == "\n":
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) not in _DROP_CATEGORIES and has_glyph(face, ch):
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class TextBlock:
    """Laid-out lines; ``widths`` include the stroke on both sides."""

    lines: tuple[str, ...]
    widths: tuple[float, ...]
    font: ImageFont.FreeTypeFont
    stroke: int
    line_height: float


class _Measure:
    def __init__(self, font: ImageFont.FreeTypeFont, stroke: int) -> None:
        self.font, self.stroke = font, stroke
        self._glyphs: dict[str, tuple[int, float, float]] = {}
        self._kerning: dict[str, int] = {}

    def __call__(self, text: str) -> float:
        """Width from the leftmost to the rightmost of pen advance and ink, plus the bold."""
        if not text:
            return 0.0
        left, _, right, _ = self.font.getbbox(text, anchor="ls")
        return max(right, self.font.getlength(text)) - min(left, 0) + 2 * self.stroke

    def glyph(self, ch: str) -> tuple[int, float, float]:
        """(advance in 1/64 px, ink left, ink right) of one character at the pen origin."""
        glyph = self._glyphs.get(ch)
        if glyph is None:
            left, _, right, _ = self.font.getbbox(ch, anchor="ls")
            glyph = (round(self.font.getlength(ch) * 64), left, right)
            self._glyphs[ch] = glyph
        return glyph

    def kerning(self, pair: str) -> int:
        """What the font's kerning adds to the first advance of ``pair`` (1/64 px; mostly 0)."""
        known = self._kerning.get(pair)
        if known is None:
            whole = round(self.font.getlength(pair) * 64)
            known = whole - self.glyph(pair[0])[0] - self.glyph(pair[1])[0]
            if len(self._kerning) > 100_000:
                self._kerning.clear()
            self._kerning[pair] = known
        return known


class _Line:
    """A line that grows a character at a time, its width known in O(1) per character.

    Pillow's basic layout places glyph i at the rounded pen position (the sum of the
    advances before it, kerning included) and takes the bounding box over all glyphs, so
    keeping the pen, the leftmost and the rightmost ink gives exactly ``measure(text)``
    without re-measuring the line for every character (which made wrapping quadratic).
    """

    __slots__ = ("chars", "left", "measure", "pen", "right")

    def __init__(self, measure: _Measure, text: str = "") -> None:
        self.measure = measure
        self.chars: list[str] = []
        self.pen = 0
        self.left, self.right = 0.0, 0.0
        self.extend(text)

    def _after(self, text: str) -> tuple[int, float, float]:
        pen, left, right = self.pen, self.left, self.right
        prev = self.chars[-1] if self.chars else None
        first = not self.chars
        for ch in text:
            if prev is not None:
                pen += self.measure.kerning(prev + ch)
            advance, ink_left, ink_right = self.measure.glyph(ch)
            x = (pen + 32) >> 6
            if first:
                left, right, first = x + ink_left, x + ink_right, False
            else:
                left, right = min(left, x + ink_left), max(right, x + ink_right)
            pen += advance
            prev = ch
        return pen, left, right

    def width_with(self, text: str) -> float:
        """``measure(str(self) + text)`` in O(len(text))."""
        if not self.chars and not text:
            return 0.0
        pen, left, right = self._after(text)
        return max(right, pen / 64) - min(left, 0) + 2 * self.measure.stroke

    def extend(self, text: str) -> None:
        self.pen, self.left, self.right = self._after(text)
        self.chars.extend(text)

    def __str__(self) -> str:
        return "".join(self.chars)


def _wrap_paragraph(para: str, width: float, measure: _Measure) -> list[str]:
    lines: list[str] = []
    line = _Line(measure)
    for token in _TOKEN.findall(para):
        if line.width_with(token) <= width:
            line.extend(token)
            continue
        if token.isspace():  # a space never starts a line
            lines.append(str(line))
            line = _Line(measure)
            continue
        text, carry = str(line), ""
        if token[0] in _NO_LINE_START and len(text.rstrip()) > 1:
            # 避头: closing punctuation never starts a line; take the last character with it.
            text, carry = text.rstrip()[:-1], text.rstrip()[-1]
        if text.strip():
            lines.append(text.rstrip())
        line = _Line(measure, carry)
        for ch in token:  # token alone may still be too wide: break it between characters
            if line.chars and line.width_with(ch) > width:
                lines.append(str(line))
                line = _Line(measure)
            line.extend(ch)
    lines.append(str(line).rstrip())
    return lines


def _ellipsize(line: str, width: float, measure: _Measure) -> str:
    line = line.rstrip()
    # Widths of every prefix plus the ellipsis, in one pass (not one measurement per cut).
    prefix = _Line(measure)
    fits = [prefix.width_with(ELLIPSIS) <= width]
    for ch in line:
        prefix.extend(ch)
        fits.append(prefix.width_with(ELLIPSIS) <= width)
    while line and not fits[len(line)]:
        line = line[:-1].rstrip()
    return line + ELLIPSIS if fits[len(line)] else line


@lru_cache(maxsize=512)
def layout_text(
    text: str,
    *,
    size: int,
    bold: bool,
    width: float,
    max_lines: int,
    line_height: float,
) -> TextBlock:
    """Wrap cleaned ``text`` into at most ``max_lines`` lines no wider than ``width`` px.

    Cached: a campaign title is laid out once for all of its distributors' posters.
    """
    font, stroke = load_font(size, bold=bold)
    measure = _Measure(font, stroke)
    text = clean_text(text)
    # No glyph is narrower than ~0.2 em, so more characters than this can never be shown;
    # cutting first keeps a 100k-character nickname from costing 100k measurements. (At the
    # smallest sizes glyphs may advance 0 px, so layout itself is linear in the text too.)
    limit = max_lines * (int(width // max(1.0, size * 0.2)) + 1)
    cut = len(text) > limit
    lines: list[str] = []
    for para in text[:limit].split("\n"):
        lines.extend(_wrap_paragraph(para, width, measure))
        if len(lines) > max_lines:
            break
    if len(lines) > max_lines or cut:
        last = min(max_lines, len(lines)) - 1
        lines = [*lines[:last], _ellipsize(lines[last], width, measure)]
    widths = tuple(measure(line) for line in lines)
    return TextBlock(tuple(lines), widths, font, stroke, line_height)


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

    Glyph masks are cached per line, so repeated lines (a campaign title) cost one paste.
    The clip is a backstop for fonts whose ink leaves their own metrics.

    ``decoration`` holds any of underline, overline, line-through: lines fontSize / 13 thick
    across the line's measured width at the baseline, baseline - fontSize and baseline -
    fontSize / 3 (pen.js ``_fillAbsText``). ``outline`` draws the glyphs' contour only.
    """
    left, top, width, height = box
    ascent, descent = block.font.getmetrics()
    pad = (block.line_height - (ascent + descent)) / 2.0
    alpha = fill[3]
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
        reach = block.font.size + block.stroke
        low, high = max(top, 0), min(top + height, canvas.height)
        if round(baseline) + descent + reach <= low or round(baseline) - ascent - reach >= high:
            continue
        if decoration:
            _decorate(canvas, decoration, (round(x), round(baseline), round(line_width)),
                      round(block.font.size), box, fill)  # fmt: skip
        mask, (dx, dy) = _mask_of(block.font, block.stroke, line, outline)
        # dx is the ink's left edge less the bold; shift right when ink starts left of the pen.
        px = round(x) + block.stroke - min(dx + block.stroke, 0) + dx
        py = round(baseline) + dy
        right, bottom = left + width - px, top + height - py
        crop = (max(0, left - px), max(0, top - py), min(mask.width, right),
                min(mask.height, bottom))  # fmt: skip
        if crop[2] <= crop[0] or crop[3] <= crop[1]:
            continue
        if crop != (0, 0, mask.width, mask.height):
            mask = mask.crop(crop)
        if alpha < 255:
            mask = mask.point(lambda v: v * alpha // 255)
        canvas.paste(fill[:3], (px + crop[0], py + crop[1]), mask)


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
