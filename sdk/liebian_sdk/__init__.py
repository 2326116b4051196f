"""Python client of the Liebian referral and distribution (分销) API.

    from liebian_sdk import Client

    with Client("https://api.example.com", "sk_...") as client:
        link = client.links.create("openid-alice", channel="moments")

Amounts are integer fen, rates basis points, datetimes timezone-aware. See `Client`,
`AsyncClient`, the errors in `liebian_sdk._exceptions` and `liebian_sdk.webhooks`.
"""

from . import _exceptions, _models, webhooks
from ._client import AsyncClient, Client
from ._exceptions import *  # noqa: F403 - the error classes, listed in _exceptions.__all__
from ._models import *  # noqa: F403 - the response models, listed in _models.__all__
from ._version import __version__
from .scene import parse_scene

__all__ = ["AsyncClient", "Client", "__version__", "parse_scene", "webhooks"]
__all__ += _exceptions.__all__
__all__ += _models.__all__
