"""Painter-style JSON <-> :class:`~posters.spec.Template`.

Painter palettes write lengths as strings ("750px", "48rpx", "50%"); here they become plain
numbers. ``rpx`` is taken 1:1 as canvas pixels (a 750rpx-wide palette is a 750px canvas).
Percentages are of the canvas width (left, right, width) or height (top, bottom, height), and
of the box's shorter side for ``borderRadius``. ``right`` becomes ``left`` = canvas width -
right with ``align`` defaulting to "right" (as Painter's pen does, so a text anchored by
``right`` needs no width); ``bottom`` becomes ``top`` = canvas height - bottom - height
(pen.js), or without a height (a measured text) canvas height - bottom with
``verticalAlign`` "bottom", which places the box the same way once its height is known.

Positions and sizes may be ``calc(...)`` (Painter's relative layout, ``painter.js`` toPx):
``+ - * /`` and parentheses over lengths and ``id.left|top|right|bottom|width|height`` of an
earlier view with that ``id``; or Painter's array form ``[length, id, factor]`` for left,
top and right (length + factor x that view's width, or height for top).
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args, get_origin

import msgspec

from posters.boxes import is_dynamic
from posters.budget import MAX_TEMPLATE_BYTES, MAX_VIEWS, check_budget, check_data_uri
from posters.errors import PosterBudgetError, PosterTemplateError
from posters.layers import text_layout
from posters.spec import Css, Template, TextView, View

__all__ = ["parse_template", "template_to_json"]

_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?|-?\.\d+)\s*(px|rpx|%)?\s*$")
_X_KEYS = ("left", "right", "width")
_Y_KEYS = ("top", "bottom", "height")
_LENGTH_KEYS = (*_X_KEYS, *_Y_KEYS, "borderRadius", "borderWidth", "fontSize", "lineHeight",
                "letterSpacing")  # fmt: skip
_CALC = re.compile(r"^\s*calc\((?P<expr>.+)\)\s*$", re.DOTALL)
_REF = re.compile(r"([^\s()+\-*/]+)\.(left|right|bottom|top|width|height)\b")
_CALC_LENGTH = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(rpx|px|%)")
_CALC_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?|\.\d+)|([-+*/()]))")
MAX_CALC_CHARS = 200
_EDITOR_FLAGS = ("scalable", "deletable", "minWidth")
Rects = dict[str, dict[str, float]]
_CSS_FIELDS = ", ".join(sorted({*Css.__struct_encode_fields__, "right", "bottom"}))
_CHOICES = {
    field.encode_name: ", ".join(get_args(field.type))
    for field in msgspec.structs.fields(Css) if get_origin(field.type) is Literal
}  # fmt: skip
_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _length(value: object, path: str, basis: float | None,
            rects: Rects | None = None) -> float | str:  # fmt: skip
    """A number of px; a percentage without basis stays a string for later resolution."""
    if isinstance(value, list) and rects is not None:
        return _relative(value, path, basis, rects)
    if isinstance(value, str) and _CALC.match(value):
        return _calc(value, path, basis, rects or {})
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PosterTemplateError(path, f'expected a length like 24 or "24px", got {value!r}')
    if not isinstance(value, str):
        return float(value)
    match = _LENGTH.match(value)
    if not match:
        raise PosterTemplateError(path, f'{value!r} is not a length; write 24, "24px" or "50%"')
    number, unit = float(match.group(1)), match.group(2)
    if unit != "%":
        return number
    if basis is None:
        return value.strip()
    return number / 100.0 * basis


def _ref(rects: Rects, name: str, attr: str, path: str) -> float:
    rect = rects.get(name)
    if rect is None:
        known = ", ".join(sorted(rects)) or "none yet"
        raise PosterTemplateError(path, f"no earlier view with id {name!r} (ids: {known})")
    value = rect.get(attr)
    if value is None:
        raise PosterTemplateError(
            path, f"the {attr} of view {name!r} is known only at render (a text showing data "
            "such as {nickname}); give that view css.width and css.height",
        )  # fmt: skip
    return value


def _relative(value: list[Any], path: str, basis: float | None, rects: Rects) -> float:
    """Painter's ``[length, id, factor]``: length + factor x the view's width (left, right)
    or height (top) (pen.js _preProcess)."""
    if not 2 <= len(value) <= 3 or not isinstance(value[1], str):
        raise PosterTemplateError(path, 'write [length, "id"] or [length, "id", factor]')
    factor = value[2] if len(value) == 3 else 1
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise PosterTemplateError(path, "the factor must be a number")
    attr = "height" if path.endswith(".top") else "width"
    base = _length(value[0], path, basis)
    if isinstance(base, str):
        raise PosterTemplateError(path, "a percentage here needs the canvas size")
    return base + _ref(rects, value[1], attr, path) * float(factor)


def _calc(value: str, path: str, basis: float | None, rects: Rects) -> float:
    """``calc(expr)``: ids' edges and lengths become px, then + - * / and parentheses."""
    if len(value) > MAX_CALC_CHARS:
        raise PosterTemplateError(path, f"calc() is at most {MAX_CALC_CHARS} characters")
    match = _CALC.match(value)
    expr = match.group("expr") if match else value
    expr = _REF.sub(lambda m: repr(_ref(rects, m.group(1), m.group(2), path)), expr)

    def px(m: re.Match[str]) -> str:
        number, unit = float(m.group(1)), m.group(2)
        if unit == "%":
            if basis is None:
                raise PosterTemplateError(path, "a percentage here is not supported in calc()")
            number = number / 100.0 * basis
        return repr(number)

    expr = _CALC_LENGTH.sub(px, expr)
    try:
        return _Arithmetic(expr).parse()
    except (ValueError, ZeroDivisionError) as exc:
        raise PosterTemplateError(path, f"calc(): {exc}; write e.g. calc(100% - 20px)") from None


