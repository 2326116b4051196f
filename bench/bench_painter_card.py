"""Painter's card example (issue 18): our render vs plain Pillow drawing the same boxes.

``python -m bench painter-card [--quick] [--rounds N]`` (no database). Prints medians, timed
alternately.

- baseline: a new canvas, then for each view of the card stand-in
  (tests/posters/palettes/card.json) the same box drawn the plain Pillow way: a (rounded)
  rectangle in the paint's first colour, the text lines with ImageDraw.text, a ready-sized
  image pasted, a ready QR image pasted; JPEG-encoded with the renderer's settings. No
  gradients, shadows, rotation, decoration or wrapping: the cheapest drawing of the boxes.
- warm: ``render_poster(card, data, "jpeg")`` with the static layer cached (the card has no
  placeholder, so this is the layer copy and the encode).
- cold: the same with every cache cleared first (everything drawn: shadows, rotation, ...).
- emoji: a 600x120 poster whose only view is a ``{nickname}`` text at 40 px, a new nickname
  each round (laid out and drawn each time): "小明😀🎉<n>" (two colour emoji, scaled from
  the font's 109 px bitmaps, cached per size) against "小明<n>" (the CJK face only); and
  "小明👨‍👩‍👧‍👦🇨🇳👍🏽❤️1️⃣<n>" (five emoji sequences, each shaped into one glyph) against the same.
"""

from __future__ import annotations

import argparse
import sys

import qrcode
from PIL import Image, ImageDraw

from bench.harness import ROOT, paired_median_ms
from posters import PosterData, parse_template, render_poster
from posters.boxes import css_box, qr_box
from posters.colors import Solid, parse_paint
from posters.fonts import load_font
from posters.images import decode_data_uri, open_image
from posters.layers import text_layout
from posters.render import clear_caches, encode_image
from posters.spec import ImageView, QrCodeView, RectView, TextView

ENGINES = ()
QUICK = {"rounds": 20}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=100, help="warm renders (cold: a fifth)")


def run(engine: None, args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "posters"))  # the golden tests' palette loader
    from golden_helpers import load

    card = load("card")
    size = (card.width, card.height)
    # Everything the baseline can prepare once: boxes, colours, fonts, sized images, QR.
    steps: list[tuple[str, object]] = []
    for view in card.views:
        css = view.css
        if isinstance(view, RectView):
            paint = parse_paint(css.background or css.color or "#000")
            rgba = paint.rgba if isinstance(paint, Solid) else paint.stops[0][1]
            x, y, w, h = css_box(css)
            steps.append(("rect", ((x, y, x + w, y + h), round(css.border_radius), rgba)))
        elif isinstance(view, TextView):
            laid = text_layout(view, {}, size)
            assert laid is not None
            block, (x, y, _, _) = laid
            font, _ = load_font(round(css.font_size), bold=css.font_weight == "bold")
            steps.append(("text", (x, y, block.lines, block.line_height, font)))
        elif isinstance(view, ImageView):
            x, y, w, h = css_box(css)
            img = open_image(decode_data_uri(view.url), (w, h)).convert("RGB").resize((w, h))
            steps.append(("image", (img, (x, y))))
        elif isinstance(view, QrCodeView):
            x, y, side, _ = qr_box(css)
            qr = qrcode.make(view.content, border=0).get_image().convert("RGB")
            steps.append(("image", (qr.resize((side, side), Image.Resampling.NEAREST), (x, y))))

    def baseline(i: int) -> bytes:
        canvas = Image.new("RGB", size, (238, 238, 238))
        draw = ImageDraw.Draw(canvas)
        for kind, step in steps:
            if kind == "rect":
                box, radius, rgba = step  # type: ignore[misc]
                draw.rounded_rectangle(box, radius, fill=rgba[:3])
            elif kind == "text":
                x, y, lines, lh, font = step  # type: ignore[misc]
                for n, line in enumerate(lines):
                    draw.text((x, y + n * lh), line, fill=(0, 0, 0), font=font)
            else:
                img, at = step  # type: ignore[misc]
                canvas.paste(img, at)
        return encode_image(canvas, "jpeg")

    def data(i: int) -> PosterData:
        return PosterData(nickname=f"达人{i}", link=f"https://liebian.example.com/s/{i}")

    def warm(i: int) -> bytes:
        return render_poster(card, data(i), "jpeg")

    def cold(i: int) -> bytes:
        clear_caches()
        return render_poster(card, data(i), "jpeg")

    base_ms, warm_ms = paired_median_ms(baseline, warm, rounds=args.rounds)
    base2_ms, cold_ms = paired_median_ms(baseline, cold, rounds=max(3, args.rounds // 5))
    print(f"card {size[0]}x{size[1]}, {len(card.views)} views")
    print(f"plain Pillow baseline (same boxes, JPEG): {base_ms:7.2f} ms")
    print(f"warm card JPEG (static layer cached):     {warm_ms:7.2f} ms  "
          f"({warm_ms / base_ms:.2f}x baseline)")  # fmt: skip
    print(f"cold card JPEG (all caches cleared):      {cold_ms:7.2f} ms  "
          f"({cold_ms / base2_ms:.2f}x baseline {base2_ms:.2f} ms)")  # fmt: skip
    _emoji_text(2 * args.rounds)


def _emoji_text(rounds: int) -> None:
    nickname = parse_template({"width": 600, "height": 120, "background": "#ffffff", "views": [
        {"type": "text", "text": "{nickname}",
         "css": {"left": 20, "top": 30, "fontSize": 40, "color": "#333333"}}]})  # fmt: skip

    def plain(i: int) -> bytes:
        return render_poster(nickname, PosterData(nickname=f"小明{i}", link="https://x.cn/s"),
                             "jpeg")  # fmt: skip

    def emoji(i: int) -> bytes:
        return render_poster(nickname, PosterData(nickname=f"小明😀🎉{i}", link="https://x.cn/s"),
                             "jpeg")  # fmt: skip

    def sequences(i: int) -> bytes:
        return render_poster(nickname, PosterData(nickname=f"小明{_SEQUENCES}{i}",
                                                  link="https://x.cn/s"), "jpeg")  # fmt: skip

    plain_ms, emoji_ms = paired_median_ms(plain, emoji, rounds=rounds)
    plain2_ms, seq_ms = paired_median_ms(plain, sequences, rounds=rounds)
    print(f"nickname text 600x120 JPEG, CJK only:     {plain_ms:7.2f} ms")
    print(f"nickname text with two colour emoji:      {emoji_ms:7.2f} ms  "
          f"({emoji_ms / plain_ms:.2f}x)")  # fmt: skip
    print(f"nickname with emoji sequences (shaped):   {seq_ms:7.2f} ms  "
          f"({seq_ms / plain2_ms:.2f}x CJK only {plain2_ms:.2f} ms)")  # fmt: skip


# A ZWJ family, a flag, a skin-tone thumb, a red heart with VS16 and a keycap: each joined
# into one glyph by the colour face (RAQM shaping), cached like single emoji.
_SEQUENCES = (
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦
    "\U0001f1e8\U0001f1f3\U0001f44d\U0001f3fd\u2764\ufe0f1\ufe0f\u20e3"  # 🇨🇳 👍🏽 ❤️ 1️⃣
)

