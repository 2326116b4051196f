"""Drawing one view onto an RGB canvas.

``values`` maps placeholder names to text; ``avatar`` is the distributor's image bytes.
An avatar that does not decode falls back to the default avatar rather than failing the
poster (``server.avatars`` already refuses undecodable images before they get here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

from PIL import Image, ImageChops, ImageFilter

from posters.borders import dash_mask, rounded_ring_mask
from posters.boxes import (
    Box,
    css_box,
    default_max_lines,
    line_height,
    qr_box,
    substitute,
    unrotated_bounds,
)
from posters.budget import truncate_text
from posters.colors import Gradient, Paint, Solid, gradient_image, parse_paint, parse_shadow
from posters.images import (
    SMALL_PIXELS,
    Region,
    decode_data_uri,
    default_avatar_region,
    fit_region,
    open_image,
    rounded_mask_region,
)
from posters.qr import draw_qr
from posters.spec import Css, ImageView, QrCodeView, RectView, TextView, View
from posters.text import TextBlock, draw_text_block, layout_text

__all__ = ["draw_backdrop", "draw_background", "draw_view", "padded", "text_layout"]

_BLACK, _WHITE = "#000000", "#ffffff"


@lru_cache(maxsize=16)
def _gradient(paint: Gradient, size: tuple[int, int]) -> Image.Image:
    return gradient_image(paint, size)


def visible(canvas: Image.Image, box: Box) -> tuple[Region, tuple[int, int]] | None:
    """The part of ``box`` on the canvas, in box coordinates, and where it goes on the canvas.

    Everything drawn is clipped by this first, so a box far larger than the canvas costs no
    more than the canvas (nothing is ever allocated at the box's size).
    """
    x, y, w, h = box
    x0, y0 = max(0, -x), max(0, -y)
    x1, y1 = min(w, canvas.width - x), min(h, canvas.height - y)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1), (x + x0, y + y0)


def _gradient_region(paint: Gradient, size: tuple[int, int], region: Region) -> Image.Image:
    if size[0] * size[1] <= SMALL_PIXELS:
        whole = _gradient(paint, size)
        return whole if region == (0, 0, *size) else whole.crop(region)
    return gradient_image(paint, size, region)


_BAND_PIXELS = 1 << 20  # a large fill is painted in bands of about this many pixels


def _fill(canvas: Image.Image, paint: Paint, box: Box, radius: int = 0) -> None:
    """Paint ``box`` (corners rounded by ``radius``), only where it is on the canvas.

    A large visible part is painted in horizontal bands, so the masks and gradient pixels
    that exist at once stay around ``_BAND_PIXELS`` whatever the canvas.
    """
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return
    seen = visible(canvas, box)
    if seen is None:
        return
    (x0, y0, x1, y1), _ = seen
    rows = (y1 - y0) if w * h <= SMALL_PIXELS else max(1, _BAND_PIXELS // (x1 - x0))
    for top in range(y0, y1, rows):
        band = (x0, top, x1, min(y1, top + rows))
        _fill_region(canvas, paint, box, radius, band, (x + x0, y + top))


def _fill_region(canvas: Image.Image, paint: Paint, box: Box, radius: int, region: Region,
                 at: tuple[int, int]) -> None:  # fmt: skip
    _, _, w, h = box
    px, py = at
    rw, rh = region[2] - region[0], region[3] - region[1]
    if isinstance(paint, Solid):
        rgb, alpha = paint.rgba[:3], paint.rgba[3]
        if alpha == 0:
            return
        mask = rounded_mask_region(w, h, radius, region)
        if alpha < 255:
            mask = (mask.point(lambda v: v * alpha // 255) if mask
                    else Image.new("L", (rw, rh), alpha))  # fmt: skip
        canvas.paste(rgb, (px, py, px + rw, py + rh), mask)
        return
    img = _gradient_region(paint, (w, h), region)
    alpha_mask = img.getchannel("A")
    mask = rounded_mask_region(w, h, radius, region)
    if mask is not None:
        alpha_mask = ImageChops.multiply(alpha_mask, mask)
    canvas.paste(img.convert("RGB"), (px, py), alpha_mask)


def _inset(box: Box, by: float) -> Box:
    b = round(by)
    x, y, w, h = box
    return x + b, y + b, max(0, w - 2 * b), max(0, h - 2 * b)


def _border(canvas: Image.Image, css: Css, box: Box,
            ring_only: bool = False) -> tuple[Box, int]:  # fmt: skip
    """Paint the border ring (drawn inside the box); return the content box and radius.

    A solid border is the box filled with the border paint (the content covers its
    middle) unless ``ring_only``; dashed and dotted ones are dashes along the ring.
    """
    radius = round(css.border_radius)
    if css.border_width <= 0:
        return box, radius
    inner = _inset(box, css.border_width), max(0, radius - round(css.border_width))
    paint = parse_paint(css.border_color)
    if css.border_style != "solid":
        draw_dashes(canvas, paint, box, radius, round(css.border_width), css.border_style)
    elif ring_only:
        _ring(canvas, paint, box, radius, round(css.border_width))
    else:
        _fill(canvas, paint, box, radius)
    return inner


def _ring(canvas: Image.Image, paint: Paint, box: Box, radius: int, width: int) -> None:
    """A solid ring ``width`` px wide inside ``box`` (its middle left as it was)."""
    seen = visible(canvas, box)
    if seen is not None:
        _paint_mask(canvas, paint, box, rounded_ring_mask(*box[2:], radius, width, seen[0]))


def draw_dashes(canvas: Image.Image, paint: Paint, box: Box, radius: int, width: int,
                style: str) -> None:  # fmt: skip
    """A dashed or dotted ring inside ``box`` (pen.js _border: setLineDash of 4/3 x the line
    width on and off for dashed, 1 x for dotted, along the rounded outline)."""
    seen = visible(canvas, box)
    if seen is not None:
        _paint_mask(canvas, paint, box, dash_mask(*box[2:], radius, width, style, seen[0]))


def _paint_mask(canvas: Image.Image, paint: Paint, box: Box, mask: Image.Image) -> None:
    """Paint ``paint`` through ``mask`` (the visible region of ``box``'s coverage)."""
    seen = visible(canvas, box)
    if seen is None:
        return
    region, at = seen
    if isinstance(paint, Solid):
        if paint.rgba[3] < 255:
            mask = mask.point(lambda v: v * paint.rgba[3] // 255)
        canvas.paste(paint.rgba[:3], at, mask)
        return
    img = _gradient_region(paint, box[2:], region)
    canvas.paste(img.convert("RGB"), at, ImageChops.multiply(img.getchannel("A"), mask))


def draw_background(canvas: Image.Image, background: str) -> None:
    w, h = canvas.size
    if background.startswith("data:image/"):
        canvas.paste(_data_image(background, w, h, "aspectFill", (0, 0, w, h)), (0, 0))
    else:
        _fill(canvas, parse_paint(background), (0, 0, w, h))


def _data_image(uri: str, w: int, h: int, mode: str, region: Region) -> Image.Image:
    """A data-URI image fitted to a w x h box, only its ``region``; small ones are cached."""
    if (region[2] - region[0]) * (region[3] - region[1]) <= SMALL_PIXELS:
        return _static_image(uri, w, h, mode, region)
    return _fit_data_image(uri, w, h, mode, region)


@lru_cache(maxsize=16)
def _static_image(uri: str, w: int, h: int, mode: str, region: Region) -> Image.Image:
    return _fit_data_image(uri, w, h, mode, region)


def _fit_data_image(uri: str, w: int, h: int, mode: str, region: Region) -> Image.Image:
    img = open_image(decode_data_uri(uri), (w, h))
    return fit_region(img, (w, h), mode, region).convert("RGBA")


def _avatar(data: bytes | None, w: int, h: int, mode: str, region: Region) -> Image.Image:
    if data is not None:
        try:
            # Bilinear is enough here: after the JPEG draft the shrink factor is under 2.
            img = open_image(data, (w, h))
            return fit_region(img, (w, h), mode, region, Image.Resampling.BILINEAR)
        except (OSError, ValueError, Image.DecompressionBombError):
            pass
    return default_avatar_region(w, h, region)


def _wxacode(data: bytes | None, w: int, h: int) -> Image.Image | None:
    """The mini-program code, decoded; None (draw the link's QR) if absent or bad."""
    if data is None:
        return None
    try:
        return open_image(data, (w, h))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _image_box(view: ImageView) -> tuple[Box, int]:
    css = view.css
    box = css_box(css)
    if css.border_width <= 0:
        return box, round(css.border_radius)
    return _inset(box, css.border_width), max(0, round(css.border_radius - css.border_width))


def _image_backdrop(canvas: Image.Image, view: ImageView) -> None:
    _border(canvas, view.css, css_box(view.css))
    if view.url in ("{qr}", "{wxacode}"):
        box, radius = _image_box(view)
        _fill(canvas, Solid((255, 255, 255, 255)), box, radius)


def _image_content(canvas: Image.Image, view: ImageView, values: Mapping[str, str],
                   avatar: bytes | None, wxacode: bytes | None = None) -> None:  # fmt: skip
    box, radius = _image_box(view)
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return
    code = _wxacode(wxacode, w, h) if view.url == "{wxacode}" else None
    if view.url == "{qr}" or (view.url == "{wxacode}" and code is None):
        white = (255, 255, 255, 255)
        draw_qr(canvas, values["link"], (x, y, min(w, h)), (0, 0, 0, 255), white, radius)
        return
    seen = visible(canvas, box)
    if seen is None:
        return
    region, at = seen
    if code is not None:
        img = fit_region(code, (w, h), view.css.mode, region)
    elif view.url == "{avatar}":
        img = _avatar(avatar, w, h, view.css.mode, region)
    else:
        img = _data_image(view.url, w, h, view.css.mode, region)
    mask = rounded_mask_region(w, h, radius, region)
    if img.mode == "RGBA":
        alpha = img.getchannel("A")
        mask = ImageChops.multiply(alpha, mask) if mask is not None else alpha
        img = img.convert("RGB")
    canvas.paste(img, at, mask)


def text_layout(view: TextView, values: Mapping[str, str],
                canvas: tuple[int, int]) -> tuple[TextBlock, Box] | None:  # fmt: skip
    """The laid-out lines of a text view and its box, or None when there is nothing to draw.

    Without ``css.width`` the box is as wide as the longest line, measured (pen.js: ``width =
    measureText(line).width``), and ``align`` places that width against ``left``: a text
    anchored by ``right`` ends ``right`` px from the canvas edge.
    """
    css = view.css
    text = truncate_text(substitute(view.text, values))
    if not text.strip():
        return None
    lh = line_height(css)
    max_lines = css.max_lines or default_max_lines(view)
    # An explicit height, else the canvas edge, bounds the lines (Painter would overflow).
    if css.vertical_align == "top":
        room = css.height or canvas[1] - css.top
    elif css.vertical_align == "bottom":
        room = css.height or css.top
    else:
        room = css.height or 2 * min(css.top, canvas[1] - css.top)
    max_lines = min(max_lines, max(1, math.floor(room / lh)))
    pad_top, pad_right, pad_bottom, pad_left = css.padding or (0.0, 0.0, 0.0, 0.0)
    if css.width is not None:
        # pen.js: width = css.width - padding right - padding left, at least one font size
        avail = max(css.width - pad_right - pad_left, css.font_size)
    elif css.align == "center":
        avail = 2 * min(css.left, canvas[0] - css.left)
    else:
        avail = canvas[0] - css.left if css.align == "left" else css.left
    block = layout_text(
        text, size=max(1, round(css.font_size)), bold=css.font_weight == "bold",
        width=max(1.0, avail), max_lines=max_lines, line_height=lh,
        letter_spacing=css.letter_spacing, font_family=css.font_family,
    )  # fmt: skip
    width = avail if css.width is not None else math.ceil(max(block.widths, default=0.0))
    return block, css_box(css, width, css.height or lh * len(block.lines))


def padded(css: Css, box: Box) -> Box:
    """A text's background box: its box grown by ``padding`` (pen.js ``_doBackground``)."""
    if css.padding is None:
        return box
    top, right, bottom, left = (round(p) for p in css.padding)
    x, y, w, h = box
    return x - left, y - top, w + left + right, h + top + bottom


def _draw_text(canvas: Image.Image, view: TextView, values: Mapping[str, str]) -> None:
    css = view.css
    laid = text_layout(view, values, canvas.size)
    if laid is None:
        return
    block, (x, y, w, h) = laid
    if css.background:
        back = padded(css, (x, y, w, h))
        _fill(canvas, parse_paint(css.background), back, round(css.border_radius))
    fill = parse_paint(css.color or _BLACK)
    rgba = fill.rgba if isinstance(fill, Solid) else fill.stops[0][1]
    draw_text_block(canvas, block, (x, y, w, h), css.text_align, rgba,
                    decoration=css.decorations, outline=css.text_style == "stroke")  # fmt: skip
    if css.border_width > 0:
        # pen.js _doBorder strokes the text's box (not its padding) from outside: a text's
        # border never covers its glyphs.
        b = round(css.border_width)
        _border(canvas, css, (x - b, y - b, w + 2 * b, h + 2 * b), ring_only=True)


def _qr_backdrop(canvas: Image.Image, view: QrCodeView) -> None:
    box, radius = _border(canvas, view.css, qr_box(view.css))
    paint = parse_paint(view.css.background or _WHITE)
    _fill(canvas, paint, box, radius)


def _qr_content(canvas: Image.Image, view: QrCodeView, values: Mapping[str, str]) -> None:
    css = view.css
    x, y, w, h = _inset(qr_box(css), css.border_width) if css.border_width > 0 else qr_box(css)
    radius = max(0, round(css.border_radius - css.border_width))
    fg = parse_paint(css.color or _BLACK)
    rgba = fg.rgba if isinstance(fg, Solid) else fg.stops[0][1]
    bg = parse_paint(css.background or _WHITE)
    under = bg.rgba if isinstance(bg, Solid) and bg.rgba[3] == 255 else None
    content = substitute(view.content, values)
    draw_qr(canvas, content, (x, y, min(w, h)), rgba, under, radius)


def draw_backdrop(canvas: Image.Image, view: View) -> bool:
    """Paint the data-independent part of an image or QR view (border, background).

    Returns False for views that have no separable backdrop.
    """
    if view.css.layered:
        return False  # a turned or shadowed view is drawn whole, backdrop and content together
    if isinstance(view, ImageView):
        _image_backdrop(canvas, view)
        return True
    if isinstance(view, QrCodeView):
        _qr_backdrop(canvas, view)
        return True
    return False


def draw_view(
    canvas: Image.Image,
    view: View,
    values: Mapping[str, str],
    avatar: bytes | None,
    *,
    backdrop: bool = True,
    wxacode: bytes | None = None,
) -> None:
    """Paint ``view`` onto the RGB ``canvas``; ``backdrop=False`` if it is already painted."""
    if view.css.layered:
        _draw_layered(canvas, view, values, avatar, wxacode)
    else:
        _draw_flat(canvas, view, values, avatar, backdrop, wxacode)


def _centre(view: View, values: Mapping[str, str], size: tuple[int, int]) -> tuple[float, float]:
    """The point ``rotate`` turns about: the centre of the view's box (pen.js translates to
    x + width / 2, y + height / 2 before ``ctx.rotate``)."""
    if isinstance(view, TextView):
        laid = text_layout(view, values, size)
        x, y, w, h = laid[1] if laid is not None else css_box(view.css)
    elif isinstance(view, QrCodeView):
        x, y, w, h = qr_box(view.css)
    else:
        x, y, w, h = css_box(view.css)
    return x + w / 2, y + h / 2


def _draw_layered(canvas: Image.Image, view: View, values: Mapping[str, str],
                  avatar: bytes | None, wxacode: bytes | None = None) -> None:  # fmt: skip
    """Draw ``view`` turned ``rotate`` degrees clockwise about its centre and/or shadowed.

    The view is drawn flat on a black and on a white layer; their difference is its
    coverage and the black one its premultiplied colour. Only the square around the centre
    that can hold the turned view (and its shadow) is cut out, turned and composited; the
    shadow is the coverage blurred (canvas shadowBlur ~ a Gaussian of sigma blur / 2),
    offset and tinted, painted under the view. Ink the flat view would put off the canvas
    is lost even if turning would bring it back (the budget counts the two layers).
    """
    css = view.css
    shadow = parse_shadow(css.shadow) if css.shadow is not None else None
    x0, y0, x1, y1 = unrotated_bounds(view, canvas.size)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(canvas.width, x1), min(canvas.height, y1)
    if x1 <= x0 or y1 <= y0:
        return
    cx, cy = _centre(view, values, canvas.size)
    if css.rotated:
        far = max(math.hypot(px - cx, py - cy) for px in (x0, x1) for py in (y0, y1))
        box = (cx - far, cy - far, cx + far, cy + far)
    else:
        box = (x0, y0, x1, y1)
    m = 2 + (shadow.margin if shadow else 0)
    q = (max(0, math.floor(box[0]) - m), max(0, math.floor(box[1]) - m),
         min(canvas.width, math.ceil(box[2]) + m),
         min(canvas.height, math.ceil(box[3]) + m))  # fmt: skip
    if q[2] <= q[0] or q[3] <= q[1]:
        return
    black = Image.new("RGB", canvas.size, (0, 0, 0))
    white = Image.new("RGB", canvas.size, (255, 255, 255))
    _draw_flat(black, view, values, avatar, True, wxacode)
    _draw_flat(white, view, values, avatar, True, wxacode)
    colour = black.crop(q)
    cover = ImageChops.invert(ImageChops.subtract(white.crop(q), colour).getchannel(0))
    del black, white
    if css.rotated:
        centre = (cx - q[0], cy - q[1])
        colour = colour.rotate(-css.rotate, Image.Resampling.BICUBIC, center=centre)
        cover = cover.rotate(-css.rotate, Image.Resampling.BICUBIC, center=centre)
    under = canvas.crop(q)
    if shadow is not None and shadow.color[3] > 0:
        spread = cover.filter(ImageFilter.GaussianBlur(shadow.blur / 2)) if shadow.blur else cover
        moved = Image.new("L", spread.size, 0)
        moved.paste(spread, (shadow.dx, shadow.dy))
        spread = moved
        if shadow.color[3] < 255:
            spread = spread.point(lambda v: v * shadow.color[3] // 255)
        under.paste(shadow.color[:3], (0, 0), spread)
    under = ImageChops.multiply(under, Image.merge("RGB", [ImageChops.invert(cover)] * 3))
    canvas.paste(ImageChops.add(colour, under), q[:2])


def _draw_flat(canvas: Image.Image, view: View, values: Mapping[str, str],
               avatar: bytes | None, backdrop: bool,
               wxacode: bytes | None = None) -> None:  # fmt: skip
    if isinstance(view, RectView):
        css = view.css
        box, radius = _border(canvas, css, css_box(css))
        paint = css.background or css.color
        if paint:
            _fill(canvas, parse_paint(paint), box, radius)
    elif isinstance(view, TextView):
        _draw_text(canvas, view, values)
    elif isinstance(view, ImageView):
        if backdrop:
            _image_backdrop(canvas, view)
        _image_content(canvas, view, values, avatar, wxacode)
    else:
        if backdrop:
            _qr_backdrop(canvas, view)
        _qr_content(canvas, view, values)
