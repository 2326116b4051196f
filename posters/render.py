"""Template + PosterData -> image bytes, with the template's static layer cached.

Every view that needs no PosterData is drawn once per template into a base image (a bounded
LRU keyed by the template), as long as no earlier data-dependent view overlaps it; the rest
are drawn on a copy of the base for each poster. Output is deterministic: same template,
data, format, font file and Pillow version give the same bytes, and :func:`content_hash`
covers all of those.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import msgspec
import PIL
from PIL import Image

from posters.borders import _small_dashes, _small_ring
from posters.boxes import is_dynamic, substitute, view_bounds
from posters.budget import check_budget, truncate_text
from posters.fonts import find_fonts
from posters.glyphs import clean_text
from posters.images import decode_data_uri, default_avatar, rounded_mask
from posters.layers import _gradient, _static_image, draw_backdrop, draw_background, draw_view
from posters.painter import template_to_json
from posters.qr import _modules
from posters.spec import PosterData, Template, TextView, View
from posters.text import _emoji, _line_mask, glyph_metrics, layout_text

__all__ = [
    "RENDER_VERSION",
    "Format",
    "clear_caches",
    "content_hash",
    "encode_image",
    "missing_glyphs",
    "missing_glyphs_header",
    "render_image",
    "render_poster",
]

RENDER_VERSION = "4"  # bump when a change alters pixels for the same inputs
STATIC_CACHE_SIZE = 16  # base images are width*height*3 bytes (3 MB at 750x1334)
STATIC_CACHE_BYTES = 64 << 20  # and at most this many bytes of them
Format = Literal["png", "jpeg", "webp"]
_SAVE_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "jpeg": ("JPEG", {"quality": 90}),
    "png": ("PNG", {"compress_level": 6}),
    "webp": ("WEBP", {"quality": 90, "method": 2}),
}
_msgpack = msgspec.msgpack.Encoder()


@dataclass(frozen=True)
class _Plan:
    base: Image.Image  # RGB; never mutated, copied per poster
    dynamic: tuple[tuple[View, bool], ...]  # (view, backdrop still to draw), in order


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class _PlanCache:
    """Base images by template, bounded in count and in bytes (large canvases are not kept)."""

    def __init__(self) -> None:
        self._plans: OrderedDict[Template, _Plan] = OrderedDict()
        self._bytes = 0

    def __call__(self, template: Template) -> _Plan:
        plan = self._plans.get(template)
        if plan is not None:
            self._plans.move_to_end(template)
            return plan
        plan = _make_plan(template)
        size = template.width * template.height * 3
        if size <= STATIC_CACHE_BYTES // 4:
            self._plans[template] = plan
            self._bytes += size
            while len(self._plans) > STATIC_CACHE_SIZE or self._bytes > STATIC_CACHE_BYTES:
                old, _ = self._plans.popitem(last=False)
                self._bytes -= old.width * old.height * 3
        return plan

    def cache_clear(self) -> None:
        self._plans.clear()
        self._bytes = 0


def _make_plan(template: Template) -> _Plan:
    check_budget(template)  # also for templates built in code or stored before a bound existed
    canvas_size = (template.width, template.height)
    base = Image.new("RGB", canvas_size, (255, 255, 255))
    draw_background(base, template.background)
    deferred: list[tuple[View, bool]] = []
    blockers: list[tuple[int, int, int, int]] = []
    for view in template.views:
        bounds = view_bounds(view, canvas_size)
        covered = any(_overlaps(bounds, b) for b in blockers)
        if is_dynamic(view) or covered:
            # A static view above a deferred one must be deferred too to keep the z-order;
            # an uncovered avatar or QR code still gets its border and background baked in.
            baked = not covered and draw_backdrop(base, view)
            deferred.append((view, not baked))
            blockers.append(bounds)
        else:
            draw_view(base, view, {}, None)
    return _Plan(base, tuple(deferred))


_plan = _PlanCache()


def _values(data: PosterData) -> dict[str, str]:
    # Substituted data is cut to the per-view text bound rather than refused (a nickname is
    # the distributor's, not the template author's); text views cut again after substitution.
    return {
        "nickname": truncate_text(data.nickname),
        "campaign": truncate_text(data.campaign),
        "rank": truncate_text(data.rank),
        "link": data.link,
        "qr": data.link,
    }


def render_image(template: Template, data: PosterData) -> Image.Image:
    """The poster as an RGB image (a new object the caller may modify)."""
    plan = _plan(template)
    canvas = plan.base.copy()
    values = _values(data)
    for view, backdrop in plan.dynamic:
        draw_view(canvas, view, values, data.avatar, backdrop=backdrop, wxacode=data.wxacode)
    return canvas


MAX_MISSING_LISTED = 16


def missing_glyphs(template: Template, data: PosterData) -> tuple[int, ...]:
    """Code points of the poster's texts that no installed font draws (each is drawn as a
    replacement glyph), distinct, in order of first use."""
    values = _values(data)
    missing: dict[int, None] = {}
    for view in template.views:
        if isinstance(view, TextView):
            text = truncate_text(substitute(view.text, values))
            missing.update(dict.fromkeys(clean_text(text)[1]))
    return tuple(missing)


def missing_glyphs_header(missing: tuple[int, ...]) -> str:
    """``Liebian-Poster-Missing-Glyphs``: the count, then at most 16 code points
    (``3; U+F0000 U+F0001 U+E000``); empty when nothing is missing."""
    if not missing:
        return ""
    listed = " ".join(f"U+{cp:04X}" for cp in missing[:MAX_MISSING_LISTED])
    return f"{len(missing)}; {listed}"


def encode_image(image: Image.Image, fmt: Format) -> bytes:
    """Encode with fixed settings (no timestamps or metadata) so bytes are reproducible."""
    try:
        name, options = _SAVE_OPTIONS[fmt]
    except KeyError:
        raise ValueError(f"unknown poster format {fmt!r}; use png, jpeg or webp") from None
    out = io.BytesIO()
    image.save(out, name, **options)
    return out.getvalue()


def render_poster(template: Template, data: PosterData, fmt: Format = "png") -> bytes:
    """Render and encode one poster; the same inputs always give the same bytes."""
    return encode_image(render_image(template, data), fmt)


@lru_cache(maxsize=1)
def _environment_digest() -> bytes:
    """What outside the inputs changes pixels: renderer, Pillow and the font files."""
    fonts = find_fonts()
    parts = [RENDER_VERSION, PIL.__version__]
    for face in fonts.faces():
        stat = Path(face.path).stat()
        parts.append(f"{face.path}#{face.index}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).digest()


@lru_cache(maxsize=32)  # keys hold templates, data URIs and all
def _template_digest(template: Template) -> bytes:
    return hashlib.blake2b(template_to_json(template), digest_size=16).digest()


def content_hash(template: Template, data: PosterData, fmt: str) -> str:
    """Hex digest identifying the poster bytes, for cache keys and ETags."""
    h = hashlib.blake2b(digest_size=20)
    h.update(_environment_digest())
    h.update(_template_digest(template))
    h.update(fmt.encode())
    h.update(_msgpack.encode(data))
    return h.hexdigest()


def clear_caches() -> None:
    """Drop every cached layer, layout, glyph mask and QR matrix (fonts stay loaded)."""
    _plan.cache_clear()
    _template_digest.cache_clear()
    for cached in (_gradient, _static_image, layout_text, _line_mask, _modules, rounded_mask,
                   default_avatar, decode_data_uri, _emoji, glyph_metrics, _small_ring,
                   _small_dashes):  # fmt: skip
        cached.cache_clear()
