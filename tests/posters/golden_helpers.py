"""Golden images of palettes (tests/posters/palettes/*.json with local stand-in images).

Regenerate the goldens with ``LIEBIAN_POSTER_GOLDEN=update pytest tests/posters``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageStat
from poster_helpers import LINK

from posters import PosterData, Template, parse_template

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("LIEBIAN_POSTER_GOLDEN") == "update"
PNG_TOLERANCE = 2.0  # mean absolute difference per channel, 0..255
JPEG_TOLERANCE = 4.0  # JPEG at quality 90 adds its own error on top
DATA = PosterData(nickname="Alice", campaign="Spring", link=LINK)


def _uri(img: Image.Image) -> str:
    out = io.BytesIO()
    img.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _sky() -> str:
    img = Image.linear_gradient("L").resize((240, 160)).convert("RGB")
    img = Image.merge("RGB", (img.getchannel(0).point(lambda v: 80 + v // 4),
                              img.getchannel(0).point(lambda v: 140 + v // 4),
                              Image.new("L", img.size, 230)))  # fmt: skip
    ImageDraw.Draw(img).ellipse((150, 20, 210, 80), fill=(255, 230, 120))
    return _uri(img)


def _avatar() -> str:
    img = Image.new("RGB", (96, 96), (240, 200, 170))
    draw = ImageDraw.Draw(img)
    draw.ellipse((28, 18, 68, 58), fill=(90, 60, 40))
    draw.rectangle((18, 66, 78, 96), fill=(40, 90, 160))
    return _uri(img)


IMAGES = {"@sky": _sky, "@avatar": _avatar}


def load(name: str) -> Template:
    raw: dict[str, Any] = json.loads((HERE / "palettes" / f"{name}.json").read_text())
    raw = {k: v for k, v in raw.items() if not k.startswith("_")}
    for view in raw["views"]:
        if view.get("url") in IMAGES:
            view["url"] = IMAGES[view["url"]]()
    return parse_template(raw)


def compare(name: str, image: Image.Image, tolerance: float, *, source: bool) -> None:
    """Compare at half size (goldens stay small; anti-aliasing noise averages out)."""
    path = GOLDEN / f"{name}.png"
    image = image.convert("RGB").reduce(2)
    if UPDATE and source:
        GOLDEN.mkdir(exist_ok=True)
        image.save(path, "PNG", optimize=True)
    assert path.exists(), f"no golden {path.name}; run with LIEBIAN_POSTER_GOLDEN=update"
    golden = Image.open(path).convert("RGB")
    assert golden.size == image.size
    diff = sum(ImageStat.Stat(ImageChops.difference(golden, image)).mean) / 3
    assert diff <= tolerance, f"{name}: mean abs diff {diff:.2f} > {tolerance}"


