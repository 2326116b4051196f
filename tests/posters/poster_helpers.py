"""Helpers shared by the poster tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image

from posters import fonts, render

LINK = "https://liebian.example.com/s/AbC123?c=1111"


def decode_qr(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def solid_image(size: tuple[int, int], color: tuple[int, int, int], fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def clear_font_state() -> None:
    fonts.find_fonts.cache_clear()
    fonts._glyphs.clear()
    fonts._notdef.clear()
    render._environment_digest.cache_clear()
    render.clear_caches()
