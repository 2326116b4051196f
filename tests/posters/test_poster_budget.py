"""The render budget (issue 13): each bound is refused naming the field, and drawing a box far
larger than the canvas never allocates more than the canvas."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from PIL import Image
from poster_helpers import LINK

from posters import PosterData, Template, parse_template, render_image
from posters.budget import (
    MAX_CANVAS_PIXELS,
    MAX_TEXT_CHARS,
    MAX_VIEWS,
    check_budget,
)
from posters.errors import PosterBudgetError, PosterTemplateError
from posters.layers import draw_view
from posters.render import clear_caches

DATA = PosterData(nickname="小明", campaign="春季", rank="第 1 名", link=LINK)


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG of ``width`` x ``height`` grey pixels that compresses to a few KB."""
    raw = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * width
    body = b"".join(raw.compress(row) for _ in range(min(height, 64))) + raw.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def budget_field(palette: dict[str, Any]) -> str:
    with pytest.raises(PosterBudgetError) as caught:
        parse_template(palette)
    assert caught.value.message  # says what the bound is
    return caught.value.field


def rect(size: float, radius: float = 0, background: str = "#ff0000",
         at: float = 0) -> dict[str, Any]:  # fmt: skip
    return {"type": "rect", "css": {"width": size, "height": size, "borderRadius": radius,
                                    "background": background, "left": at, "top": at}}  # fmt: skip


def test_canvas_area_is_bounded() -> None:
    assert budget_field({"width": 4096, "height": 4096}) == "$.width"
    assert MAX_CANVAS_PIXELS >= 4096 * 2048
    parse_template({"width": 4096, "height": 2048})


def test_view_count_is_bounded_before_any_view_is_read() -> None:
    views = [{"type": "rect", "css": {"width": 1, "height": 1}}] * 200_000
    assert budget_field({"width": 10, "height": 10, "views": views}) == "$.views"
    parse_template({"width": 10, "height": 10, "views": views[:MAX_VIEWS]})


def test_a_box_far_larger_than_the_canvas_is_refused() -> None:
    palette = {"width": 10, "height": 10, "views": [rect(8192, 4096)]}
    assert budget_field(palette) == "$.views[0].css.width"
    parse_template({"width": 10, "height": 10, "views": [rect(20, 10)]})


def test_text_length_is_bounded() -> None:
    text = {"type": "text", "text": "长" * (MAX_TEXT_CHARS + 1), "css": {"width": 10}}
    assert budget_field({"width": 10, "height": 10, "views": [text]}) == "$.views[0].text"
    megabyte = {**text, "text": "长" * 1_000_000}
    assert budget_field({"width": 10, "height": 10, "views": [megabyte]}) == "$.views[0].text"


def test_qr_content_is_bounded() -> None:
    qr = {"type": "qrcode", "content": "x" * 1025, "css": {"width": 10}}
    assert budget_field({"width": 10, "height": 10, "views": [qr]}) == "$.views[0].content"


def test_painted_area_is_bounded() -> None:
    translucent = [rect(2048, 0, "rgba(255, 0, 0, 0.5)")] * 200
    field = budget_field({"width": 2048, "height": 2048, "views": translucent})
    assert field.startswith("$.views[") and field.endswith("].css")
    parse_template({"width": 2048, "height": 2048, "views": translucent[:10]})


def test_a_data_uri_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = png_bomb(12_000, 12_000)
    assert len(bomb) < 8_000  # a few KB that would inflate to 137 MB of pixels (RGBA: 549 MB)
    image = {"type": "image", "url": data_uri(bomb), "css": {"width": 10, "height": 10}}
    assert budget_field({"width": 10, "height": 10, "views": [image]}) == "$.views[0].url"
    assert budget_field({"width": 10, "height": 10, "background": data_uri(bomb)}) == (
        "$.background"
    )
    too_long = {**image, "url": "data:image/png;base64," + "A" * 2_000_000}
    assert budget_field({"width": 10, "height": 10, "views": [too_long]}) == "$.views[0].url"
    not_an_image = {**image, "url": "data:image/png;base64," + base64.b64encode(b"hi!").decode()}
    assert budget_field({"width": 10, "height": 10, "views": [not_an_image]}) == (
        "$.views[0].url"
    )


def test_template_json_size_is_bounded() -> None:
    with pytest.raises(PosterBudgetError) as caught:
        parse_template(b" " * 4_000_001)
    assert caught.value.field == "$"


def test_budget_errors_are_template_errors() -> None:
    assert issubclass(PosterBudgetError, PosterTemplateError)


def _unchecked(palette: dict[str, Any]) -> Template:
    """A Template built without parse_template (as a template stored before the budget)."""
    return msgspec.convert(palette, Template)


