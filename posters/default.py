"""The built-in poster: a warm gradient, the distributor's avatar and name, a white card with
the campaign title, the QR code and a call to action. Written as a Painter palette, so it is
also a working example of the template format."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from posters.painter import parse_template
from posters.spec import Template

__all__ = ["DEFAULT_PALETTE", "default_template"]

_WHITE_SOFT = "rgba(255, 255, 255, 0.86)"
_ACCENT = "#ff5a36"

DEFAULT_PALETTE: dict[str, Any] = {
    "width": "750px",
    "height": "1334px",
    "background": "linear-gradient(160deg, #ff9a44 0%, #ff5e3a 45%, #f5365c 100%)",
    "views": [
        # Soft light discs give the flat gradient some depth.
        {"type": "rect", "css": {"top": "-180px", "left": "470px", "width": "460px",
                                 "height": "460px", "borderRadius": "50%",
                                 "background": "rgba(255, 255, 255, 0.10)"}},
        {"type": "rect", "css": {"top": "150px", "left": "-150px", "width": "300px",
                                 "height": "300px", "borderRadius": "50%",
                                 "background": "rgba(255, 255, 255, 0.07)"}},
        {"type": "rect", "css": {"top": "1150px", "left": "560px", "width": "320px",
                                 "height": "320px", "borderRadius": "50%",
                                 "background": "rgba(255, 255, 255, 0.08)"}},
        {"type": "text", "text": "LIEBIAN · 好物推荐官",
         "css": {"top": "56px", "left": "60px", "fontSize": "24px", "color": _WHITE_SOFT}},
        # The card.
        {"type": "rect", "css": {"top": "300px", "left": "40px", "width": "670px",
                                 "height": "940px", "borderRadius": "32px",
                                 "background": "#ffffff"}},
        {"type": "rect", "css": {"top": "348px", "left": "88px", "width": "148px",
                                 "height": "48px", "borderRadius": "24px",
                                 "background": "#fff1eb"}},
        {"type": "text", "text": "限时活动",
         "css": {"top": "348px", "left": "88px", "width": "148px", "lineHeight": "48px",
                 "fontSize": "26px", "fontWeight": "bold", "color": _ACCENT,
                 "textAlign": "center"}},
        {"type": "text", "text": "好友通过你的专属二维码参与，你即可获得推广奖励",
         "css": {"top": "580px", "left": "88px", "width": "574px", "fontSize": "28px",
                 "lineHeight": "44px", "maxLines": 2, "color": "#8c8c8c"}},
        {"type": "rect", "css": {"top": "688px", "left": "88px", "width": "574px",
                                 "height": "2px", "background": "#f2f2f2"}},
        {"type": "rect", "css": {"top": "730px", "left": "195px", "width": "360px",
                                 "height": "360px", "borderRadius": "28px",
                                 "background": "#fff5f0"}},
        {"type": "text", "text": "长按识别二维码 · 一起参与",
         "css": {"top": "1118px", "left": "88px", "width": "574px", "fontSize": "32px",
                 "fontWeight": "bold", "color": _ACCENT, "textAlign": "center"}},
        {"type": "text", "text": "分享越多 · 奖励越多",
         "css": {"top": "1170px", "left": "88px", "width": "574px", "fontSize": "24px",
                 "color": "#bfbfbf", "textAlign": "center"}},
        {"type": "text", "text": "扫码即可查看活动详情，名额有限，先到先得",
         "css": {"top": "1262px", "left": "60px", "width": "630px", "fontSize": "24px",
                 "color": _WHITE_SOFT, "textAlign": "center"}},
        # Per-distributor views.
        {"type": "image", "url": "{avatar}",
         "css": {"top": "128px", "left": "60px", "width": "120px", "height": "120px",
                 "borderRadius": "50%", "borderWidth": "5px", "borderColor": "#ffffff"}},
        {"type": "text", "text": "{nickname}",
         "css": {"top": "138px", "left": "208px", "width": "482px", "fontSize": "38px",
                 "fontWeight": "bold", "color": "#ffffff", "maxLines": 1}},
        {"type": "text", "text": "邀请你一起参与",
         "css": {"top": "196px", "left": "208px", "fontSize": "26px", "color": _WHITE_SOFT}},
        {"type": "text", "text": "{rank}",
         "css": {"top": "348px", "left": "382px", "width": "280px", "lineHeight": "48px",
                 "fontSize": "26px", "color": "#faad14", "textAlign": "right", "maxLines": 1}},
        {"type": "text", "text": "{campaign}",
         "css": {"top": "424px", "left": "88px", "width": "574px", "fontSize": "46px",
                 "lineHeight": "64px", "fontWeight": "bold", "color": "#1f1f1f",
                 "maxLines": 2}},
        {"type": "qrcode", "content": "{link}",
         "css": {"top": "750px", "left": "215px", "width": "320px", "height": "320px",
                 "borderRadius": "16px", "color": "#1f1f1f", "background": "#ffffff"}},
    ],
}  # fmt: skip


@lru_cache(maxsize=1)
def default_template() -> Template:
    """A 750x1334 poster ready to publish; placeholders: avatar, nickname, rank, campaign, link."""
    return parse_template(DEFAULT_PALETTE)
