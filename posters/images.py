"""Bitmaps for image views: decoding, fitting to a box, anti-aliased rounded/circle masks.

Decoding uses JPEG draft mode (DCT scaling) and ``reducing_gap`` so a 640px avatar shrunk
to 120px never decodes or resamples at full size.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

__all__ = ["decode_data_uri", "default_avatar", "fit_image", "open_image", "rounded_mask"]

_SUPERSAMPLE = 4
MAX_DECODE_PIXELS = 4096 * 4096  # after JPEG draft scaling; avatars are far smaller
_ORIENTATION = 0x0112  # EXIF tag


@lru_cache(maxsize=128)
def _corner(radius: int) -> Image.Image:
    """Top-left quarter of a circle of ``radius`` px as an anti-aliased L mask."""
    big = radius * _SUPERSAMPLE
    img = Image.new("L", (big * 2, big * 2), 0)
    ImageDraw.Draw(img).ellipse((0, 0, big * 2 - 1, big * 2 - 1), fill=255)
    return img.crop((0, 0, big, big)).resize((radius, radius), Image.Resampling.BOX)


@lru_cache(maxsize=128)
def rounded_mask(width: int, height: int, radius: int) -> Image.Image | None:
    """An L mask for a ``width`` x ``height`` box with ``radius`` corners; None if square.

    A radius of half the shorter side or more gives a circle (square box) or a pill.
    """
    radius = min(radius, width // 2, height // 2)
    if radius <= 0:
        return None
    mask = Image.new("L", (width, height), 255)
    corner = _corner(radius)
    mask.paste(corner, (0, 0))
    mask.paste(corner.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (width - radius, 0))
    mask.paste(corner.transpose(Image.Transpose.FLIP_TOP_BOTTOM), (0, height - radius))
    mask.paste(corner.transpose(Image.Transpose.ROTATE_180), (width - radius, height - radius))
    return mask


def open_image(data: bytes, target: tuple[int, int]) -> Image.Image:
    """Decode ``data`` (first frame, EXIF-rotated) as RGBA, cheaply when it is much larger.

    Raises ``OSError``/``ValueError``/``Image.DecompressionBombError`` for bad input.
    """
    img: Image.Image = Image.open(io.BytesIO(data))
    side = max(target)
    if img.format == "JPEG":
        img.draft("RGB", (side, side))  # square request: orientation may swap the sides
    if img.width * img.height > MAX_DECODE_PIXELS:
        raise ValueError(f"{img.width}x{img.height} is too many pixels to decode for a poster")
    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA")
    return img


def fit_image(
    img: Image.Image,
    size: tuple[int, int],
    mode: str,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> Image.Image:
    """Resize to exactly ``size``: aspectFill crops, aspectFit pads transparent, else stretch."""
    w, h = size
    gap = 2.0
    if mode == "scaleToFill":
        return img.resize(size, resample, reducing_gap=gap)
    if mode == "aspectFill":
        scale = max(w / img.width, h / img.height)
        cw, ch = w / scale, h / scale
        cx, cy = (img.width - cw) / 2, (img.height - ch) / 2
        return img.resize(size, resample, box=(cx, cy, cx + cw, cy + ch), reducing_gap=gap)
    scale = min(w / img.width, h / img.height)
    inner = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    fitted = img.resize(inner, resample, reducing_gap=gap).convert("RGBA")
    out = Image.new("RGBA", size, (0, 0, 0, 0))
    out.paste(fitted, ((w - inner[0]) // 2, (h - inner[1]) // 2))
    return out


@lru_cache(maxsize=32)
def decode_data_uri(uri: str) -> bytes:
    """Bytes of a ``data:image/...;base64,...`` URI (validated when the template was parsed)."""
    return base64.b64decode(uri.partition(",")[2])


@lru_cache(maxsize=16)
def default_avatar(width: int, height: int) -> Image.Image:
    """A neutral person silhouette on a warm disc-friendly background, drawn at 4x then reduced."""
    s = _SUPERSAMPLE
    w, h = width * s, height * s
    img = Image.new("RGB", (w, h), (255, 236, 214))
    draw = ImageDraw.Draw(img)
    unit = min(w, h)
    cx, cy = w / 2, h / 2
    head = unit * 0.2
    draw.ellipse(
        (cx - head, cy - unit * 0.3, cx + head, cy - unit * 0.3 + 2 * head), fill=(255, 160, 102)
    )
    body_w, body_top = unit * 0.36, cy + unit * 0.16
    draw.ellipse((cx - body_w, body_top, cx + body_w, body_top + unit * 0.6), fill=(255, 160, 102))
    return img.resize((width, height), Image.Resampling.LANCZOS)
