"""A stand-in for the WeChat API on loopback (127.0.0.1, a free port), for tests and staging.

Serves ``POST /cgi-bin/stable_token``, ``GET /cgi-bin/token`` and
``POST /wxa/getwxacodeunlimit?access_token=`` with WeChat's answers and errcodes. The code it
returns is a real PNG: a QR code of ``wxacode|<scene>|<page>`` at the requested width, so a
test can decode a poster back to the scene it carries. It counts every call.

    with FakeWeChat() as fake:
        fake.add_app("wx0123456789abcdef", "0123456789abcdef0123456789abcdef")
        ... LIEBIAN_WECHAT_API_BASE = fake.url ...
        fake.expire_tokens()       # the current token now answers 40001 until force_refresh
        fake.fail_next(45009, "reach max api daily quota limit")
"""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import qrcode
from PIL import Image

__all__ = ["FakeWeChat", "code_text"]


def code_text(scene: str, page: str = "") -> str:
    """What the fake's code for ``scene`` and ``page`` decodes to."""
    return f"wxacode|{scene}|{page}"


def _png(text: str, width: int) -> bytes:
    qr = qrcode.QRCode(border=2, box_size=10)
    qr.add_data(text)
    img = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    img = img.resize((width, width), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


class FakeWeChat:
    def __init__(self) -> None:
        self.apps: dict[str, str] = {}  # appid -> secret
        self.tokens: dict[str, str] = {}  # appid -> current token
        self.invalid: set[str] = set()  # tokens that answer 40001
        self.pages: set[str] = {"pages/index/index", "pages/goods/detail"}
        self.calls: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.expires_in = 7200
        self._failures: list[tuple[int, str]] = []
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeWeChat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_app(self, appid: str, secret: str) -> None:
        self.apps[appid] = secret

    def expire_tokens(self) -> None:
        """Every current token answers 40001 (as after a refresh elsewhere) until a forced one."""
        with self._lock:
            self.invalid.update(self.tokens.values())

    def fail_next(self, errcode: int, errmsg: str, times: int = 1) -> None:
        """The next ``times`` getwxacodeunlimit calls answer this errcode."""
        with self._lock:
            self._failures.extend([(errcode, errmsg)] * times)

    # ---------------------------------------------------------------- the API

    def _token(self, appid: str, secret: str, force: bool) -> dict[str, Any]:
        if appid not in self.apps:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if self.apps[appid] != secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self._lock:
            if force or appid not in self.tokens:
                self.tokens[appid] = f"TOKEN_{appid}_{next(self._serial)}"
            return {"access_token": self.tokens[appid], "expires_in": self.expires_in}

    def _wxacode(self, token: str, body: dict[str, Any]) -> tuple[str, bytes]:
        with self._lock:
            valid = token in self.tokens.values() and token not in self.invalid
            failure = self._failures.pop(0) if valid and self._failures else None
        if not valid:
            return _json(
                {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            )
        if failure is not None:
            return _json({"errcode": failure[0], "errmsg": failure[1]})
        scene, page = str(body.get("scene", "")), str(body.get("page", ""))
        width = body.get("width", 430)
        if not 0 < len(scene) <= 32:
            return _json({"errcode": 40097, "errmsg": "invalid args: scene"})
        if not isinstance(width, int) or not 280 <= width <= 1280:
            return _json({"errcode": 40097, "errmsg": "invalid args: width"})
        if page and body.get("check_path", True) and page not in self.pages:
            return _json({"errcode": 41030, "errmsg": "invalid page rid: 0"})
        self.bodies.append(body)
        return "image/png", _png(code_text(scene, page), width)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _answer(self, media: str, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/cgi-bin/token":
                    fake.calls["token"] += 1
                    answer = fake._token(query.get("appid", ""), query.get("secret", ""), False)
                    self._answer(*_json(answer))
                    return
                self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if parts.path == "/cgi-bin/stable_token":
                    fake.calls["stable_token"] += 1
                    if body.get("force_refresh"):
                        fake.calls["stable_token_forced"] += 1
                    answer = fake._token(
                        body.get("appid", ""),
                        body.get("secret", ""),
                        bool(body.get("force_refresh")),
                    )
                    self._answer(*_json(answer))
                    return
                if parts.path == "/wxa/getwxacodeunlimit":
                    fake.calls["getwxacodeunlimit"] += 1
                    token = parse_qs(parts.query).get("access_token", [""])[0]
                    self._answer(*fake._wxacode(token, body))
                    return
                self.send_error(404)

        return Handler


def _json(payload: dict[str, Any]) -> tuple[str, bytes]:
    return "application/json; charset=utf-8", json.dumps(payload).encode()
