"""Border masks: a solid ring, and dashed or dotted rings (Painter's ``borderStyle``).

pen.js ``_border`` strokes the rounded outline with ``setLineDash([4/3 w, 4/3 w])`` for
dashed and ``setLineDash([w, w])`` for dotted (w = borderWidth, butt caps), starting at the
top-left corner and going clockwise. Here the stroke runs along the ring inside the box
(the house convention for borders), clipped to that ring. Only the part of a box on the
canvas is ever allocated (a box may be twice the canvas); small boxes' masks are cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw

from posters.images import SMALL_PIXELS, Region, rounded_mask_region

__all__ = ["DASH_FACTORS", "dash_mask", "dash_pattern", "rounded_ring_mask"]

DASH_FACTORS = {"dashed": 4 / 3, "dotted": 1.0}  # on = off = factor x border width
Point = tuple[float, float]


def dash_pattern(width: float, style: str) -> float:
    """The length of one dash (and of one gap) in px for a border ``width`` px wide."""
    return max(1.0, DASH_FACTORS[style] * width)


def rounded_ring_mask(w: int, h: int, radius: int, width: int,
                      region: Region | None = None) -> Image.Image:  # fmt: skip
    """Coverage of the ring ``width`` px wide just inside a w x h box with rounded corners,
    only its ``region`` (default: the whole box); small boxes are cached whole."""
    region = region or (0, 0, w, h)
    if w * h <= SMALL_PIXELS:
        whole = _small_ring(w, h, radius, width)
        return whole if region == (0, 0, w, h) else whole.crop(region)
    return _ring_region(w, h, radius, width, region)


@lru_cache(maxsize=32)
def _small_ring(w: int, h: int, radius: int, width: int) -> Image.Image:
    return _ring_region(w, h, radius, width, (0, 0, w, h))


def _ring_region(w: int, h: int, radius: int, width: int, region: Region) -> Image.Image:
    x0, y0, x1, y1 = region
    size = (x1 - x0, y1 - y0)
    outer = rounded_mask_region(w, h, radius, region) or Image.new("L", size, 255)
    iw, ih = max(0, w - 2 * width), max(0, h - 2 * width)
    # The inner box's part inside the region, in the inner box's own coordinates.
    ix0, iy0 = max(0, x0 - width), max(0, y0 - width)
    ix1, iy1 = min(iw, x1 - width), min(ih, y1 - width)
    if ix1 <= ix0 or iy1 <= iy0:
        return outer
    inner_r = max(0, min(radius, w // 2, h // 2) - width)
    piece = (rounded_mask_region(iw, ih, inner_r, (ix0, iy0, ix1, iy1))
             or Image.new("L", (ix1 - ix0, iy1 - iy0), 255))  # fmt: skip
    inner = Image.new("L", size, 0)
    inner.paste(piece, (ix0 + width - x0, iy0 + width - y0))
    return ImageChops.subtract(outer, inner)


def _outline(w: int, h: int, radius: int, width: int) -> list[Point]:
    """The ring's centre line, clockwise from the top-left corner, arcs as short chords."""
    half = width / 2
    r = max(0.0, min(radius, w // 2, h // 2) - half)
    x0, y0, x1, y1 = half, half, w - half, h - half
    points: list[Point] = []
    corners = ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90),
               (x0 + r, y0 + r, 180))  # fmt: skip
    points.append((x0 + r, y0))
    steps = max(1, math.ceil(r / 2)) if r > 0 else 0
    for cx, cy, start in corners:
        if steps == 0:
            points.append((cx, cy))
            continue
        for i in range(steps + 1):
            a = math.radians(start + 90 * i / steps)
            points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    points.append((x0 + r, y0))
    return points


def dash_mask(w: int, h: int, radius: int, width: int, style: str,
              region: Region | None = None) -> Image.Image:  # fmt: skip
    """Coverage of a dashed or dotted ring ``width`` px wide inside a w x h box, only its
    ``region`` (default: the whole box); small boxes are cached whole."""
    region = region or (0, 0, w, h)
    if w * h <= SMALL_PIXELS:
        whole = _small_dashes(w, h, radius, width, style)
        return whole if region == (0, 0, w, h) else whole.crop(region)
    return _dashes(w, h, radius, width, style, region)


@lru_cache(maxsize=32)
def _small_dashes(w: int, h: int, radius: int, width: int, style: str) -> Image.Image:
    return _dashes(w, h, radius, width, style, (0, 0, w, h))


def _dashes(w: int, h: int, radius: int, width: int, style: str, region: Region) -> Image.Image:
    dash = dash_pattern(width, style)
    x0, y0, x1, y1 = region
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(mask)
    # Dashes are drawn in region coordinates; Pillow clips whatever falls outside.
    points = [(x - x0, y - y0) for x, y in _outline(w, h, radius, width)]
    on, left = True, dash  # the pattern's state and what is left of the current dash/gap
    current: list[Point] = [points[0]]
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        length = math.hypot(bx - ax, by - ay)
        t = 0.0
        while length - t > 1e-9:
            step = min(left, length - t)
            t += step
            left -= step
            p = (ax + (bx - ax) * t / length, ay + (by - ay) * t / length)
            if on:
                current.append(p)
            if left <= 1e-9:
                if on and len(current) > 1:
                    draw.line(current, fill=255, width=width, joint="curve")
                on, left = not on, dash
                current = [p]
    if on and len(current) > 1:
        draw.line(current, fill=255, width=width, joint="curve")
    return ImageChops.multiply(mask, _ring_region(w, h, radius, width, region))
