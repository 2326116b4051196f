"""The mini-program side of a share: the `scene` a mini-program code (小程序码) carries.

When a user scans a link's code, WeChat opens the page with `query.scene` set to the link's
scene, URL-encoded (`lb%3DAbC123`). `parse_scene` decodes it and checks it is a scene WeChat
could have carried; the backend then binds the user with it:

    scene = parse_scene(query["scene"])          # "lb=AbC123"
    client.referrals.bind(user_id=openid, scene=scene)
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MAX_SCENE_LENGTH", "SCENE_ALPHABET", "parse_scene"]

MAX_SCENE_LENGTH = 32
SCENE_ALPHABET = "0-9A-Za-z!#$&'()*+,/:;=?@-._~"
_SCENE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
_MAX_RAW = 3 * MAX_SCENE_LENGTH  # every character percent-encoded


def parse_scene(raw: str) -> str:
    """The scene in `onLoad(query)`'s `query.scene`, decoded once; `ValueError` if it is not
    1-32 characters of WeChat's scene alphabet (`0-9A-Za-z!#$&'()*+,/:;=?@-._~`)."""
    if not isinstance(raw, str):
        raise ValueError("scene must be a string (query.scene of the page's onLoad)")
    if len(raw) > _MAX_RAW:
        raise ValueError(f"scene is {len(raw)} characters; a scene is at most {MAX_SCENE_LENGTH}")
    scene = unquote(raw, errors="strict")
    if not _SCENE.match(scene):
        raise ValueError(
            f"{scene!r} is not a scene: 1-{MAX_SCENE_LENGTH} characters of {SCENE_ALPHABET}"
        )
    return scene