class _Arithmetic:
    """+ - * / and parentheses over numbers (recursive descent; depth bounded)."""

    def __init__(self, expr: str) -> None:
        self.tokens: list[str | float] = []
        pos = 0
        for m in _CALC_TOKEN.finditer(expr):
            if m.start() != pos:
                break
            self.tokens.append(float(m.group(1)) if m.group(1) else m.group(2))
            pos = m.end()
        if expr[pos:].strip():
            raise ValueError(f"cannot read {expr[pos:].strip()[:20]!r}")
        self.i = 0
        self.depth = 0

    def parse(self) -> float:
        value = self._sum()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.i]!r}")
        return value

    def _peek(self) -> str | float | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _sum(self) -> float:
        value = self._product()
        while self._peek() in ("+", "-"):
            op = self.tokens[self.i]
            self.i += 1
            value = value + self._product() if op == "+" else value - self._product()
        return value

    def _product(self) -> float:
        value = self._unary()
        while self._peek() in ("*", "/"):
            op = self.tokens[self.i]
            self.i += 1
            value = value * self._unary() if op == "*" else value / self._unary()
        return value

    def _unary(self) -> float:
        tok = self._peek()
        if tok in ("-", "+"):
            self.i += 1
            return -self._unary() if tok == "-" else self._unary()
        if tok == "(":
            self.depth += 1
            if self.depth > 16:
                raise ValueError("parentheses nested too deep")
            self.i += 1
            value = self._sum()
            if self._peek() != ")":
                raise ValueError("a parenthesis is not closed")
            self.i += 1
            self.depth -= 1
            return value
        if isinstance(tok, float):
            self.i += 1
            return tok
        raise ValueError("a number or length is missing" if tok is None
                         else f"unexpected {tok!r}")  # fmt: skip


