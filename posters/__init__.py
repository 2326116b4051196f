"""Share posters (个人海报): a Painter-style template plus per-distributor data -> image bytes.

Pure: Pillow and qrcode only, no network, no web framework or database imports.

    >>> from posters import PosterData, default_template, render_poster
    >>> png = render_poster(default_template(), PosterData(nickname="小明", link="https://x.cn/s/1"))
"""

from posters.budget import check_budget
from posters.default import default_template
from posters.errors import (
    FontNotFoundError,
    PosterBudgetError,
    PosterDataError,
    PosterError,
    PosterTemplateError,
)
from posters.fonts import find_fonts
from posters.painter import parse_template, template_to_json
from posters.render import (
    Format,
    content_hash,
    missing_glyphs,
    missing_glyphs_header,
    render_image,
    render_poster,
)
from posters.spec import (
    Css,
    ImageView,
    PosterData,
    QrCodeView,
    RectView,
    Template,
    TextView,
    View,
)

__all__ = [
    "Css",
    "FontNotFoundError",
    "Format",
    "ImageView",
    "PosterBudgetError",
    "PosterData",
    "PosterDataError",
    "PosterError",
    "PosterTemplateError",
    "QrCodeView",
    "RectView",
    "Template",
    "TextView",
    "View",
    "check_budget",
    "content_hash",
    "default_template",
    "find_fonts",
    "missing_glyphs",
    "missing_glyphs_header",
    "parse_template",
    "render_image",
    "render_poster",
    "template_to_json",
]
