"""CSS-like paints: solid colours, ``linear-gradient(...)`` and ``radial-gradient(...)``.

A paint string is parsed once (cached) into :class:`Solid` or :class:`Gradient`; the
renderer turns gradients into images with :func:`gradient_image`. Colours are RGBA tuples of
0..255 ints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageColor

__all__ = [
    "MAX_SHADOW_BLUR", "RGBA", "Gradient", "Paint", "Shadow", "Solid", "gradient_image",
    "parse_color", "parse_paint", "parse_shadow",
]  # fmt: skip

RGBA = tuple[int, int, int, int]

_RGBA_FN = re.compile(r"rgba?\(\s*([^)]*)\)\s*$", re.IGNORECASE)
_ANGLE = re.compile(r"(-?\d+(?:\.\d+)?)(deg|turn|rad)$")
_SIDES = {
    "to top": 0.0, "to right": 90.0, "to bottom": 180.0, "to left": 270.0,
    "to top right": 45.0, "to right top": 45.0, "to bottom right": 135.0,
    "to right bottom": 135.0, "to bottom left": 225.0, "to left bottom": 225.0,
    "to top left": 315.0, "to left top": 315.0,
}  # fmt: skip


@dataclass(frozen=True)
class Solid:
    rgba: RGBA


@dataclass(frozen=True)
class Gradient:
    """CSS ``linear-gradient``: ``angle`` in degrees (0 = towards the top, clockwise)."""

    angle: float
    stops: tuple[tuple[float, RGBA], ...]  # (position 0..1, colour), sorted by position
    # "radial": Painter's radial-gradient, centred in the box with a radius of half its
    # longer side (gradient.js: createRadialGradient(0, 0, 0, 0, 0, max(w, h) / 2)).
    kind: str = "linear"


Paint = Solid | Gradient


def _channel(text: str, *, alpha: bool) -> int:
    text = text.strip()
    if text.endswith("%"):
        value = float(text[:-1]) / 100.0 * 255.0
    elif alpha:
        value = float(text) * 255.0  # CSS alpha is 0..1
    else:
        value = float(text)
    return max(0, min(255, round(value)))


@lru_cache(maxsize=512)
def parse_color(text: str) -> RGBA:
    """Parse ``#rgb``, ``#rrggbbaa``, ``rgb()``, ``rgba(r, g, b, 0.5)``, names, ``transparent``.

    Raises ``ValueError`` with a message suitable for a template error.
    """
    value = text.strip().lower()
    if value == "transparent":
        return (0, 0, 0, 0)
    match = _RGBA_FN.match(value)
    try:
        if match:
            parts = [p for p in re.split(r"[\s,/]+", match.group(1)) if p]
            if len(parts) not in (3, 4):
                raise ValueError
            r, g, b = (_channel(p, alpha=False) for p in parts[:3])
            a = _channel(parts[3], alpha=True) if len(parts) == 4 else 255
            return (r, g, b, a)
        color = ImageColor.getrgb(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a colour; use #rrggbb, #rrggbbaa, rgba(255, 0, 0, 0.5) or a name"
        ) from None
    return (color[0], color[1], color[2], color[3] if len(color) == 4 else 255)


def _split_args(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _parse_angle(text: str) -> float | None:
    if text in _SIDES:
        return _SIDES[text]
    match = _ANGLE.match(text)
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2)
    factor = {"deg": 1.0, "turn": 360.0, "rad": 180.0 / math.pi}[unit]
    return (number * factor) % 360.0


_RADIAL_SHAPE = re.compile(r"^(circle|ellipse|closest-|farthest-|at )")


def _parse_gradient(body: str, kind: str = "linear") -> Gradient:
    args = _split_args(body)
    if kind == "radial":
        angle = 0.0
        if _RADIAL_SHAPE.match(args[0].lower()):
            args = args[1:]  # the shape is Painter's: centred, radius half the longer side
    else:
        parsed = _parse_angle(args[0].lower())
        if parsed is None:
            angle = 180.0
        else:
            angle, args = parsed, args[1:]
    if len(args) < 2:
        raise ValueError(f"a {kind}-gradient needs at least two colour stops")
    stops: list[tuple[float | None, RGBA]] = []
    for arg in args:
        color_text, _, position = arg.rpartition(" ") if arg.endswith("%") else (arg, "", "")
        pos = float(position[:-1]) / 100.0 if position else None
        stops.append((pos, parse_color(color_text)))
    # CSS: missing first/last positions are 0 and 1; missing middles are spaced evenly.
    if stops[0][0] is None:
        stops[0] = (0.0, stops[0][1])
    if stops[-1][0] is None:
        stops[-1] = (1.0, stops[-1][1])
    resolved: list[tuple[float, RGBA]] = []
    i = 0
    while i < len(stops):
        pos, color = stops[i]
        if pos is not None:
            resolved.append((max(pos, resolved[-1][0]) if resolved else pos, color))
            i += 1
            continue
        j = i
        while stops[j][0] is None:
            j += 1
        lo, hi = resolved[-1][0], stops[j][0] or 0.0
        for k in range(i, j):
            resolved.append((lo + (hi - lo) * (k - i + 1) / (j - i + 1), stops[k][1]))
        i = j
    return Gradient(angle=angle, stops=tuple(resolved), kind=kind)


@lru_cache(maxsize=256)
def parse_paint(text: str) -> Paint:
    """Parse a colour, ``linear-gradient(<angle>|to <side>, <colour> [<pct>%], ...)`` or
    ``radial-gradient([<shape>,] <colour> [<pct>%], ...)``."""
    value = text.strip()
    for kind in ("linear", "radial"):
        if value.lower().startswith(f"{kind}-gradient(") and value.endswith(")"):
            try:
                return _parse_gradient(value[len(kind) + len("-gradient(") : -1], kind)
            except ValueError as exc:
                raise ValueError(f"{text!r}: {exc}") from None
    return Solid(parse_color(value))


def _color_at(stops: tuple[tuple[float, RGBA], ...], t: float) -> RGBA:
    if t <= stops[0][0]:
        return stops[0][1]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:], strict=False):
        if t <= p1:
            f = 0.0 if p1 <= p0 else (t - p0) / (p1 - p0)
            return (
                round(c0[0] + (c1[0] - c0[0]) * f),
                round(c0[1] + (c1[1] - c0[1]) * f),
                round(c0[2] + (c1[2] - c0[2]) * f),
                round(c0[3] + (c1[3] - c0[3]) * f),
            )
    return stops[-1][1]


def _strip(g: Gradient, length: int, line: float) -> Image.Image:
    """A 1-pixel-high RGBA strip of ``length`` pixels centred on a gradient line of ``line``."""
    data = bytearray()
    for x in range(length):
        t = (x + 0.5 - length / 2.0) / line + 0.5
        data.extend(_color_at(g.stops, t))
    return Image.frombytes("RGBA", (length, 1), bytes(data))


def gradient_image(
    g: Gradient, size: tuple[int, int], region: tuple[int, int, int, int] | None = None
) -> Image.Image:
    """Render ``g`` as an RGBA image of ``size`` following the CSS gradient-line rules.

    With ``region`` (x0, y0, x1, y1 inside the box), only that part is computed and returned.
    """
    if g.kind == "radial":
        return _radial_image(g, size, region)
    w, h = size
    rad = math.radians(g.angle)
    line = max(1.0, abs(w * math.sin(rad)) + abs(h * math.cos(rad)))
    axis = round(g.angle) % 360
    x0, y0 = 0, 0
    partial = region is not None and region != (0, 0, w, h)
    if region is not None and partial:  # the general path computes any part exactly
        x0, y0 = region[0], region[1]
        size = (region[2] - region[0], region[3] - region[1])
    elif axis in (90, 270) and abs(g.angle - round(g.angle)) < 1e-9:
        img = _strip(g, w, line).resize((w, h), Image.Resampling.NEAREST)
        return img if axis == 90 else img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif axis in (0, 180) and abs(g.angle - round(g.angle)) < 1e-9:
        strip = _strip(g, h, line).transpose(Image.Transpose.ROTATE_270)  # left->right to top->down
        img = strip.resize((w, h), Image.Resampling.NEAREST)
        return img if axis == 180 else img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    # General angle: sample a 0..255 ramp along t(x, y) with an affine transform (exact for a
    # linear function), then map the index through per-channel lookup tables.
    sin, cos = math.sin(rad), -math.cos(rad)
    ramp = Image.linear_gradient("L")  # 256x256, row r has value r
    a, b = 255.0 * sin / line, 255.0 * cos / line
    c = 127.5 + 0.5 - a * w / 2.0 - b * h / 2.0  # t = 0.5 at the centre; +0.5: row centres
    c += a * x0 + b * y0
    index = ramp.transform(size, Image.Transform.AFFINE, (0, 0, 128, a, b, c),
                           resample=Image.Resampling.BILINEAR)  # fmt: skip
    table = [_color_at(g.stops, i / 255.0) for i in range(256)]
    bands = [index.point([color[k] for color in table]) for k in range(4)]
    return Image.merge("RGBA", bands)


def _radial_image(
    g: Gradient, size: tuple[int, int], region: tuple[int, int, int, int] | None
) -> Image.Image:
    """t = distance from the box centre / (max(w, h) / 2), through the stops."""
    w, h = size
    x0, y0, x1, y1 = region or (0, 0, w, h)
    radius = max(1.0, max(w, h) / 2.0)
    # Pillow's 256x256 ramp has value = distance from (128, 128) x 255 / 181 (its corner):
    # the radius maps to distance 90.5 (value 127.5), so everything up to t = 1.41 is
    # inside the ramp, and beyond it (t > 1: the last stop anyway) is filled with 255.
    ramp = Image.radial_gradient("L")
    k = 128.0 / math.sqrt(2.0) / radius
    # output (x, y) samples the ramp at 128 + (x + x0 + 0.5 - w / 2) * k (pixel centres)
    matrix = (k, 0.0, 128.0 + (x0 + 0.5 - w / 2.0) * k - 0.5,
              0.0, k, 128.0 + (y0 + 0.5 - h / 2.0) * k - 0.5)  # fmt: skip
    index = ramp.transform((x1 - x0, y1 - y0), Image.Transform.AFFINE, matrix,
                           resample=Image.Resampling.BILINEAR, fillcolor=255)  # fmt: skip
    table = [_color_at(g.stops, i / 127.5) for i in range(256)]
    bands = [index.point([color[k] for color in table]) for k in range(4)]
    return Image.merge("RGBA", bands)


MAX_SHADOW_BLUR = 100  # px; the blur's cost grows with it
MAX_SHADOW_OFFSET = 1000  # px
_SHADOW = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)(?:px|rpx)?\s+(-?\d+(?:\.\d+)?)(?:px|rpx)?\s+"
    r"(\d+(?:\.\d+)?)(?:px|rpx)?\s+(.+?)\s*$"
)


@dataclass(frozen=True)
class Shadow:
    """Painter's ``shadow: "x y blur color"`` (canvas shadowOffsetX/Y, shadowBlur, colour)."""

    dx: int
    dy: int
    blur: float
    color: RGBA

    @property
    def margin(self) -> int:
        """How far past the view the shadow may reach."""
        return max(abs(self.dx), abs(self.dy)) + math.ceil(self.blur) + 2


@lru_cache(maxsize=64)
def parse_shadow(text: str) -> Shadow:
    """Parse ``"10px 10px 5px rgba(0, 0, 0, 0.3)"`` (no spread, as in Painter)."""
    match = _SHADOW.match(re.sub(r",\s+", ",", text))
    if not match:
        raise ValueError(f"{text!r}: write x y blur color, like \"0 4px 12px rgba(0,0,0,0.3)\"")
    dx, dy, blur = float(match.group(1)), float(match.group(2)), float(match.group(3))
    if max(abs(dx), abs(dy)) > MAX_SHADOW_OFFSET:
        raise ValueError(f"{text!r}: the offset is at most {MAX_SHADOW_OFFSET} px")
    if blur > MAX_SHADOW_BLUR:
        raise ValueError(f"{text!r}: the blur is at most {MAX_SHADOW_BLUR} px")
    return Shadow(round(dx), round(dy), blur, parse_color(match.group(4)))
