"""Painter-style JSON <-> :class:`~posters.spec.Template`.

Painter palettes write lengths as strings ("750px", "48rpx", "50%"); here they become plain
numbers. ``rpx`` is taken 1:1 as canvas pixels (a 750rpx-wide palette is a 750px canvas).
Percentages are of the canvas width (left, right, width) or height (top, bottom, height), and
of the box's shorter side for ``borderRadius``. ``right``/``bottom`` become ``left``/``top``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from posters.budget import MAX_TEMPLATE_BYTES, MAX_VIEWS, check_budget
from posters.errors import PosterBudgetError, PosterTemplateError
from posters.spec import Css, Template

__all__ = ["parse_template", "template_to_json"]

_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?|-?\.\d+)\s*(px|rpx|%)?\s*$")
_X_KEYS = ("left", "right", "width")
_Y_KEYS = ("top", "bottom", "height")
_LENGTH_KEYS = (*_X_KEYS, *_Y_KEYS, "borderRadius", "borderWidth", "fontSize", "lineHeight")
_CSS_FIELDS = ", ".join(sorted({*Css.__struct_encode_fields__, "right", "bottom"}))
_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _length(value: object, path: str, basis: float | None) -> float | str:
    """A number of px; a percentage without basis stays a string for later resolution."""
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


def _normalise_css(raw: object, path: str, canvas: tuple[float, float]) -> dict[str, Any]:
    if isinstance(raw, list):  # Painter allows a list of css objects, merged in order
        merged: dict[str, Any] = {}
        for i, part in enumerate(raw):
            merged.update(_normalise_css(part, f"{path}[{i}]", canvas))
        return merged
    if not isinstance(raw, dict):
        raise PosterTemplateError(path, "css must be an object of style properties")
    css = dict(raw)
    for key in _LENGTH_KEYS:
        if key in css:
            basis = canvas[0] if key in _X_KEYS else canvas[1] if key in _Y_KEYS else None
            css[key] = _length(css[key], f"{path}.{key}", basis)
    if isinstance(css.get("fontSize"), str):
        raise PosterTemplateError(f"{path}.fontSize", "use px, not a percentage")
    if isinstance(css.get("lineHeight"), str):
        raise PosterTemplateError(f"{path}.lineHeight", "use px, not a percentage")
    if "maxLines" in css and isinstance(css["maxLines"], str) and css["maxLines"].isdigit():
        css["maxLines"] = int(css["maxLines"])
    weight = css.get("fontWeight")
    if isinstance(weight, int | str) and str(weight).isdigit():
        css["fontWeight"] = "bold" if int(weight) >= 600 else "normal"
    return css


def _place(css: dict[str, Any], path: str, canvas: tuple[float, float]) -> None:
    edges = (("right", "left", "width", 0), ("bottom", "top", "height", 1))
    for edge, start, size, extent in edges:
        if edge not in css:
            continue
        if not isinstance(css.get(size), float):
            raise PosterTemplateError(f"{path}.{edge}", f"needs css.{size}; or use {start}")
        css[start] = canvas[extent] - css.pop(edge) - css[size]
    radius = css.get("borderRadius")
    if isinstance(radius, str):
        sides = [v for v in (css.get("width"), css.get("height")) if isinstance(v, float)]
        if not sides:
            raise PosterTemplateError(f"{path}.borderRadius", "a percentage needs width/height")
        css["borderRadius"] = float(radius.rstrip("%")) / 100.0 * min(sides)


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
    for i, view in enumerate(views):
        path = f"$.views[{i}]"
        if not isinstance(view, dict):
            raise PosterTemplateError(path, "each view must be an object with a type")
        view = dict(view)
        if "css" in view:
            view["css"] = _normalise_css(view["css"], f"{path}.css", canvas)
            _place(view["css"], f"{path}.css", canvas)
        if view.get("type") == "text" and isinstance(view.get("text"), int | float):
            view["text"] = str(view["text"])
        out.append(view)
    doc["views"] = out
    return doc


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
