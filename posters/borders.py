"""Border masks: a solid ring, and dashed or dotted rings (Painter's ``borderStyle``).

pen.js ``_border`` strokes the rounded outline with ``setLineDash([4/3 w, 4/3 w])`` for
dashed and ``setLineDash([w, w])`` for dotted (w = borderWidth, butt caps), starting at the
top-left corner and going clockwise. Here the stroke runs along the ring inside the box
(the house convention for borders), clipped to that ring.
"""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw

from posters.images import rounded_mask

__all__ = ["DASH_FACTORS", "dash_mask", "dash_pattern", "rounded_ring_mask"]

DASH_FACTORS = {"dashed": 4 / 3, "dotted": 1.0}  # on = off = factor x border width
Point = tuple[float, float]


def dash_pattern(width: float, style: str) -> float:
    """The length of one dash (and of one gap) in px for a border ``width`` px wide."""
    return max(1.0, DASH_FACTORS[style] * width)


@lru_cache(maxsize=32)
def rounded_ring_mask(w: int, h: int, radius: int, width: int) -> Image.Image:
    """Coverage of the ring ``width`` px wide just inside a w x h box with rounded corners."""
    outer = rounded_mask(w, h, radius) or Image.new("L", (w, h), 255)
    iw, ih = max(0, w - 2 * width), max(0, h - 2 * width)
    if iw == 0 or ih == 0:
        return outer
    inner_r = max(0, min(radius, w // 2, h // 2) - width)
    inner = Image.new("L", (w, h), 0)
    inner.paste(rounded_mask(iw, ih, inner_r) or Image.new("L", (iw, ih), 255), (width, width))
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


@lru_cache(maxsize=32)
def dash_mask(w: int, h: int, radius: int, width: int, style: str) -> Image.Image:
    """Coverage of a dashed or dotted ring ``width`` px wide inside a w x h box."""
    dash = dash_pattern(width, style)
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    points = _outline(w, h, radius, width)
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
    return ImageChops.multiply(mask, rounded_ring_mask(w, h, radius, width))
