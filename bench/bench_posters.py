"""Poster rendering figures (issue 7): warm vs a plain-Pillow baseline, cold, bytes per poster.

``python -m bench posters [--quick] [--rounds N]`` (no database). Prints medians.

- baseline (timed alternately with warm): copy a ready background, paste a ready QR image,
  draw one line of text, encode JPEG with the renderer's settings; the background is the
  default template's own static layer, so both sides encode the same pixels.
- warm: ``render_poster(default_template(), data, "jpeg")`` with the static layer cached and a
  different nickname and link each time (so text and QR are really rendered, not cached).
- cold: a template never seen before (static layer rebuilt) for every poster.
- qr: making the QR module matrix with the fixed mask pattern vs qrcode's mask search.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable

import msgspec
import qrcode
from PIL import Image, ImageDraw

from bench.harness import Line, median_ms, paired_median_ms
from posters import PosterData, content_hash, default_template, render_poster
from posters.fonts import load_font
from posters.render import _plan, clear_caches

ENGINES = ()
QUICK = {"rounds": 20}
ROUNDS = 200


def _avatar() -> bytes:
    img = Image.new("RGB", (640, 640), (90, 150, 200))
    ImageDraw.Draw(img).ellipse((160, 120, 480, 440), fill=(250, 220, 190))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _data(i: int, avatar: bytes | None) -> PosterData:
    return PosterData(
        nickname=f"推广达人{i}号",
        campaign="双十一好物节 · 全场爆款低至5折",
        rank="TOP 3",
        link=f"https://liebian.example.com/s/{i:08d}?c=1111",
        avatar=avatar,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed renders per figure")


def run(engine: None, args: argparse.Namespace) -> list[Line]:
    global ROUNDS
    ROUNDS = args.rounds
    template = default_template()
    avatar = _avatar()
    render_poster(template, _data(0, avatar), "jpeg")

    background = _plan(template).base
    qr_img = qrcode.make("https://liebian.example.com/s/00000001?c=1111", border=1)
    qr_ready = qr_img.get_image().convert("RGB").resize((320, 320), Image.Resampling.NEAREST)
    font, _ = load_font(38)

    def baseline(i: int) -> bytes:
        img = background.copy()
        img.paste(qr_ready, (215, 750))
        ImageDraw.Draw(img).text((208, 138), f"推广达人{i}号", font=font, fill="white")
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
        return out.getvalue()

    def warm(i: int) -> bytes:
        return render_poster(template, _data(i, avatar), "jpeg")

    base_ms, warm_ms = paired_median_ms(baseline, warm, 2 * ROUNDS)
    warm_default_avatar = median_ms(lambda i: render_poster(template, _data(i, None), "jpeg"),
                                    ROUNDS)
    few = ROUNDS * 3 // 10
    warm_png = median_ms(lambda i: render_poster(template, _data(i, avatar), "png"), few)
    warm_webp = median_ms(lambda i: render_poster(template, _data(i, avatar), "webp"), few)

    raw = msgspec.json.decode(msgspec.json.encode(template))

    def cold(i: int) -> bytes:
        raw["views"][0]["css"]["top"] = -180.0 - i / 1000  # a template never seen
        fresh = msgspec.convert(raw, type(template))
        clear_caches()  # also drop gradients, glyph masks, layouts, QR matrices
        return render_poster(fresh, _data(i, avatar), "jpeg")

    cold_ms = median_ms(cold, max(3, ROUNDS // 10))

    def qr_make(mask: int | None) -> Callable[[int], object]:
        def make(i: int) -> object:
            code = qrcode.QRCode(border=0, mask_pattern=mask)
            code.add_data(f"https://liebian.example.com/s/{i:08d}?c=1111")
            code.make(fit=True)
            return code.get_matrix()

        return make

    sizes = {fmt: len(render_poster(template, _data(7, avatar), fmt)) for fmt in
             ("jpeg", "png", "webp")}  # fmt: skip

    print(f"baseline (copy bg + paste QR + 1 text + JPEG): {base_ms:7.2f} ms")
    print(f"warm poster JPEG, fetched avatar:              {warm_ms:7.2f} ms  "
          f"ratio {warm_ms / base_ms:.2f}x (target <= 2x)")  # fmt: skip
    print(f"warm poster JPEG, default avatar:              {warm_default_avatar:7.2f} ms")
    print(f"warm poster PNG:                               {warm_png:7.2f} ms")
    print(f"warm poster WebP:                              {warm_webp:7.2f} ms")
    print(f"cold poster JPEG (static layer rebuilt):       {cold_ms:7.2f} ms")
    print(f"posters/s warm JPEG: {1000 / warm_ms:.0f}   cold: {1000 / cold_ms:.0f}")
    print(f"QR matrix, mask search: {median_ms(qr_make(None), ROUNDS):.2f} ms   "
          f"fixed mask: {median_ms(qr_make(0), ROUNDS):.2f} ms")  # fmt: skip
    hit_data = _data(1, avatar)
    hash_us = median_ms(lambda i: content_hash(template, hit_data, "jpeg"), ROUNDS * 10) * 1000
    print(f"content_hash (cache key / ETag, {len(avatar) // 1024} KiB avatar): {hash_us:.1f} us")
    print("bytes per poster: " + "  ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()))
    ratio = warm_ms / base_ms
    return [Line("posters", "warm JPEG vs plain Pillow", "-", f"{ratio:.2f}x", "<= 2x", ratio <= 2)]

