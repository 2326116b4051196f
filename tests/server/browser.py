"""What the real-browser tests share: Debian's chromium (or a visible skip) and the app served
on a real loopback socket."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("LIEBIAN_TEST_CHROMIUM", "/usr/bin/chromium")


def chromium_or_skip(what: str, path: str | None = None) -> str:
    """The chromium executable for ``what`` ("the console browser test"); without it a skip
    that says so, or a failure under CI."""
    path = path or CHROMIUM
    problem = None
    if not (os.access(path, os.X_OK) or shutil.which(path)):
        problem = f"chromium is not installed at {path} (`make install` installs it with apt)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:
            problem = f"playwright is not installed ({exc}); run make install"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} needs chromium under CI: {problem}")
        pytest.skip(f"WARNING: {what} was SKIPPED: {problem}")
    return path


@contextmanager
def serve_app(settings: Any) -> Iterator[str]:
    """The app on a real socket on 127.0.0.1 (a free port), for a real browser."""
    import uvicorn

    from server.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
