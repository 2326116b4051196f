"""Throw-away ``redis-server`` processes on loopback ports, for tests that stop Redis or need a
Redis Cluster. Started from the installed binary; without it the tests skip with a warning
(and fail under CI=true)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["cluster", "free_port", "redis_server", "require_binaries"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port P whose cluster bus port P + 10000 is free too (so P <= 55535)."""
    for _ in range(1000):
        port = random.randint(20000, 55000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free loopback port pair for a Redis Cluster node")


def require_binaries(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        message = f"{', '.join(missing)} not installed: Redis process tests skipped"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        warnings.warn(message, stacklevel=2)
        pytest.skip(message)


def _wait_ping(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if done.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not answer")


def start(port: int, directory: Path, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", str(directory), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_ping(port)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def redis_server(directory: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """One standalone server: (port, process)."""
    require_binaries("redis-server", "redis-cli")
    port = free_port()
    process = start(port, directory)
    try:
        yield port, process
    finally:
        stop(process)


@contextmanager
def cluster(directory: Path, masters: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``masters`` masters (no replicas) on loopback; yields the ports."""
    require_binaries("redis-server", "redis-cli")
    ports: list[int] = []
    while len(ports) < masters:
        port = cluster_port()
        if port not in ports:
            ports.append(port)
    processes = []
    try:
        for port in ports:
            node_dir = directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            processes.append(
                start(port, node_dir, "--cluster-enabled", "yes",
                      "--cluster-config-file", f"nodes-{port}.conf")
            )  # fmt: skip
        subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every node must agree the slots are covered
            states = [
                subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"],
                               capture_output=True, text=True, check=False).stdout
                for p in ports
            ]  # fmt: skip
            if all("cluster_state:ok" in s for s in states):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the Redis Cluster never reached cluster_state:ok")
        yield ports
    finally:
        for process in processes:
            stop(process)
