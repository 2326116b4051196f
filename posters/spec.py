"""Template data: a canvas and an ordered list of layers (``views``), drawn first to last.

The field names follow Painter (the common mini-program poster JSON) so a Painter palette
decodes with little change; :mod:`posters.painter` normalises its unit strings ("750px",
"50%") into the plain numbers stored here. Lengths are canvas pixels.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from posters.colors import parse_paint, parse_shadow

__all__ = [
    "PLACEHOLDERS",
    "Css",
    "ImageView",
    "PosterData",
    "QrCodeView",
    "RectView",
    "Template",
    "TextView",
    "View",
    "placeholders_in",
]

PLACEHOLDERS = ("nickname", "avatar", "campaign", "rank", "qr", "link", "wxacode")
PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
# {wxacode}: the mini-program code image; without one the link's QR code is drawn instead.
IMAGE_SOURCES = ("{avatar}", "{qr}", "{wxacode}")
_TEXT_PLACEHOLDERS = ("nickname", "campaign", "rank", "link", "qr")

Length = Annotated[float, Meta(ge=-8192, le=8192)]
Size = Annotated[float, Meta(ge=0, le=8192)]
FontSize = Annotated[float, Meta(gt=0, le=512)]
Align = Literal["left", "center", "right"]
VerticalAlign = Literal["top", "center", "bottom"]


def placeholders_in(text: str) -> set[str]:
    """Names of the ``{placeholders}`` used in ``text``."""
    return set(PLACEHOLDER_RE.findall(text))


def _check_placeholders(field: str, text: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(placeholders_in(text) - set(allowed))
    if unknown:
        choices = ", ".join("{" + p + "}" for p in allowed)
        raise ValueError(f"{field}: unknown placeholder {{{unknown[0]}}}; use one of {choices}")


class Css(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True,
          rename="camel"):  # fmt: skip
    """Box and style of one view; camelCase in JSON, as in Painter's ``css``."""

    top: Length = 0.0
    left: Length = 0.0
    width: Size | None = None
    height: Size | None = None
    align: Align = "left"  # which point of the box `left` names (Painter semantics)
    vertical_align: VerticalAlign = "top"  # which point of the box `top` names (pen.js)
    border_radius: Size = 0.0  # >= half the shorter side crops to a circle / pill
    border_width: Size = 0.0
    border_color: str = "#000000"  # pen.js _doBorder: borderColor || "black"
    border_style: Literal["solid", "dashed", "dotted"] = "solid"
    color: str | None = None  # text/QR foreground; fill of a rect when no background
    background: str | None = None  # colour or linear-gradient(...)
    font_size: FontSize = 28.0
    font_weight: Literal["normal", "bold"] = "normal"
    line_height: Size | None = None  # default 1.4 x font size
    max_lines: Annotated[int, Meta(ge=1, le=100)] | None = None
    text_align: Align = "left"
    mode: Literal["aspectFill", "aspectFit", "scaleToFill"] = "aspectFill"
    # Text only (Painter): the background's margin around the text (top, right, bottom,
    # left; the text does not move), underline/overline/line-through, fill or outline glyphs.
    padding: tuple[Size, Size, Size, Size] | None = None
    rotate: Annotated[float, Meta(ge=-3600, le=3600)] = 0.0  # degrees clockwise, any view
    shadow: str | None = None  # "x y blur color", any view (box-, text- or QR-shadow)
    text_decoration: str | None = None
    text_style: Literal["fill", "stroke"] = "fill"
    letter_spacing: Annotated[float, Meta(ge=-100, le=500)] = 0.0  # px between characters
    # CSS font list; the first installed family draws the characters it has (posters.fonts)
    font_family: Annotated[str, Meta(max_length=200)] | None = None

    @property
    def rotated(self) -> bool:
        return self.rotate % 360 != 0

    @property
    def layered(self) -> bool:
        """Drawn through coverage layers (turned or shadowed) rather than straight on."""
        return self.rotated or self.shadow is not None

    @property
    def decorations(self) -> frozenset[str]:
        return frozenset((self.text_decoration or "").split()) - {"none"}

    def __post_init__(self) -> None:
        if self.shadow is not None:
            try:
                parse_shadow(self.shadow)
            except ValueError as exc:
                raise ValueError(f"shadow: {exc}") from None
        unknown = self.decorations - {"underline", "overline", "line-through"}
        if unknown:
            raise ValueError(
                f"textDecoration: unknown {sorted(unknown)[0]!r}; use underline, overline,"
                " line-through (several separated by spaces) or none"
            )
        for name in ("color", "background", "border_color"):
            value = getattr(self, name)
            if value is not None:
                try:
                    parse_paint(value)
                except ValueError as exc:
                    camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
                    raise ValueError(f"{camel}: {exc}") from None


class _View(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True,
            kw_only=True, tag_field="type"):  # fmt: skip
    css: Css = msgspec.field(default_factory=Css)
    id: str | None = None  # Painter's view id; kept for the template author, not drawn

    def _need_box(self, kind: str) -> None:
        if self.css.width is None or self.css.height is None:
            missing = "width" if self.css.width is None else "height"
            raise ValueError(f"css.{missing}: required for {kind} views; give it in px")


class RectView(_View, tag="rect", frozen=True):
    def __post_init__(self) -> None:
        self._need_box("rect")


class TextView(_View, tag="text", frozen=True):
    text: str = ""

    def __post_init__(self) -> None:
        _check_placeholders("text", self.text, _TEXT_PLACEHOLDERS)


class ImageView(_View, tag="image", frozen=True):
    url: str

    def __post_init__(self) -> None:
        self._need_box("image")
        if self.url not in IMAGE_SOURCES and not self.url.startswith("data:image/"):
            raise ValueError(
                "url: must be {avatar}, {qr}, {wxacode} or a data:image/...;base64 URI; "
                "posters are rendered offline, so embed other images as data URIs"
            )


class QrCodeView(_View, tag="qrcode", frozen=True):
    content: str = "{link}"

    def __post_init__(self) -> None:
        if self.css.width is None:
            raise ValueError("css.width: required for qrcode views; give it in px")
        _check_placeholders("content", self.content, _TEXT_PLACEHOLDERS)


View = RectView | TextView | ImageView | QrCodeView


class Template(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A poster template: canvas size in px, a background paint and views drawn in order."""

    width: Annotated[int, Meta(ge=1, le=4096)]
    height: Annotated[int, Meta(ge=1, le=4096)]
    background: str = "#ffffff"  # colour, linear-gradient(...) or a data:image URI
    views: tuple[View, ...] = ()

    def __post_init__(self) -> None:
        if not self.background.startswith("data:image/"):
            try:
                parse_paint(self.background)
            except ValueError as exc:
                raise ValueError(f"background: {exc}") from None


class PosterData(msgspec.Struct, frozen=True, kw_only=True):
    """What varies per distributor. ``avatar``/``wxacode`` are image bytes (None: fallback)."""

    nickname: str
    campaign: str = ""
    rank: str = ""
    link: str
    avatar: bytes | None = None
    wxacode: bytes | None = None  # the mini-program code image (None: the link's QR instead)
