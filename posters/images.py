"""Bitmaps for image views: decoding, fitting to a box, anti-aliased rounded/circle masks.

Decoding uses JPEG draft mode (DCT scaling) and ``reducing_gap`` so a 640px avatar shrunk
to 120px never decodes or resamples at full size.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

__all__ = [
    "SMALL_PIXELS",
    "Region",
    "decode_data_uri",
    "default_avatar",
    "default_avatar_region",
    "fit_image",
    "fit_region",
    "open_image",
    "rounded_mask",
    "rounded_mask_region",
]

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 inside a box, x1/y1 exclusive
_SUPERSAMPLE = 4
MAX_DECODE_PIXELS = 4096 * 4096  # after JPEG draft scaling; avatars are far smaller
SMALL_PIXELS = 1 << 20  # boxes up to this many pixels are drawn whole (and cached), then cropped
_CORNER_CACHED = 512  # corners up to this radius are drawn whole at 4x (16 MB at most)
_SUPERSAMPLED_PIXELS = 4 << 20  # the most pixels a supersampled piece may have
_ORIENTATION = 0x0112  # EXIF tag


@lru_cache(maxsize=128)
def _corner(radius: int) -> Image.Image:
    """Top-left quarter of a circle of ``radius`` px as an anti-aliased L mask."""
    big = radius * _SUPERSAMPLE
    img = Image.new("L", (big * 2, big * 2), 0)
    ImageDraw.Draw(img).ellipse((0, 0, big * 2 - 1, big * 2 - 1), fill=255)
    return img.crop((0, 0, big, big)).resize((radius, radius), Image.Resampling.BOX)


@lru_cache(maxsize=32)
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


def _supersample(w: int, h: int) -> int:
    for s in (_SUPERSAMPLE, 2):
        if w * s * h * s <= _SUPERSAMPLED_PIXELS:
            return s
    return 1


def _corner_piece(radius: int, piece: Region) -> Image.Image:
    """``piece`` of the top-left quarter-circle mask of ``radius``, drawing nothing else."""
    x0, y0, x1, y1 = piece
    if radius <= _CORNER_CACHED:
        return _corner(radius).crop(piece)
    s = _supersample(x1 - x0, y1 - y0)
    img = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    big = 2 * radius * s - 1
    ImageDraw.Draw(img).ellipse((-x0 * s, -y0 * s, big - x0 * s, big - y0 * s), fill=255)
    return img if s == 1 else img.resize((x1 - x0, y1 - y0), Image.Resampling.BOX)


def _intersect(a: Region, b: Region) -> Region | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def rounded_mask_region(width: int, height: int, radius: int, region: Region) -> Image.Image | None:
    """The ``region`` of :func:`rounded_mask` (None if square), allocating only the region.

    Small boxes crop the cached whole mask (the same pixels); a large box on a small canvas
    draws just the visible parts of its corners, so its cost is the region's, not the box's.
    """
    radius = min(radius, width // 2, height // 2)
    if radius <= 0:
        return None
    if width * height <= SMALL_PIXELS:
        whole = rounded_mask(width, height, radius)
        if whole is None:  # pragma: no cover - radius > 0 here
            return None
        return whole if region == (0, 0, width, height) else whole.crop(region)
    x0, y0, x1, y1 = region
    mask = Image.new("L", (x1 - x0, y1 - y0), 255)
    r = radius
    corners = (
        (0, 0, None),
        (width - r, 0, Image.Transpose.FLIP_LEFT_RIGHT),
        (0, height - r, Image.Transpose.FLIP_TOP_BOTTOM),
        (width - r, height - r, Image.Transpose.ROTATE_180),
    )
    for cx, cy, transpose in corners:
        hit = _intersect((cx, cy, cx + r, cy + r), region)
        if hit is None:
            continue
        lx0, ly0, lx1, ly1 = hit[0] - cx, hit[1] - cy, hit[2] - cx, hit[3] - cy
        # The piece in the top-left quarter's coordinates, mirrored back afterwards.
        if transpose in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_180):
            lx0, lx1 = r - lx1, r - lx0
        if transpose in (Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.ROTATE_180):
            ly0, ly1 = r - ly1, r - ly0
        piece = _corner_piece(r, (lx0, ly0, lx1, ly1))
        if transpose is not None:
            piece = piece.transpose(transpose)
        mask.paste(piece, (hit[0] - x0, hit[1] - y0))
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


def fit_region(
    img: Image.Image,
    size: tuple[int, int],
    mode: str,
    region: Region,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> Image.Image:
    """The ``region`` of ``fit_image(img, size, mode)``, resampling only that region."""
    w, h = size
    rx0, ry0, rx1, ry1 = region
    if w * h <= SMALL_PIXELS:
        whole = fit_image(img, size, mode, resample)
        return whole if region == (0, 0, w, h) else whole.crop(region)
    if mode == "scaleToFill":
        ox, oy, sx, sy, inner = 0.0, 0.0, img.width / w, img.height / h, (0, 0, w, h)
    elif mode == "aspectFill":
        scale = max(w / img.width, h / img.height)
        ox, oy = (img.width - w / scale) / 2, (img.height - h / scale) / 2
        sx = sy = 1 / scale
        inner = (0, 0, w, h)
    else:
        scale = min(w / img.width, h / img.height)
        iw, ih = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        px, py = (w - iw) // 2, (h - ih) // 2
        sx, sy = img.width / iw, img.height / ih
        ox, oy = -px * sx, -py * sy
        inner = (px, py, px + iw, py + ih)
    out = Image.new("RGBA", (rx1 - rx0, ry1 - ry0), (0, 0, 0, 0))
    hit = _intersect(inner, region)
    if hit is None:
        return out
    hx0, hy0, hx1, hy1 = hit
    box = (ox + hx0 * sx, oy + hy0 * sy, ox + hx1 * sx, oy + hy1 * sy)
    part = img.resize((hx1 - hx0, hy1 - hy0), resample, box=box).convert("RGBA")
    if hit == region:
        return part
    out.paste(part, (hx0 - rx0, hy0 - ry0))
    return out


@lru_cache(maxsize=16)
def decode_data_uri(uri: str) -> bytes:
    """Bytes of a ``data:image/...;base64,...`` URI (validated when the template was parsed)."""
    return base64.b64decode(uri.partition(",")[2])


def default_avatar_region(width: int, height: int, region: Region) -> Image.Image:
    """The ``region`` of :func:`default_avatar`, drawing only that region."""
    if width * height <= SMALL_PIXELS:
        whole = default_avatar(width, height)
        return whole if region == (0, 0, width, height) else whole.crop(region)
    return _draw_avatar(width, height, region, _supersample(region[2] - region[0],
                                                           region[3] - region[1]))  # fmt: skip


@lru_cache(maxsize=16)
def default_avatar(width: int, height: int) -> Image.Image:
    """A neutral person silhouette on a warm disc-friendly background, drawn at 4x then reduced."""
    return _draw_avatar(width, height, (0, 0, width, height), _SUPERSAMPLE)


def _draw_avatar(width: int, height: int, region: Region, s: int) -> Image.Image:
    x0, y0, x1, y1 = region
    w, h = width * s, height * s
    img = Image.new("RGB", ((x1 - x0) * s, (y1 - y0) * s), (255, 236, 214))
    draw = ImageDraw.Draw(img)
    dx, dy = -x0 * s, -y0 * s
    unit = min(w, h)
    cx, cy = w / 2, h / 2
    head = unit * 0.2
    cx, cy = cx + dx, cy + dy
    draw.ellipse(
        (cx - head, cy - unit * 0.3, cx + head, cy - unit * 0.3 + 2 * head), fill=(255, 160, 102)
    )
    body_w, body_top = unit * 0.36, cy + unit * 0.16
    draw.ellipse((cx - body_w, body_top, cx + body_w, body_top + unit * 0.6), fill=(255, 160, 102))
    return img if s == 1 else img.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
