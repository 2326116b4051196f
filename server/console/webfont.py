"""The console's Chinese web font, cut from the font the posters already use (no CDN, no system
font needed: a bare Debian chromium shows Chinese, not boxes).

The source is the posters' CJK face (:func:`posters.find_fonts`: ``LIEBIAN_FONT_PATH``, a
fontconfig face, or the ``cvttf-NotoSansCJK-Regular`` wheel, 16 MB). A browser must not fetch
16 MB, so the font is served in slices, each an ``@font-face`` with a ``unicode-range``: the
browser downloads only the slices holding characters the page shows (as Google Fonts does).

- ``ui``: the characters of the console's own Chinese strings (about 300, ~50 KB);
- the rest of GB2312's 6,763 hanzi (common Chinese) in slices of ``SLICE_CHARS`` characters,
  then every other CJK character the font has, by code point, in slices of the same size.

The slices are disjoint, so every character has exactly one face to load.

Slices are cut with fontTools on first request (a few seconds each, in a thread, one at a time
per slice) and kept in ``LIEBIAN_FONT_CACHE`` (default ``liebian-webfont`` in the temporary
directory), under a version derived from the source font, so a changed font gets new URLs and
the served files can be cached for ever.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.params import FromPath

__all__ = ["FAMILY", "font_css", "font_slice", "font_stylesheet", "slices", "ui_font_url"]

FAMILY = "Liebian CJK"
SLICE_CHARS = 400
# Punctuation, kana, CJK, compatibility and full-width forms: where a Chinese page's glyphs are.
_CJK_BLOCKS = ((0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x3100, 0x31BF), (0x3200, 0x4DBF),
               (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF))  # fmt: skip
_locks: dict[int, asyncio.Lock] = {}


def _source() -> tuple[str, int]:
    from posters import find_fonts

    face = find_fonts().regular
    return face.path, face.index


@functools.cache
def version() -> str:
    path, index = _source()
    stat = Path(path).stat()
    return hashlib.blake2b(f"{path}|{index}|{stat.st_size}|{stat.st_mtime_ns}".encode(),
                           digest_size=6).hexdigest()  # fmt: skip


def _ui_characters() -> list[int]:
    from server.console.i18n import STRINGS

    text = "".join(STRINGS["zh"].values()) + "，。：；、！？（）《》“”‘’…·—　"
    return sorted({ord(c) for c in text if ord(c) >= 0x2E80})


def _gb2312() -> list[int]:
    found = []
    for high in range(0xB0, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                found.append(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return found


@functools.cache
def slices() -> tuple[tuple[int, ...], ...]:
    """The code points of each slice the font can draw; slice 0 is ``ui``."""
    from fontTools.ttLib import TTFont

    path, index = _source()
    with TTFont(path, lazy=True, fontNumber=index) as font:
        covered = set(font.getBestCmap())
    ui = [c for c in _ui_characters() if c in covered]
    seen = set(ui)  # slices are disjoint: each character has one face to load
    common = [c for c in _gb2312() if c in covered and c not in seen]
    seen.update(common)
    rest = [c for lo, hi in _CJK_BLOCKS for c in range(lo, hi + 1)
            if c in covered and c not in seen]  # fmt: skip
    cut = [tuple(ui)]
    for run in (common, rest):
        cut += [tuple(run[n : n + SLICE_CHARS]) for n in range(0, len(run), SLICE_CHARS)]
    return tuple(cut)


def _ranges(points: tuple[int, ...]) -> str:
    """``U+4E00-4E05,U+4E08``: consecutive code points folded into ranges."""
    parts: list[str] = []
    start = prev = points[0]
    for point in (*points[1:], -1):
        if point == prev + 1:
            prev = point
            continue
        parts.append(f"U+{start:X}" if start == prev else f"U+{start:X}-{prev:X}")
        start = prev = point
    return ",".join(parts)


@functools.cache
def font_css() -> str:
    rules = []
    for n in range(len(slices())):
        rules.append(
            f"@font-face{{font-family:\"{FAMILY}\";font-style:normal;font-weight:400;"
            f"font-display:swap;src:url(/console/fonts/{version()}/{n}.woff) format(\"woff\");"
            f"unicode-range:{_ranges(slices()[n])}}}"
        )
    return "\n".join(rules) + "\n"


def ui_font_url() -> str:
    """The ``ui`` slice's URL, which every page preloads ("" without a CJK font)."""
    try:
        return f"/console/fonts/{version()}/0.woff"
    except Exception:  # noqa: BLE001 - no font: the pages use the system's fonts
        return ""


def cache_directory() -> Path:
    configured = os.environ.get("LIEBIAN_FONT_CACHE")
    base = Path(configured) if configured else Path(tempfile.gettempdir()) / "liebian-webfont"
    return base / version()


def _cut(n: int) -> bytes:
    """Subset the source font to slice ``n`` as WOFF (fontTools), cached on disk."""
    target = cache_directory() / f"{n}.woff"
    if target.is_file():
        return target.read_bytes()
    from fontTools import subset
    from fontTools.ttLib import TTFont

    path, index = _source()
    options = subset.Options()
    options.flavor = "woff"
    options.hinting = False
    options.layout_features = []  # horizontal text only; keeps slices small and quick to cut
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]  # keep the OFL copyright and the names
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    with TTFont(path, lazy=True, fontNumber=index) as font:
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=slices()[n])
        subsetter.subset(font)
        font.flavor = "woff"
        font.save(str(partial))
    partial.replace(target)  # atomic: another process never reads half a file
    return target.read_bytes()


async def _slice_bytes(n: int) -> bytes:
    lock = _locks.setdefault(n, asyncio.Lock())
    async with lock:  # one cut per slice at a time; the others wait and read the file
        return await asyncio.to_thread(_cut, n)


@get("/console/fonts/cjk.css", include_in_schema=False)
async def font_stylesheet() -> Response[Any]:
    return Response(
        await asyncio.to_thread(font_css),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@get("/console/fonts/{font_version:str}/{file_name:str}", include_in_schema=False)
async def font_slice(font_version: FromPath[str], file_name: FromPath[str]) -> Response[Any]:
    """One slice, ``<n>.woff`` (404 for another version or an unknown slice)."""
    number = file_name.removesuffix(".woff")
    count = len(await asyncio.to_thread(slices))
    if font_version != version() or not number.isdecimal() or not 0 <= int(number) < count:
        return Response(b"", status_code=404)
    return Response(
        await _slice_bytes(int(number)),
        media_type="font/woff",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
