"""Rendering: the QR code scans back to the link, output is reproducible, layers compose."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from poster_helpers import LINK, decode_qr, solid_image
from test_poster_template import PAINTER_SAMPLE

from posters import (
    PosterData,
    PosterDataError,
    Template,
    content_hash,
    default_template,
    parse_template,
    render_image,
    render_poster,
)
from posters.layers import draw_background, draw_view
from posters.render import _values

ROOT = Path(__file__).resolve().parents[2]
DATA = PosterData(nickname="小明同学", campaign="双十一好物节", rank="TOP 3", link=LINK)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"),
                                                 ("webp", "WEBP")])  # fmt: skip
def test_qr_in_default_poster_decodes_to_the_link(fmt: str, pil_format: str) -> None:
    poster = render_poster(default_template(), DATA, fmt)  # type: ignore[arg-type]
    image = _open(poster)
    assert image.format == pil_format and image.size == (750, 1334)
    assert decode_qr(image) == [LINK]


@settings(max_examples=25, deadline=None)
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300))
def test_any_ascii_link_round_trips_through_the_qr_code(link: str) -> None:
    image = render_image(default_template(), PosterData(nickname="a", link=link))
    assert decode_qr(image) == [link]


def test_painter_sample_renders_with_its_qr_code() -> None:
    template = parse_template(PAINTER_SAMPLE)
    image = render_image(template, DATA)
    assert image.size == (654, 1000)
    assert decode_qr(image) == [LINK]


def test_default_template_renders(tmp_path: Path) -> None:
    poster = render_poster(default_template(), DATA, "png")
    (tmp_path / "poster_default.png").write_bytes(poster)  # handy with pytest --basetemp
    image = _open(poster).convert("RGB")
    # Brand gradient at the top, a white card in the middle.
    assert image.getpixel((20, 20)) != image.getpixel((20, 1320))
    assert image.getpixel((60, 700)) == (255, 255, 255)


def test_same_inputs_same_bytes_in_process_and_across_processes() -> None:
    avatar = solid_image((200, 200), (30, 120, 200))
    data = PosterData(nickname="小明😀", campaign="活动", link=LINK, avatar=avatar)
    here = {fmt: render_poster(default_template(), data, fmt) for fmt in ("png", "jpeg", "webp")}
    for fmt, blob in here.items():
        assert render_poster(default_template(), data, fmt) == blob  # type: ignore[arg-type]
    script = (
        "import hashlib, sys; from posters import *; from posters.spec import PosterData\n"
        f"d = PosterData(nickname='小明😀', campaign='活动', link={LINK!r}, "
        f"avatar=bytes.fromhex({avatar.hex()!r}))\n"
        "for f in ('png', 'jpeg', 'webp'):\n"
        "    print(hashlib.sha256(render_poster(default_template(), d, f)).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [hashlib.sha256(here[f]).hexdigest() for f in ("png", "jpeg", "webp")]


def test_content_hash_tracks_every_input() -> None:
    t = default_template()
    base = content_hash(t, DATA, "jpeg")
    copy = PosterData(**{f: getattr(DATA, f) for f in DATA.__struct_fields__})
    assert base == content_hash(t, copy, "jpeg")
    others = {
        content_hash(t, DATA, "png"),
        content_hash(t, PosterData(nickname="小明", campaign="双十一好物节", rank="TOP 3",
                                   link=LINK), "jpeg"),
        content_hash(t, PosterData(nickname="小明同学", campaign="双十一好物节", rank="TOP 3",
                                   link=LINK, avatar=b"x"), "jpeg"),
        content_hash(parse_template(PAINTER_SAMPLE), DATA, "jpeg"),
    }  # fmt: skip
    assert base not in others and len(others) == 4
    assert len(base) == 40 and int(base, 16) >= 0


def _naive_render(template: Template, data: PosterData) -> Image.Image:
    """Every view in template order on a fresh canvas: what the static-layer cache must match."""
    canvas = Image.new("RGB", (template.width, template.height), (255, 255, 255))
    draw_background(canvas, template.background)
    for view in template.views:
        draw_view(canvas, view, _values(data), data.avatar)
    return canvas


LAYERED = {
    "width": 400, "height": 300, "background": "linear-gradient(30deg, #102030, #a0b0c0)",
    "views": [
        {"type": "rect", "css": {"top": 0, "left": 0, "width": 400, "height": 40,
                                 "background": "rgba(255,255,255,0.5)"}},
        {"type": "image", "url": "{avatar}", "css": {"top": 50, "left": 20, "width": 100,
         "height": 100, "borderRadius": 50, "borderWidth": 4, "borderColor": "#fff"}},
        # A static frame drawn over the avatar: must stay above it.
        {"type": "rect", "css": {"top": 90, "left": 10, "width": 120, "height": 20,
                                 "background": "#ff0000"}},
        {"type": "text", "text": "{nickname}", "css": {"top": 60, "left": 140, "width": 240,
         "fontSize": 30, "fontWeight": "bold", "color": "rgba(255,255,255,0.9)"}},
        {"type": "text", "text": "static caption", "css": {"top": 200, "left": 200,
         "align": "center", "fontSize": 20, "background": "#000", "color": "#fff"}},
        {"type": "qrcode", "content": "{link}", "css": {"top": 150, "left": 260,
         "width": 130, "borderRadius": 12, "borderWidth": 3, "borderColor": "#333"}},
        {"type": "image", "url": "{qr}", "css": {"top": 160, "left": 130, "width": 120,
                                                 "height": 120}},
    ],
}  # fmt: skip


@pytest.mark.parametrize("avatar", [None, solid_image((640, 480), (0, 200, 0)), b"not an image"])
def test_static_layer_cache_matches_drawing_everything_in_order(avatar: bytes | None) -> None:
    template = parse_template(LAYERED)
    data = PosterData(nickname="层叠测试", link=LINK, avatar=avatar)
    assert render_image(template, data).tobytes() == _naive_render(template, data).tobytes()
    image = render_image(template, data)
    assert image.getpixel((70, 100)) == (255, 0, 0)  # static frame stays above the avatar
    assert decode_qr(image.crop((250, 140, 400, 290))) == [LINK]
    assert decode_qr(image.crop((120, 150, 260, 290))) == [LINK]


def test_avatar_is_cropped_to_a_circle() -> None:
    template = parse_template(
        {
            "width": 200,
            "height": 200,
            "background": "#0000ff",
            "views": [
                {
                    "type": "image",
                    "url": "{avatar}",
                    "css": {
                        "top": 50,
                        "left": 50,
                        "width": 100,
                        "height": 100,
                        "borderRadius": "50%",
                    },
                }
            ],
        }
    )
    image = render_image(
        template,
        PosterData(nickname="x", link=LINK, avatar=solid_image((300, 300), (255, 0, 0), "PNG")),
    )
    assert image.getpixel((100, 100)) == (255, 0, 0)  # centre: avatar
    assert image.getpixel((52, 52)) == (0, 0, 255)  # box corner: background shows through
    assert image.getpixel((100, 52)) == (255, 0, 0)  # top edge midpoint: inside the circle


def test_default_avatar_is_drawn_without_avatar_bytes() -> None:
    with_default = render_image(default_template(), PosterData(nickname="x", link=LINK))
    with_broken = render_image(
        default_template(), PosterData(nickname="x", link=LINK, avatar=b"\xff\xd8junk")
    )
    assert with_default.tobytes() == with_broken.tobytes()
    inside = with_default.getpixel((120, 188))
    assert inside not in ((255, 255, 255),) and inside != with_default.getpixel((20, 188))


def test_large_jpeg_avatar_uses_draft_decoding() -> None:
    avatar = solid_image((4000, 3000), (200, 50, 50))
    image = render_image(default_template(), PosterData(nickname="x", link=LINK, avatar=avatar))
    pixel = image.getpixel((120, 188))
    assert isinstance(pixel, tuple)
    assert all(abs(got - want) < 6 for got, want in zip(pixel, (200, 50, 50), strict=True))


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="png, jpeg or webp"):
        render_poster(default_template(), DATA, "gif")  # type: ignore[arg-type]


def test_link_too_long_for_any_qr_code_is_a_data_error() -> None:
    with pytest.raises(PosterDataError, match="too long"):
        data = PosterData(nickname="x", link="https://x.cn/" + "a" * 3000)
        render_poster(default_template(), data)


def test_huge_png_avatar_falls_back_to_the_default_avatar() -> None:
    huge = solid_image((5000, 4000), (255, 0, 0), "PNG")  # over the decode cap, not a bomb
    with_huge = render_image(default_template(), PosterData(nickname="x", link=LINK, avatar=huge))
    default = render_image(default_template(), PosterData(nickname="x", link=LINK))
    assert with_huge.tobytes() == default.tobytes()


def test_rendering_from_a_thread_pool_matches_sequential_rendering() -> None:
    """The server renders off the event loop; shared caches and fonts must not interfere."""
    from concurrent.futures import ThreadPoolExecutor

    from posters.render import clear_caches

    template = default_template()
    datas = [PosterData(nickname=f"用户{i}", campaign=f"活动{i % 3}", rank=str(i),
                        link=f"{LINK}&n={i}") for i in range(40)]  # fmt: skip
    sequential = [render_poster(template, d, "jpeg") for d in datas]
    clear_caches()
    with ThreadPoolExecutor(6) as pool:
        parallel = list(pool.map(lambda d: render_poster(template, d, "jpeg"), datas))
    assert parallel == sequential
