"""Which font draws each character: the per-glyph fallback chain, and what no font has.

The chain (from :func:`posters.fonts.find_fonts`) is the CJK face (bold or regular), then
the Latin/symbol faces fontconfig knows (DejaVu Sans ...), then the colour emoji face. A
character goes to the first face whose cmap maps it, except that pictographs (emoji
presentation ranges) go to the emoji face first when it has them. A character no face has
becomes a visible replacement (U+FFFD, else U+25A1 "□") and is reported by
:func:`clean_text`, so nothing is dropped silently. Invisible format characters (zero-width
joiner, variation selectors, bidi marks) are dropped: they draw nothing anywhere.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from posters.fonts import FontFace, FontSet, find_fonts, has_glyph

__all__ = [
    "EMOJI", "FAMILY", "REPLACEMENTS", "clean_text", "face_slot", "missing_glyphs", "slot_face",
]  # fmt: skip

EMOJI = -1  # the slot of the colour emoji face
FAMILY = -2  # the slot of a text's own fontFamily face, tried first
REPLACEMENTS = ("\ufffd", "\u25a1", "?")  # the first one the chain can draw stands in
# Emoji presentation by default (Unicode Emoji_Presentation, roughly): the emoji face first.
_EMOJI_FIRST = (
    (0x231A, 0x231B), (0x23E9, 0x23FA), (0x25FD, 0x25FE), (0x2600, 0x27BF),
    (0x2934, 0x2935), (0x2B00, 0x2BFF), (0x3030, 0x3030), (0x303D, 0x303D),
    (0x3297, 0x3297), (0x3299, 0x3299), (0x1F000, 0x1FAFF),
)  # fmt: skip


def _emoji_first(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _EMOJI_FIRST)


def slot_face(fonts: FontSet, slot: int, bold: bool) -> FontFace:
    """The face of ``slot``: 0 the CJK face (its bold when asked and installed), 1.. the
    fallbacks, :data:`EMOJI` the colour emoji face."""
    if slot == EMOJI:
        if fonts.emoji is None:
            raise ValueError("no colour emoji face in this font set")
        return fonts.emoji
    if slot == 0:
        return fonts.bold if bold and fonts.bold is not None else fonts.regular
    return fonts.fallbacks[slot - 1]


@lru_cache(maxsize=4096)
def _slot_of(fonts: FontSet, ch: str) -> int | None:
    cp = ord(ch)
    if fonts.emoji is not None and _emoji_first(cp) and has_glyph(fonts.emoji, ch):
        return EMOJI
    if has_glyph(fonts.regular, ch):
        return 0
    for i, face in enumerate(fonts.fallbacks, start=1):
        if has_glyph(face, ch):
            return i
    if fonts.emoji is not None and cp > 0x7F and has_glyph(fonts.emoji, ch):
        return EMOJI
    return None


def face_slot(ch: str, fonts: FontSet | None = None,
              family: FontFace | None = None) -> int | None:  # fmt: skip
    """The chain slot that draws ``ch`` (see :func:`slot_face`), None if no face has it;
    ``family`` (a text's fontFamily face) comes first, except for pictographs."""
    fonts = fonts or find_fonts()
    slot = _slot_of(fonts, ch)
    if family is not None and slot != EMOJI and has_glyph(family, ch):
        return FAMILY
    return slot


@lru_cache(maxsize=8)
def _replacement(fonts: FontSet) -> str:
    for ch in REPLACEMENTS:
        if _slot_of(fonts, ch) is not None:
            return ch
    return "?"


def clean_text(text: str, fonts: FontSet | None = None) -> tuple[str, tuple[int, ...]]:
    """(drawable text, code points no face has, in order of first use).

    NFC-normalises, turns whitespace into spaces (keeping newlines), drops invisible format
    characters and replaces each undrawable character by a visible replacement glyph.
    """
    fonts = fonts or find_fonts()
    out: list[str] = []
    missing: dict[int, None] = {}
    for ch in unicodedata.normalize("NFC", text):
        if ch == "\n":
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) == "Cf" or 0xFE00 <= ord(ch) <= 0xFE0F:
            continue  # ZWJ, variation selectors, bidi marks: nothing to draw in any face
        elif _slot_of(fonts, ch) is not None:
            out.append(ch)
        else:
            out.append(_replacement(fonts))
            missing[ord(ch)] = None
    return "".join(out), tuple(missing)


def missing_glyphs(text: str) -> tuple[int, ...]:
    """The code points of ``text`` that no face of the chain can draw."""
    return clean_text(text)[1]
