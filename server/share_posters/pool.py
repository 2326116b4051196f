"""Poster renders in a small pool of worker processes, each render under a deadline.

Why processes: a render is CPU-bound Pillow work that a thread cannot be stopped in. A worker
that misses the deadline is killed (SIGKILL) and a fresh one takes its place on the next
render, so a runaway template costs at most ``deadline`` seconds of one core, and the memory
it took goes back to the system with the process. Renders wait at most ``deadline`` for a
free worker (then :class:`PoolBusy`), so the queue is bounded in time as well.

Cache hits never come here: the content-hash and request caches in
:mod:`server.share_posters.service` answer in the server process. With ``workers=0`` renders
run in a thread of the server (no deadline can be enforced; for tests and debugging).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import anyio.to_thread

from posters import PosterData, default_template
from posters.spec import Template
from server.share_posters.worker import READY, TEMPLATES_KEPT, render_job, worker_main

__all__ = ["PoolBusy", "RenderFailed", "RenderPool", "RenderTimeout"]

STARTUP_SECONDS = 60.0  # a worker that has not imported Pillow and the fonts by then is dead


class RenderTimeout(Exception):
    """The render did not finish within the deadline; its worker was killed."""


class PoolBusy(Exception):
    """No worker became free within the deadline."""


class RenderFailed(Exception):
    """The worker reported a failure: ``kind`` is budget, data, memory or error."""

    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(f"{kind}: {field}: {message}")
        self.kind, self.field, self.message = kind, field, message


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    known: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def call(self, key: str, template: Template, job: tuple[Any, ...], timeout: float) -> Any:
        """Send ``job``, wait at most ``timeout`` s; kills the process on timeout."""
        deadline = time.monotonic() + timeout
        send_template = key not in self.known
        while True:
            message = (key, template if send_template else None, *job)
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                self.kill()
                raise RenderTimeout
            reply = pickle.loads(self.conn.recv_bytes())  # noqa: S301 - our own child
            if reply[0] != "missing" or send_template:
                break
            send_template = True
        self.known[key] = None
        self.known.move_to_end(key)
        while len(self.known) > TEMPLATES_KEPT:
            self.known.popitem(last=False)
        return reply

    def alive(self) -> bool:
        return self.process.is_alive() and not self.conn.closed

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


def _result(reply: tuple[Any, ...]) -> bytes:
    if reply[0] == "ok":
        image: bytes = reply[1]
        return image
    _, kind, field_, message, _ = reply
    raise RenderFailed(kind, field_, message)


class RenderPool:
    """At most ``workers`` renders at once, each within ``deadline`` seconds."""

    def __init__(self, workers: int = 2, deadline: float = 5.0, memory_mb: int = 1024) -> None:
        self.workers = workers
        self.deadline = deadline
        self.memory_bytes = memory_mb << 20
        self._idle: list[_Worker] = []
        self._slots: asyncio.Semaphore | None = None
        self._context = multiprocessing.get_context("spawn")
        self.started = 0  # worker processes started, for tests and the bench
        self.killed = 0  # workers killed at the deadline
        self.renders = 0  # renders asked of the pool (cache hits and remembered failures never are)

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=worker_main, args=(child, self.memory_bytes), daemon=True,
            name="liebian-poster-worker",
        )  # fmt: skip
        process.start()
        child.close()
        self.started += 1
        worker = _Worker(process, parent)
        # A job is sent only to a worker that said it is ready (reading its pipe): a large
        # template written to a worker still starting (or stuck starting) could block the
        # sending thread with no deadline.
        try:
            ready = parent.poll(STARTUP_SECONDS) and parent.recv_bytes() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            worker.kill()
            raise RenderFailed("crash", "", "the render worker did not start")
        return worker

    async def render(self, key: str, template: Template, data: PosterData, fmt: str) -> bytes:
        """The poster's bytes; raises RenderTimeout, PoolBusy or RenderFailed.

        ``key`` identifies the template's content (workers keep recent templates by it).
        """
        self.renders += 1
        if self.workers <= 0:
            job = (key, template, data, fmt)
            here = await anyio.to_thread.run_sync(render_job, job, OrderedDict())
            return _result((*here, False))
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        try:
            async with asyncio.timeout(self.deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolBusy from None
        try:
            worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.alive():
                if worker is not None:
                    worker.kill()
                worker = await anyio.to_thread.run_sync(self._start)
            reply: tuple[Any, ...] = ()
            try:
                reply = await anyio.to_thread.run_sync(
                    worker.call, key, template, (data, fmt), self.deadline
                )
            except RenderTimeout:
                self.killed += 1
                raise
            except (EOFError, OSError) as exc:  # the worker died mid-render (killed by the OS)
                raise RenderFailed("crash", "", "the render worker stopped") from exc
            finally:
                recycle = not reply or reply[-1]
                if recycle:
                    await anyio.to_thread.run_sync(worker.kill)
                else:
                    self._idle.append(worker)
        finally:
            self._slots.release()
        return _result(reply)

    async def warm(self) -> None:
        """Start every worker now and have each draw the default poster once (fonts, QR and
        the default template's static layer loaded), rather than on the first renders."""
        missing = self.workers - len(self._idle)
        for _ in range(max(0, missing)):
            self._idle.append(await anyio.to_thread.run_sync(self._start))
        await anyio.to_thread.run_sync(self._draw_default)

    def _draw_default(self) -> None:
        data = PosterData(nickname="warm-up", link="https://warm-up.invalid/s/0")
        for worker in self._idle:
            worker.call("default", default_template(), (data, "jpeg"), max(60.0, self.deadline))

    def close(self) -> None:
        """Stop every idle worker (busy ones are stopped when their render returns)."""
        while self._idle:
            self._idle.pop().kill()
