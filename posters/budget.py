"""The render budget: what one template may ask of the renderer, checked before any drawing.

A template is caller-controlled data, so every cost it can cause has a named bound. They are
checked when a template is parsed (``PUT`` answers 422 naming the field) and again before a
render (templates stored before a bound existed, or built in code):

==========================  =========================================================
canvas                      ``width``, ``height`` <= 4096 px and ``width * height`` <= 8 Mpx
views                       at most 200
a view's box                no side over twice the canvas side (drawing clips it anyway)
painted area                the boxes' areas clipped to the canvas add up to <= 64 Mpx
                            (a rotated or shadowed view also counts twice the canvas: its
                            layers); a shadow's blur <= 100 px, offset <= 1000 px
text                        at most 2,000 characters per text view (substituted data
                            is truncated to fit at render time, never refused)
QR content                  at most 1,024 UTF-8 bytes
data-URI images             at most 2,000,000 characters; PNG, JPEG, WebP or GIF whose
                            header says <= 4 Mpx (checked before any pixel is decoded)
template JSON               at most 4,000,000 bytes
==========================  =========================================================

The time a render takes is then bounded by the painted area, and its memory by a few canvases.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from PIL import Image

from posters.boxes import view_bounds
from posters.errors import PosterBudgetError
from posters.spec import ImageView, QrCodeView, Template, TextView

__all__ = [
    "MAX_CANVAS_PIXELS",
    "MAX_CANVAS_SIDE",
    "MAX_DATA_URI_CHARS",
    "MAX_IMAGE_PIXELS",
    "MAX_PAINT_PIXELS",
    "MAX_QR_BYTES",
    "MAX_TEMPLATE_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_VIEWS",
    "check_budget",
    "check_data_uri",
    "truncate_text",
]

MAX_CANVAS_SIDE = 4096
MAX_CANVAS_PIXELS = 8 * 1024 * 1024
MAX_VIEWS = 200
MAX_BOX_FACTOR = 2
MAX_PAINT_PIXELS = 64 * 1024 * 1024
MAX_TEXT_CHARS = 2000
MAX_QR_BYTES = 1024
MAX_DATA_URI_CHARS = 2_000_000
MAX_IMAGE_PIXELS = 4 * 1024 * 1024
MAX_TEMPLATE_BYTES = 4_000_000
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})


def truncate_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (substituted user data is cut, never refused)."""
    return text if len(text) <= limit else text[:limit]


def _mpx(pixels: int) -> str:
    return f"{pixels / 1_048_576:.1f} Mpx"


def check_data_uri(uri: str, field: str) -> tuple[int, int]:
    """The pixel size of a ``data:image/...;base64`` URI, read from its header only.

    Raises :class:`PosterBudgetError` naming ``field`` when the URI is too long, not base64,
    not an image Pillow reads, or has more than ``MAX_IMAGE_PIXELS`` pixels.
    """
    if len(uri) > MAX_DATA_URI_CHARS:
        raise PosterBudgetError(
            field, f"a data URI of {len(uri):,} characters is over the {MAX_DATA_URI_CHARS:,}"
            " limit; embed a smaller image (a poster needs at most its canvas size)",
        )  # fmt: skip
    head, _, payload = uri.partition(",")
    if not head.endswith(";base64"):
        raise PosterBudgetError(field, "data URIs must be base64 (data:image/png;base64,...)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise PosterBudgetError(field, "the data URI is not valid base64") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only; no pixel is decoded
            fmt, size = img.format, img.size
    except Image.DecompressionBombError:
        fmt, size = "PNG", (MAX_IMAGE_PIXELS + 1, 1)
    except (OSError, ValueError, SyntaxError):
        msg = "the data URI is not a PNG, JPEG, WebP or GIF image"
        raise PosterBudgetError(field, msg) from None
    if fmt not in IMAGE_FORMATS:
        raise PosterBudgetError(field, f"{fmt} images are not supported; use PNG, JPEG or WebP")
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise PosterBudgetError(
            field, f"the image is {size[0]}x{size[1]} px ({_mpx(size[0] * size[1])}); the limit"
            f" is {_mpx(MAX_IMAGE_PIXELS)}: scale it down to the box it fills",
        )  # fmt: skip
    return size


def _clipped_area(bounds: tuple[int, int, int, int], canvas: tuple[int, int]) -> int:
    x0, y0, x1, y1 = bounds
    w = min(x1, canvas[0]) - max(x0, 0)
    h = min(y1, canvas[1]) - max(y0, 0)
    return w * h if w > 0 and h > 0 else 0


def check_budget(template: Template) -> None:
    """Raise :class:`PosterBudgetError` (``field`` a JSON path) if ``template`` is over budget."""
    w, h = template.width, template.height
    for name, side in (("width", w), ("height", h)):
        if side > MAX_CANVAS_SIDE:
            raise PosterBudgetError(f"$.{name}", f"{side} px is over {MAX_CANVAS_SIDE} px")
    if w * h > MAX_CANVAS_PIXELS:
        raise PosterBudgetError(
            "$.width", f"a {w}x{h} canvas is {_mpx(w * h)}; the limit is {_mpx(MAX_CANVAS_PIXELS)}"
        )
    if len(template.views) > MAX_VIEWS:
        raise PosterBudgetError(
            "$.views", f"{len(template.views):,} views; a template has at most {MAX_VIEWS}"
        )
    if template.background.startswith("data:"):
        check_data_uri(template.background, "$.background")
    painted = w * h
    for i, view in enumerate(template.views):
        path = f"$.views[{i}]"
        css = view.css
        for name, size, side in (("width", css.width, w), ("height", css.height, h)):
            if size is not None and size > MAX_BOX_FACTOR * side:
                raise PosterBudgetError(
                    f"{path}.css.{name}", f"{size:g} px is more than {MAX_BOX_FACTOR}x the canvas"
                    f" {name} ({side} px); the most is {MAX_BOX_FACTOR * side} px",
                )  # fmt: skip
        if isinstance(view, TextView) and len(view.text) > MAX_TEXT_CHARS:
            raise PosterBudgetError(
                f"{path}.text", f"{len(view.text):,} characters; the limit is {MAX_TEXT_CHARS:,}"
            )
        if isinstance(view, QrCodeView) and len(view.content.encode()) > MAX_QR_BYTES:
            raise PosterBudgetError(
                f"{path}.content", f"a QR code holds at most {MAX_QR_BYTES} bytes here"
            )
        if isinstance(view, ImageView) and view.url.startswith("data:"):
            check_data_uri(view.url, f"{path}.url")
        painted += _clipped_area(view_bounds(view, (w, h)), (w, h))
        if css.layered:  # drawn on two canvas-sized layers, then turned/shadowed into place
            painted += 2 * w * h
        if painted > MAX_PAINT_PIXELS:
            raise PosterBudgetError(
                f"{path}.css", f"the views up to this one paint {_mpx(painted)} of the canvas;"
                f" the limit is {_mpx(MAX_PAINT_PIXELS)}: use fewer or smaller layers",
            )  # fmt: skip