def test_rendering_checks_the_budget_too() -> None:
    clear_caches()
    huge = _unchecked({"width": 10, "height": 10, "views": [rect(8192, 4096)]})
    with pytest.raises(PosterBudgetError) as caught:
        render_image(huge, DATA)
    assert caught.value.field == "$.views[0].css.width"
    bomb = _unchecked({"width": 10, "height": 10, "views": [
        {"type": "image", "url": data_uri(png_bomb(12_000, 12_000)),
         "css": {"width": 10, "height": 10}}]})  # fmt: skip
    with pytest.raises(PosterBudgetError):
        render_image(bomb, DATA)


def test_substituted_data_is_truncated_not_refused() -> None:
    template = parse_template({"width": 300, "height": 60, "views": [
        {"type": "text", "text": "{nickname}{nickname}", "css": {"width": 300, "fontSize": 1}}]})
    image = render_image(template, msgspec.structs.replace(DATA, nickname="长" * 1_000_000))
    assert image.size == (300, 60)


@pytest.fixture
def allocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pixel counts of every image Pillow is asked to create, resize or transform."""
    sizes: list[int] = []

    def track(result: Image.Image) -> Image.Image:
        sizes.append(result.width * result.height)
        return result

    new, resize, transform = Image.new, Image.Image.resize, Image.Image.transform
    monkeypatch.setattr(Image, "new", lambda *a, **k: track(new(*a, **k)))
    monkeypatch.setattr(Image.Image, "resize", lambda self, *a, **k: track(resize(self, *a, **k)))
    monkeypatch.setattr(Image.Image, "transform",
                        lambda self, *a, **k: track(transform(self, *a, **k)))  # fmt: skip
    yield sizes


@pytest.mark.parametrize(
    "view",
    [
        rect(8192, 4096, at=-4000),
        rect(8192, 4096, "rgba(0, 0, 255, 0.5)", at=-4000),
        rect(8192, 4096, "linear-gradient(30deg, #ff0000, #0000ff)", at=-4000),
        rect(8192, 4096, "linear-gradient(90deg, #ff0000, #0000ff)", at=-4000),
        {"type": "rect", "css": {"left": -4000, "top": -4000, "width": 8192, "height": 8192,
                                 "borderRadius": 4096, "borderWidth": 300,
                                 "borderColor": "rgba(0, 0, 0, 0.5)", "background": "#00ff00"}},
        {"type": "qrcode", "content": "{link}", "css": {"width": 8192, "borderRadius": 4096,
                                                        "left": -300, "top": -300}},
        {"type": "image", "url": "{avatar}", "css": {"width": 8192, "height": 8192,
                                                     "borderRadius": 4096, "left": -4000,
                                                     "top": -4000}},
        {"type": "image", "url": "{qr}", "css": {"width": 8192, "height": 8192, "left": -300,
                                                 "top": -300}},
        {"type": "image", "url": data_uri(png_bomb(64, 64)),
         "css": {"width": 8192, "height": 8192, "borderRadius": 4096, "mode": "aspectFit",
                 "left": -4000, "top": -4000}},
        {"type": "text", "text": "{nickname}", "css": {"width": 8192, "height": 8192,
                                                      "background": "#eeeeee", "left": -4000,
                                                      "top": -4000, "borderRadius": 4096}},
    ],
)  # fmt: skip
def test_a_huge_box_on_a_tiny_canvas_allocates_only_the_canvas(
    view: dict[str, Any], allocations: list[int]
) -> None:
    clear_caches()
    template = _unchecked({"width": 10, "height": 10, "views": [view]})
    with pytest.raises(PosterBudgetError):
        check_budget(template)  # refused when checked; drawing it anyway stays bounded:
    canvas = Image.new("RGB", (10, 10), (255, 255, 255))
    allocations.clear()
    draw_view(canvas, template.views[0], {"nickname": "小明", "link": LINK}, None)
    # The 4x supersampled corner of the visible 10x10 and a QR module matrix are the largest.
    assert max(allocations, default=0) <= 177 * 177, allocations
    assert canvas.getpixel((5, 5)) != (255, 255, 255)  # the visible part is drawn


def test_the_visible_part_of_a_huge_corner_matches_the_whole_mask() -> None:
    from PIL import ImageChops

    from posters.images import rounded_mask, rounded_mask_region

    for region in ((0, 0, 40, 40), (1150, 30, 1200, 90), (580, 1170, 640, 1200)):
        whole = rounded_mask(1200, 1200, 600)
        part = rounded_mask_region(1200, 1200, 600, region)
        assert whole is not None and part is not None
        diff = ImageChops.difference(whole.crop(region), part).getextrema()
        assert diff[1] <= 2, (region, diff)


def test_the_png_bomb_helper_makes_a_png_that_large() -> None:
    with Image.open(io.BytesIO(png_bomb(300, 200))) as img:
        assert img.size == (300, 200) and img.format == "PNG"
    assert struct.unpack(">II", png_bomb(12_000, 12_000)[16:24]) == (12_000, 12_000)
