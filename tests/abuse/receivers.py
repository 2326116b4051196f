"""Hostile webhook receivers on loopback: a 400 MiB answer streamed lazily, a trickle, a
healthy one. Each runs in threads of its own, so the app's event loop is not involved."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

HUGE_BYTES = 400 * 1024 * 1024
_CHUNK = b"x" * 65536  # the only buffer the huge answer ever uses


@dataclass
class Stats:
    requests: int = 0
    bytes_sent: int = 0
    received_at: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _read_request(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


def _handler(
    mode: str, stats: Stats, trickle_every: float, status: bytes
) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            _read_request(sock)
            stats.requests += 1
            stats.received_at.append(time.monotonic())
            try:
                if mode == "ok":
                    sock.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                elif mode == "huge":
                    sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: %d\r\n\r\n" % HUGE_BYTES)  # fmt: skip
                    sent = 0
                    while sent < HUGE_BYTES and not stats.stop.is_set():
                        sock.sendall(_CHUNK)  # blocks while the client does not read
                        sent += len(_CHUNK)
                        stats.bytes_sent += len(_CHUNK)
                elif mode == "trickle":
                    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    for byte in answer:
                        if stats.stop.wait(trickle_every):
                            return
                        sock.sendall(bytes([byte]))
                        stats.bytes_sent += 1
            except OSError:
                pass  # the client hung up: that is the point

    return Handler


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def receiver(
    mode: str, trickle_every: float = 3.0, status: int = 200
) -> Iterator[tuple[str, Stats]]:
    """Serve ``mode`` ("ok", "huge" with ``status``, "trickle") on 127.0.0.1; yield (URL,
    stats)."""
    stats = Stats()
    line = b"%d %s" % (status, b"OK" if status == 200 else b"Error")
    server = _Server(("127.0.0.1", 0), _handler(mode, stats, trickle_every, line))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", stats
    finally:
        stats.stop.set()
        server.shutdown()
        server.server_close()
