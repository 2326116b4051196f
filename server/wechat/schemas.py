"""WeChat credentials and mini-program code schemas (the secret is write-only)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "AppId",
    "EnvVersion",
    "WeChatSettings",
    "WeChatSettingsIn",
    "Wxacode",
    "WxacodeOptions",
]

# A mini-program appid is "wx" and 16 hex digits; its AppSecret 32 hex digits.
AppId = Annotated[str, msgspec.Meta(pattern=r"^wx[0-9a-f]{16}$")]
AppSecret = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
EnvVersion = Literal["release", "trial", "develop"]


class WeChatSettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    appid: AppId
    secret: AppSecret

    def __repr__(self) -> str:  # never print the secret, even in a traceback's locals
        return f"WeChatSettingsIn(appid={self.appid!r}, secret=<withheld>)"


class WeChatSettings(msgspec.Struct):
    """What reads return: the appid and whether a secret is set, never the secret."""

    appid: str | None
    secret_set: bool
    updated_at: str | None


class WxacodeOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The options of ``wxacode.getUnlimited`` other than the scene (the link's own)."""

    page: str | None = None  # None: the program's mini_program_page; "": the home page
    width: int = 430  # px, 280..1280
    env_version: EnvVersion = "release"
    check_path: bool = True
    is_hyaline: bool = False

    def key(self) -> str:
        """The stored image's key: one image per (tenant, link code, these options)."""
        flags = f"{int(self.check_path)}{int(self.is_hyaline)}"
        return f"wx:{self.env_version}:{self.width}:{flags}:{self.page or ''}"


class Wxacode(msgspec.Struct):
    """An uploaded mini-program code as stored."""

    code: str
    source: Literal["upload", "wechat"]
    media_type: str
    width: int
    height: int
    size_bytes: int