def _normalise_css(raw: object, path: str, canvas: tuple[float, float],
                   rects: Rects | None = None) -> dict[str, Any]:  # fmt: skip
    if isinstance(raw, list):  # Painter allows a list of css objects, merged in order
        merged: dict[str, Any] = {}
        for i, part in enumerate(raw):
            merged.update(_normalise_css(part, f"{path}[{i}]", canvas, rects))
        return merged
    if not isinstance(raw, dict):
        raise PosterTemplateError(path, "css must be an object of style properties")
    css = dict(raw)
    for flag in _EDITOR_FLAGS:  # Painter's editor (drag, scale, delete): nothing to draw
        css.pop(flag, None)
    for key in _LENGTH_KEYS:
        if key in ("width", "height") and css.get(key) == "auto":
            continue  # an image's natural size (resolved in _image_size); refused elsewhere
        if key in css:
            basis = canvas[0] if key in _X_KEYS else canvas[1] if key in _Y_KEYS else None
            css[key] = _length(css[key], f"{path}.{key}", basis, rects)
    if isinstance(css.get("letterSpacing"), str):
        raise PosterTemplateError(f"{path}.letterSpacing", "use px or rpx, not a percentage")
    if isinstance(css.get("fontSize"), str):
        raise PosterTemplateError(f"{path}.fontSize", "use px, not a percentage")
    if isinstance(css.get("lineHeight"), str):
        raise PosterTemplateError(f"{path}.lineHeight", "use px, not a percentage")
    if "padding" in css:
        css["padding"] = _padding(css["padding"], f"{path}.padding")
    if isinstance(css.get("rotate"), str):  # pen.js: Number(rotate) degrees
        try:
            css["rotate"] = float(css["rotate"])
        except ValueError:
            raise PosterTemplateError(f"{path}.rotate", "degrees as a number, like 45") from None
    if "maxLines" in css and isinstance(css["maxLines"], str) and css["maxLines"].isdigit():
        css["maxLines"] = int(css["maxLines"])
    weight = css.get("fontWeight")
    if isinstance(weight, int | str) and str(weight).isdigit():
        css["fontWeight"] = "bold" if int(weight) >= 600 else "normal"
    return css


def _padding(value: object, path: str) -> list[float]:
    """CSS shorthand (1 to 4 lengths) -> [top, right, bottom, left] (pen.js _doPaddings)."""
    parts = value.split() if isinstance(value, str) else value
    if not isinstance(parts, list | tuple) or not 1 <= len(parts) <= 4:
        raise PosterTemplateError(path, 'write 1 to 4 lengths, like "10px" or "8px 16px"')
    px: list[float] = []
    for part in parts:
        length = _length(part, path, None)
        if isinstance(length, str) or length < 0:
            raise PosterTemplateError(path, f"{part!r}: use px or rpx >= 0, not a percentage")
        px.append(length)
    if len(px) == 1:
        return px * 4
    if len(px) == 2:
        return [px[0], px[1], px[0], px[1]]
    if len(px) == 3:
        return [px[0], px[1], px[2], px[1]]
    return px


def _place(css: dict[str, Any], path: str, canvas: tuple[float, float]) -> None:
    # Painter's pen: x = canvas width - right, and `align` defaults to "right" when `right`
    # is given, so the box ends `right` px from the edge whatever its (measured) width.
    if "right" in css:
        css["left"] = canvas[0] - css.pop("right")
        css.setdefault("align", "right")
    # y = canvas height - height - bottom (pen.js _preProcess): the box's bottom edge is
    # `bottom` px above the canvas's, whatever its (measured) height.
    if "bottom" in css:
        if isinstance(css.get("height"), float):
            css["top"] = canvas[1] - css.pop("bottom") - css["height"]
        elif "verticalAlign" not in css:  # a text's height is measured at render
            css["top"] = canvas[1] - css.pop("bottom")
            css["verticalAlign"] = "bottom"
        else:
            raise PosterTemplateError(f"{path}.bottom", "with verticalAlign needs css.height")
    radius = css.get("borderRadius")
    if isinstance(radius, str):
        sides = [v for v in (css.get("width"), css.get("height")) if isinstance(v, float)]
        if not sides:
            raise PosterTemplateError(f"{path}.borderRadius", "a percentage needs width/height")
        css["borderRadius"] = float(radius.rstrip("%")) / 100.0 * min(sides)


