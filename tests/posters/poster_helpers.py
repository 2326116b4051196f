"""Helpers shared by the poster tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

import io
import os

import pytest
import zxingcpp
from PIL import Image, features

from posters import fonts, glyphs, render

LINK = "https://liebian.example.com/s/AbC123?c=1111"


def decode_qr(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def solid_image(size: tuple[int, int], color: tuple[int, int, int], fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def clear_font_state() -> None:
    fonts.find_fonts.cache_clear()
    fonts._cmap.cache_clear()
    glyphs._slot_of.cache_clear()
    glyphs._replacement.cache_clear()
    glyphs._shaped_as_one.cache_clear()
    glyphs._units.cache_clear()
    render._environment_digest.cache_clear()
    render.clear_caches()


def emoji_shaping_or_skip(what: str) -> None:
    """:func:`emoji_font_or_skip`, and Pillow's RAQM layout (libraqm, in Pillow's wheels)
    that joins emoji sequences: a visible skip without it, a failure under CI."""
    emoji_font_or_skip(what)
    if features.check_feature("raqm"):
        return
    problem = "this Pillow has no libraqm (RAQM layout): emoji sequences draw as their parts"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} needs RAQM under CI: {problem}")
    pytest.skip(f"WARNING: {what} was SKIPPED: {problem}")


def emoji_font_or_skip(what: str) -> None:
    """A skip with a visible warning when no colour emoji font is installed, a failure
    under CI (``make install`` installs Debian's fonts-noto-color-emoji)."""
    if fonts.find_fonts().emoji is not None:
        return
    problem = ("no colour emoji font (apt-get install fonts-noto-color-emoji, as make install "
               f"does, or set {fonts.EMOJI_ENV_VAR})")
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} needs a colour emoji font under CI: {problem}")
    pytest.skip(f"WARNING: {what} was SKIPPED: {problem}")
