"""Which font draws each character: the per-glyph fallback chain, and what no font has.

The chain (from :func:`posters.fonts.find_fonts`) is the CJK face (bold or regular), then
the Latin/symbol faces fontconfig knows (DejaVu Sans ...), then the colour emoji face. A
character goes to the first face whose cmap maps it, except that pictographs (emoji
presentation ranges) go to the emoji face first when it has them. A character no face has
becomes a visible replacement (U+FFFD, else U+25A1 "□") and is reported by
:func:`clean_text`, so nothing is dropped silently. Invisible format characters (zero-width
joiner, variation selectors, bidi marks) are dropped: they draw nothing anywhere.

Emoji sequences are kept whole: text is cut into extended grapheme clusters (UAX #29, the
``regex`` module's ``\\X``), and a cluster of several code points that holds an emoji joiner
(ZWJ sequences, regional-indicator flags, skin-tone modifiers, variation selector 16,
keycaps, tag sequences) is one drawing unit when the colour emoji face's GSUB shapes it into
ONE glyph (Pillow's RAQM layout, harfbuzz). A cluster the face cannot join falls back to its
characters, each handled as above. :func:`units` gives the same cut to measuring and drawing.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import regex

from posters.fonts import EMOJI_STRIKE, FontFace, FontSet, find_fonts, has_glyph, load_shaping_font

__all__ = [
    "EMOJI", "FAMILY", "REPLACEMENTS", "clean_text", "face_slot", "missing_glyphs", "slot_face",
    "JOINERS", "cut_units", "units",
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


_CLUSTER = regex.compile(r"\X", regex.DOTALL)
# Code points that only ever extend or join an emoji: a cluster without one is never shaped.
JOINERS = regex.compile(
    "[\u200d\ufe0f\u20e3\U0001f1e6-\U0001f1ff\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]"
)
_MAX_CLUSTER = 32  # longer clusters (stacked marks, hostile input) are never shaped


def _joined(fonts: FontSet, cluster: str) -> bool:
    """Whether the colour face shapes ``cluster`` (several code points) into one glyph."""
    return 1 < len(cluster) <= _MAX_CLUSTER and _shaped_as_one(fonts, cluster)


@lru_cache(maxsize=4096)
def _shaped_as_one(fonts: FontSet, cluster: str) -> bool:
    """Its shaped advance is one glyph's, not the sum of its parts', and it has ink."""
    if fonts.emoji is None or not JOINERS.search(cluster):
        return False
    first = cluster[0]
    font = load_shaping_font(fonts.emoji)
    if font is None or not has_glyph(fonts.emoji, first):
        return False
    one = font.getlength(first)
    _, top, _, bottom = font.getbbox(cluster, anchor="ls")
    return 0 < font.getlength(cluster) < 1.5 * one and bottom > top and one > EMOJI_STRIKE / 4


def units(text: str, fonts: FontSet | None = None) -> tuple[str, ...]:
    """``text`` (cleaned) cut into drawing units: one per character, except that an emoji
    sequence the colour face joins is one unit."""
    if not JOINERS.search(text):
        return tuple(text)
    return _units(fonts or find_fonts(), text)


@lru_cache(maxsize=4096)
def _units(fonts: FontSet, text: str) -> tuple[str, ...]:
    out: list[str] = []
    for cluster in _CLUSTER.findall(text):
        if _joined(fonts, cluster):
            out.append(cluster)
        else:
            out.extend(ch for ch in cluster if not _invisible(ch))
    return tuple(out)


def cut_units(text: str, limit: int) -> tuple[str, bool]:
    """``text`` (cleaned) cut after its first ``limit`` units, and whether anything was cut;
    linear in what is kept (a 100k-character nickname is not segmented whole)."""
    if not JOINERS.search(text, 0, limit * _MAX_CLUSTER):
        return text[:limit], len(text) > limit
    count = 0
    fonts = find_fonts()
    for match in _CLUSTER.finditer(text):
        cluster = match.group()
        count += 1 if _joined(fonts, cluster) else len(cluster)
        if count >= limit:
            end = match.end() - (count - limit)  # a cluster of parts may be cut between them
            return text[:end], end < len(text)
    return text, False


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or 0xFE00 <= ord(ch) <= 0xFE0F


def clean_text(text: str, fonts: FontSet | None = None) -> tuple[str, tuple[int, ...]]:
    """(drawable text, code points no face has, in order of first use).

    NFC-normalises, turns whitespace into spaces (keeping newlines), keeps each emoji
    sequence the colour face joins (:func:`units`), drops other invisible format characters
    and replaces each undrawable character by a visible replacement glyph.
    """
    fonts = fonts or find_fonts()
    out: list[str] = []
    missing: dict[int, None] = {}
    text = unicodedata.normalize("NFC", text)
    pieces = _CLUSTER.findall(text) if JOINERS.search(text) else text
    for piece in pieces:
        if _joined(fonts, piece):
            out.append(piece)  # one emoji glyph: its joiners and selectors stay
            continue
        for ch in piece:
            if ch == "\n":
                out.append(ch)
            elif ch.isspace():
                out.append(" ")
            elif _invisible(ch):
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