def _image_size(view: dict[str, Any], path: str) -> dict[str, Any]:
    """Painter's image sizes: a missing or "auto" side keeps the image's aspect ratio, and
    both missing is the natural size (pen.js _preProcess, case 'image').

    The natural size is read from the data URI's header only (``check_data_uri`` bounds it
    before any pixel is decoded). Painter divides it by the device pixel ratio; a poster
    has no device, so here one image pixel is one canvas pixel.
    """
    css = dict(view.get("css") or {})
    width, height = css.get("width", "auto"), css.get("height", "auto")
    if width != "auto" and height != "auto":
        return css
    url = view.get("url")
    if not isinstance(url, str) or not url.startswith("data:image/"):
        if url not in ("{avatar}", "{qr}"):
            return css  # the url check names the problem
        side = "width" if width == "auto" else "height"
        raise PosterTemplateError(
            f"{path}.{side}", "required for {avatar} and {qr} images (their size is not"
            " known until render); give it in px",
        )  # fmt: skip
    iw, ih = check_data_uri(url, path.removesuffix(".css") + ".url")
    if width == "auto" and height == "auto":
        width, height = float(iw), float(ih)
    elif width == "auto":
        width = iw / ih * height  # width = (sWidth / sHeight) * height
    else:
        height = ih / iw * width  # height = (sHeight / sWidth) * width
    css["width"], css["height"] = width, height
    return css


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    doc = dict(raw)
    for key in ("width", "height"):
        if key in doc:
            value = _length(doc[key], f"$.{key}", None)
            if isinstance(value, str):
                raise PosterTemplateError(f"$.{key}", "the canvas size must be in px")
            if value != int(value):
                raise PosterTemplateError(f"$.{key}", "the canvas size must be whole pixels")
            doc[key] = int(value)
    canvas = (float(doc.get("width", 0)), float(doc.get("height", 0)))
    views = doc.get("views", [])
    if not isinstance(views, list):
        raise PosterTemplateError("$.views", "views must be a list of view objects")
    if len(views) > MAX_VIEWS:
        raise PosterBudgetError(
            "$.views", f"{len(views):,} views; a template has at most {MAX_VIEWS}"
        )
    out = []
    rects: Rects = {}
    for i, view in enumerate(views):
        path = f"$.views[{i}]"
        if not isinstance(view, dict):
            raise PosterTemplateError(path, "each view must be an object with a type")
        view = dict(view)
        if "css" in view:
            view["css"] = _normalise_css(view["css"], f"{path}.css", canvas, rects)
        if view.get("type") == "image":
            view["css"] = _image_size(view, f"{path}.css")
        for key in ("width", "height"):
            if view.get("css", {}).get(key) == "auto":
                raise PosterTemplateError(f"{path}.css.{key}", '"auto" is for images only')
        if "css" in view:
            _place(view["css"], f"{path}.css", canvas)
        if view.get("type") == "text" and isinstance(view.get("text"), int | float):
            view["text"] = str(view["text"])
        if isinstance(view.get("id"), str):
            rects[view["id"]] = _rect(view, canvas)
        out.append(view)
    doc["views"] = out
    return doc


def _measured(view: dict[str, Any], canvas: tuple[float, float]) -> tuple[float, float] | None:
    """A text's laid-out width and height (pen.js measures it as it draws); None when the
    text shows data ({nickname} ...) or is not a valid text view (its error comes later)."""
    try:
        text = msgspec.convert(view, View, strict=True)
    except msgspec.ValidationError:
        return None
    if not isinstance(text, TextView) or is_dynamic(text):
        return None
    laid = text_layout(text, {}, (int(canvas[0]), int(canvas[1])))
    if laid is None:
        return 0.0, 0.0
    return float(laid[1][2]), float(laid[1][3])


