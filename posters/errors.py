"""Errors raised by the poster renderer.

Hierarchy::

    PosterError
    ├── PosterTemplateError   a template is malformed; names the JSON path and the fix
    │   └── PosterBudgetError  a template asks for more than the render budget allows
    ├── PosterDataError       the data cannot be drawn (a link too long for a QR code)
    └── FontNotFoundError     no usable CJK font; names the ways to provide one
"""

from __future__ import annotations

__all__ = [
    "FontNotFoundError",
    "PosterBudgetError",
    "PosterDataError",
    "PosterError",
    "PosterTemplateError",
]


class PosterError(Exception):
    """Base class for every error raised by :mod:`posters`."""


class PosterTemplateError(PosterError, ValueError):
    """A template could not be parsed or validated.

    ``field`` is a JSON path such as ``$.views[2].css.fontSize``; ``message`` says what is
    wrong and how to fix it.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class PosterBudgetError(PosterTemplateError):
    """A template over a bound of :mod:`posters.budget` (canvas, views, text, images, area)."""


class PosterDataError(PosterError, ValueError):
    """PosterData that no template can draw, such as a link too long for any QR code."""


class FontNotFoundError(PosterError, RuntimeError):
    """No font with Chinese glyphs could be found."""
