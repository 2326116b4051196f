"""Finding a CJK font, loading it once per size, and knowing which characters it can draw.

Search order (first hit wins):

1. ``LIEBIAN_FONT_PATH`` (append ``#N`` to pick face N of a ``.ttc`` collection);
2. the simplified-Chinese sans face fontconfig picks (``fc-match 'sans-serif:lang=zh-cn'``),
   used only if it really has Chinese glyphs (fontconfig falls back to e.g. DejaVu);
3. ``NotoSansCJKtc-Regular.otf`` in ``sys.prefix``, installed by the pip package
   ``cvttf-NotoSansCJK-Regular`` (a project dependency).

Without any, :class:`~posters.errors.FontNotFoundError` says how to install one. Bold uses a
bold CJK face when fontconfig has one, otherwise the regular face grown by ~size/40 px.

After the CJK face come fallbacks, tried per character (:mod:`posters.glyphs`): the Latin
sans face fontconfig picks (DejaVu Sans has arrows, symbols, U+FFFD), then a colour emoji
face: ``LIEBIAN_EMOJI_FONT_PATH``, else fontconfig's ``emoji`` match, else Debian's
``fonts-noto-color-emoji`` path (``make install`` installs it), used only if it really is a
colour font (CBDT/CBLC, COLR or sbix tables). Each is optional. Fonts are read at import of
the first poster, never written. Every face is laid out with Pillow's BASIC engine, except
that emoji sequences are shaped by the emoji face with RAQM (:func:`load_shaping_font`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import Image, ImageFont, features

from posters.errors import FontNotFoundError

__all__ = [
    "EMOJI_ENV_VAR", "EMOJI_STRIKE", "ENV_VAR", "FontFace", "FontSet", "family_face", "find_fonts",
    "has_glyph", "installed_families", "load_emoji_font", "load_font", "load_shaping_font",
]  # fmt: skip

ENV_VAR = "LIEBIAN_FONT_PATH"
EMOJI_ENV_VAR = "LIEBIAN_EMOJI_FONT_PATH"
DEBIAN_EMOJI = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
# Noto Color Emoji's CBDT bitmaps exist at 109 ppem only: glyphs are drawn there and scaled.
EMOJI_STRIKE = 109
_COLOUR_TABLES = ("CBDT", "COLR", "sbix")
PIP_FONT = "NotoSansCJKtc-Regular.otf"
_PROBE = "中文字体汉"  # all must render as real glyphs for a face to count as CJK
_NOTDEF_PROBE = "\U0010fffd"  # a private-use code point no font maps
_REFERENCE_SIZE = 24


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int = 0


@dataclass(frozen=True)
class FontSet:
    regular: FontFace
    bold: FontFace | None = None  # None: synthesise bold with stroke_width
    fallbacks: tuple[FontFace, ...] = ()  # tried in order for characters the CJK face lacks
    emoji: FontFace | None = None  # a colour emoji face (drawn with embedded colour)
    # Hashed once: a FontSet keys the per-character caches (the dataclass hash recurses).
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        faces = (self.regular, self.bold, self.fallbacks, self.emoji)
        object.__setattr__(self, "_hash", hash(faces))

    def __hash__(self) -> int:
        return self._hash

    def faces(self) -> tuple[FontFace, ...]:
        """Every face in use (for the render environment's digest)."""
        extra = (self.bold, *self.fallbacks, self.emoji)
        return (self.regular, *(f for f in extra if f is not None))


@lru_cache(maxsize=256)
def _load(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: deterministic across machines with or without libraqm, and enough for CJK.
    return ImageFont.truetype(
        face.path, size, index=face.index, layout_engine=ImageFont.Layout.BASIC
    )


def _mask_bytes(font: ImageFont.FreeTypeFont, text: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(text)
    return mask.size, Image.Image()._new(mask).tobytes()


def _is_cjk(face: FontFace) -> bool:
    try:
        font = _load(face, _REFERENCE_SIZE)
    except OSError:
        return False
    notdef = _mask_bytes(font, _NOTDEF_PROBE)
    for ch in _PROBE:
        size, data = _mask_bytes(font, ch)
        if (size, data) == notdef or not any(data):
            return False
    return True


def _parse_env(value: str) -> FontFace:
    path, sep, index = value.rpartition("#")
    if sep and index.isdigit():
        return FontFace(path, int(index))
    return FontFace(value)


def _fc_match(pattern: str) -> FontFace | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [exe, "-f", "%{file}\n%{index}", pattern],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    file, _, index = out.partition("\n")
    if not file or not Path(file).is_file():
        return None
    return FontFace(file, int(index) if index.strip().isdigit() else 0)


@lru_cache(maxsize=1)
def find_fonts() -> FontSet:
    """Resolve the font set once per process (``find_fonts.cache_clear()`` to re-run)."""
    cjk = _find_cjk()
    fallbacks: list[FontFace] = []
    latin = _fc_match("sans-serif")
    if latin is not None and latin not in (cjk.regular, cjk.bold) and _loads(latin):
        fallbacks.append(latin)
    return FontSet(cjk.regular, cjk.bold, tuple(fallbacks), _find_emoji())


def _loads(face: FontFace) -> bool:
    try:
        _cmap(face)
    except Exception:  # noqa: BLE001 - any unreadable font is simply not used
        return False
    return True


def _is_colour(face: FontFace) -> bool:
    try:
        with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
            return any(tag in font for tag in _COLOUR_TABLES) and 0x1F600 in _cmap(face)
    except Exception:  # noqa: BLE001 - any unreadable font is simply not used
        return False


def _find_emoji() -> FontFace | None:
    explicit = os.environ.get(EMOJI_ENV_VAR, "").strip()
    if explicit:
        face = _parse_env(explicit)
        if not _is_colour(face):
            raise FontNotFoundError(
                f"{EMOJI_ENV_VAR}={explicit!r} is not a readable colour emoji font (CBDT, COLR "
                "or sbix with U+1F600); point it at NotoColorEmoji.ttf or unset it"
            )
        return face
    for candidate in (_fc_match("emoji:color=true"), FontFace(DEBIAN_EMOJI)):
        if candidate is not None and Path(candidate.path).is_file() and _is_colour(candidate):
            return candidate
    return None


def _find_cjk() -> FontSet:
    explicit = os.environ.get(ENV_VAR, "").strip()
    if explicit:
        face = _parse_env(explicit)
        if not Path(face.path).is_file():
            raise FontNotFoundError(f"{ENV_VAR}={explicit!r}: no such file; fix or unset it")
        if not _is_cjk(face):
            raise FontNotFoundError(
                f"{ENV_VAR}={explicit!r} has no Chinese glyphs; point it at a CJK font "
                "such as NotoSansCJK-Regular.ttc"
            )
        return FontSet(face)
    regular = _fc_match("sans-serif:lang=zh-cn")
    if regular is not None and _is_cjk(regular):
        bold = _fc_match("sans-serif:lang=zh-cn:weight=bold")
        has_bold = bold is not None and bold != regular and _is_cjk(bold)
        return FontSet(regular, bold if has_bold else None)
    pip_font = Path(sys.prefix) / PIP_FONT
    if pip_font.is_file() and _is_cjk(FontFace(str(pip_font))):
        return FontSet(FontFace(str(pip_font)))
    raise FontNotFoundError(
        "No font with Chinese glyphs found. Fix one of: pip install cvttf-NotoSansCJK-Regular "
        f"(installs {PIP_FONT} into sys.prefix); apt-get install fonts-noto-cjk (found via "
        f"fontconfig); or set {ENV_VAR}=/path/to/a/cjk-font.otf"
    )


def load_font(size: int, *, bold: bool = False) -> tuple[ImageFont.FreeTypeFont, int]:
    """The font for ``size`` px and the px by which to embolden it (0 with a real bold face).

    Pass the second value as ``stroke_width`` to Pillow, or grow the glyph mask by as much.
    """
    fonts = find_fonts()
    size = max(1, size)
    if bold and fonts.bold is not None:
        return _load(fonts.bold, size), 0
    return _load(fonts.regular, size), (max(1, round(size / 40)) if bold else 0)


_GENERIC = {"sans-serif", "serif", "monospace", "cursive", "fantasy", "system-ui"}
_REGULAR_STYLES = ("regular", "book", "normal", "roman")


@lru_cache(maxsize=1)
def installed_families() -> dict[str, FontFace]:
    """Installed font families by lower-cased name -> their regular face (``fc-list``, read
    once per process; empty without fontconfig)."""
    exe = shutil.which("fc-list")
    if exe is None:
        return {}
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [exe, "--format", "%{family}\t%{style}\t%{file}\t%{index}\n"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, tuple[bool, FontFace]] = {}
    for row in out.splitlines():
        parts = row.split("\t")
        if len(parts) != 4 or not parts[3].isdigit():
            continue
        families, style, file, index = parts
        regular = any(s.strip().lower() in _REGULAR_STYLES for s in style.split(","))
        for family in families.split(","):
            key = family.strip().lower()
            if key and (key not in found or (regular and not found[key][0])):
                found[key] = (regular, FontFace(file, int(index)))
    return {key: face for key, (_, face) in found.items()}


@lru_cache(maxsize=256)
def family_face(font_family: str) -> FontFace | None:
    """The face of the first installed family of a CSS ``fontFamily`` list; None for the
    default chain (generic names, families not installed, or the CJK face itself)."""
    families = installed_families()
    for name in font_family.split(","):
        key = name.strip().strip("'\"").strip().lower()
        if key in _GENERIC:
            return None
        face = families.get(key)
        if face is not None and Path(face.path).is_file():
            return None if face == find_fonts().regular else face
    return None


def load_emoji_font(face: FontFace) -> ImageFont.FreeTypeFont:
    """The colour emoji face at its bitmap strike (:data:`EMOJI_STRIKE` px); scale its
    glyphs to the text size."""
    return _load(face, EMOJI_STRIKE)


@lru_cache(maxsize=16)
def _cmap(face: FontFace) -> frozenset[int]:
    with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def has_glyph(face: FontFace, ch: str) -> bool:
    """Whether ``face``'s character map has ``ch`` (a space always counts as drawable)."""
    return ch == " " or ord(ch) in _cmap(face)


@lru_cache(maxsize=4)
def load_shaping_font(face: FontFace) -> ImageFont.FreeTypeFont | None:
    """The colour emoji face at its bitmap strike with RAQM layout (harfbuzz): its GSUB
    joins an emoji sequence (ZWJ, flag, skin tone, keycap) into one glyph. Only emoji
    sequences are shaped; everything else keeps the BASIC layout of :func:`_load`. None
    when this Pillow has no libraqm: sequences are then drawn as their parts."""
    if not features.check_feature("raqm"):
        return None
    return ImageFont.truetype(
        face.path, EMOJI_STRIKE, index=face.index, layout_engine=ImageFont.Layout.RAQM
    )
