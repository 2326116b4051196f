"""Where views go and which depend on PosterData: what the static-layer cache needs."""

from __future__ import annotations

import math
from collections.abc import Mapping

from posters.colors import parse_shadow
from posters.spec import IMAGE_SOURCES, PLACEHOLDER_RE, Css, ImageView, QrCodeView, TextView, View

__all__ = [
    "Box", "css_box", "default_max_lines", "is_dynamic", "line_height", "qr_box", "substitute",
    "unrotated_bounds", "view_bounds",
]  # fmt: skip

Box = tuple[int, int, int, int]  # left, top, width, height


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` placeholders in one pass (values are never re-expanded)."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def is_dynamic(view: View) -> bool:
    """Whether the view depends on PosterData (and so cannot go in the cached static layer)."""
    if isinstance(view, TextView):
        return PLACEHOLDER_RE.search(view.text) is not None
    if isinstance(view, QrCodeView):
        return PLACEHOLDER_RE.search(view.content) is not None
    if isinstance(view, ImageView):
        return view.url in IMAGE_SOURCES
    return False


def css_box(css: Css, width: float | None = None, height: float | None = None) -> Box:
    w = css.width if width is None else width
    h = css.height if height is None else height
    w, h = w or 0.0, h or 0.0
    left = css.left - (w / 2 if css.align == "center" else w if css.align == "right" else 0.0)
    # pen.js _preProcess: top = y - height / 2 (center), y - height (bottom)
    v = css.vertical_align
    top = css.top - (h / 2 if v == "center" else h if v == "bottom" else 0.0)
    return round(left), round(top), round(w), round(h)


def default_max_lines(view: TextView) -> int:
    """Lines a text shows without ``maxLines``: as many as the box holds with a width, else
    one per line of the template's text (explicit "\n" breaks; pen.js splits on them)."""
    if view.css.width is not None:
        return 100
    return min(100, view.text.count("\n") + 1)


def line_height(css: Css) -> float:
    return css.line_height or round(css.font_size * 1.4)


def view_bounds(view: View, canvas: tuple[int, int]) -> tuple[int, int, int, int]:
    """A conservative (x0, y0, x1, y1) of everything ``view`` may paint."""
    x0, y0, x1, y1 = unrotated_bounds(view, canvas)
    if view.css.shadow is not None:
        m = parse_shadow(view.css.shadow).margin
        x0, y0, x1, y1 = x0 - m, y0 - m, x1 + m, y1 + m
    if not view.css.rotated:
        return x0, y0, x1, y1
    # Turned about its box's centre, the view stays within the circle through the corners.
    # A text's box (and so its centre) is only known after layout: allow the whole diagonal.
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    reach = math.hypot(x1 - x0, y1 - y0) * (1.0 if isinstance(view, TextView) else 0.5)
    r = math.ceil(reach) + 1
    return math.floor(cx) - r, math.floor(cy) - r, math.ceil(cx) + r, math.ceil(cy) + r


def unrotated_bounds(view: View, canvas: tuple[int, int]) -> tuple[int, int, int, int]:
    """:func:`view_bounds` before ``rotate`` turns the view."""
    css = view.css
    if isinstance(view, TextView):
        lines = css.max_lines or default_max_lines(view)
        height = css.height or line_height(css) * lines
        x, y, w, h = css_box(css, height=height)
        if css.width is not None:
            x0, x1 = x, x + w
        elif css.align == "left":
            x0, x1 = round(css.left), canvas[0]
        elif css.align == "right":
            x0, x1 = 0, round(css.left)
        else:
            half = round(min(css.left, canvas[0] - css.left))
            x0, x1 = round(css.left) - half, round(css.left) + half
        top, right, bottom, left = (round(p) for p in css.padding or (0, 0, 0, 0))
        b = 2 + math.ceil(css.border_width)  # a text's border is drawn outside its box
        top, right, bottom, left = max(top, b), max(right, b), max(bottom, b), max(left, b)
        return x0 - left, y - top, x1 + right, y + h + bottom
    if isinstance(view, QrCodeView):
        side = min(css.width or 0.0, css.height or css.width or 0.0)
        x, y, w, h = css_box(css, side, side)
    else:
        x, y, w, h = css_box(css)
    return x, y, x + w, y + h


def qr_box(css: Css) -> Box:
    """The square a QR view occupies: the shorter of width and height (default: width)."""
    side = round(min(css.width or 0.0, css.height or css.width or 0.0))
    x, y, _, _ = css_box(css, side, side)
    return x, y, side, side
