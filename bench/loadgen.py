"""Fallback load generator when ``wrk`` is not installed: keep-alive HTTP/1.1 over asyncio.

Run by the harness in a process of its own (so it never shares a CPU core's event loop with
a server under test)::

    python -m bench.loadgen '{"host": "127.0.0.1", "port": 8000, "method": "GET", ...}'

It opens ``concurrency`` connections, sends ``requests`` requests in total (each connection
sends its next request when the previous response is complete), and prints one JSON line with
the count, wall time, non-2xx/3xx statuses, socket errors and latency percentiles (µs).
A body template's ``@ID@`` is replaced with ``prefix + n`` (n counts up), so every POST is new.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import Any

ID_MARK = "@ID@"


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = -1
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length > 0:
        await reader.readexactly(length)
    return status


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    host, port = cfg["host"], int(cfg["port"])
    total = int(cfg["requests"])
    deadline = time.perf_counter() + float(cfg.get("max_seconds", 60))
    head = f"{cfg['method']} {cfg['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    for name, value in cfg.get("headers", {}).items():
        head += f"{name}: {value}\r\n"
    template: str | None = cfg.get("body")
    prefix: str = cfg.get("prefix", "")
    counter = itertools.count()
    latencies: list[float] = []
    status_errors = 0
    socket_errors = 0

    def build(n: int) -> bytes:
        if template is None:
            return (head + "\r\n").encode()
        body = template.replace(ID_MARK, f"{prefix}{n}").encode()
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def worker() -> None:
        nonlocal status_errors, socket_errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                n = next(counter)
                if n >= total:
                    return
                request = build(n)
                started = time.perf_counter()
                writer.write(request)
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    socket_errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    status_errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(int(cfg.get("concurrency", 16)))))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies), "duration_us": int(elapsed * 1e6),
        "status_errors": status_errors, "socket_errors": socket_errors,
        "p50_us": percentile(latencies, 50) * 1e6, "p99_us": percentile(latencies, 99) * 1e6,
    }


def main() -> None:
    cfg = json.loads(sys.argv[1])
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        result = asyncio.run(run(cfg))
    else:
        result = uvloop.run(run(cfg))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