def _rect(view: dict[str, Any], canvas: tuple[float, float]) -> dict[str, float]:
    """pen.js ``penCache.viewRect``: the box's edges (grown by a text's padding) and its
    width and height; a text's measured now unless it shows data ({nickname} ...)."""
    css = view.get("css") or {}
    width, height = css.get("width"), css.get("height")
    if view.get("type") == "qrcode" and isinstance(width, float):
        side = min(width, height) if isinstance(height, float) else width
        width, height = side, side
    if view.get("type") == "text" and not (isinstance(width, float)
                                           and isinstance(height, float)):  # fmt: skip
        size = _measured(view, canvas)
        if size is not None:
            width, height = size
    if not isinstance(width, float) or not isinstance(height, float):
        return {}
    left, top = css.get("left", 0.0), css.get("top", 0.0)
    if not isinstance(left, float | int) or not isinstance(top, float | int):
        return {}
    align, valign = css.get("align", "left"), css.get("verticalAlign", "top")
    x = left - (width / 2 if align == "center" else width if align == "right" else 0.0)
    y = top - (height / 2 if valign == "center" else height if valign == "bottom" else 0.0)
    pt, pr, pb, pl = css.get("padding") or (0.0, 0.0, 0.0, 0.0)
    return {"left": x - pl, "top": y - pt, "right": x + width + pr, "bottom": y + height + pb,
            "width": width, "height": height}  # fmt: skip


def _explain(exc: msgspec.ValidationError) -> PosterTemplateError:
    match = _MSG.match(str(exc))
    msg, path = (match.group("msg"), match.group("path") or "$") if match else (str(exc), "$")
    sub = re.match(r"^(css\.\w+|\w+): (.*)$", msg, re.DOTALL)
    if sub:  # a __post_init__ check names its own field
        return PosterTemplateError(f"{path}.{sub.group(1)}", sub.group(2))
    unknown = re.match(r"^Object contains unknown field `(\w+)`$", msg)
    if unknown:
        hint = f"supported: {_CSS_FIELDS}" if path.endswith(".css") else "remove it"
        return PosterTemplateError(f"{path}.{unknown.group(1)}", f"unknown field; {hint}")
    missing = re.match(r"^Object missing required field `(\w+)`$", msg)
    if missing:
        return PosterTemplateError(f"{path}.{missing.group(1)}", "required field is missing")
    if path.endswith(".type"):
        msg += "; use one of rect, text, image, qrcode"
    elif msg.startswith("Invalid enum value") and path.rsplit(".", 1)[-1] in _CHOICES:
        msg += f"; use one of {_CHOICES[path.rsplit('.', 1)[-1]]}"
    return PosterTemplateError(path, msg)


def parse_template(raw: bytes | str | dict[str, Any]) -> Template:
    """Decode a Painter-style palette (JSON text or an already-decoded dict) into a Template.

    Raises :class:`PosterTemplateError` whose ``field`` is the JSON path of the problem, or
    its subclass :class:`PosterBudgetError` when the template is over the render budget
    (:mod:`posters.budget`).
    """
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_TEMPLATE_BYTES:
            raise PosterBudgetError(
                "$", f"{len(raw):,} bytes of JSON; a template is at most {MAX_TEMPLATE_BYTES:,}"
            )
        try:
            raw = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise PosterTemplateError("$", f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise PosterTemplateError("$", "a template is a JSON object with width, height, views")
    try:
        template = msgspec.convert(_normalise(raw), Template, strict=True)
    except msgspec.ValidationError as exc:
        raise _explain(exc) from None
    check_budget(template)
    return template


def template_to_json(template: Template) -> bytes:
    """Canonical JSON for ``template``; ``parse_template`` of it gives an equal Template."""
    return _encoder.encode(template)
