"""The poster render worker: a child process that renders one poster at a time.

It imports only :mod:`posters` (never the server), caps its own address space so a render
that allocates too much fails with ``MemoryError`` instead of growing the machine, and exits
after a reply when its resident memory is over half that cap, so fragmentation is returned to
the system by the process ending (:mod:`server.share_posters.pool` starts a fresh one).

Messages are pickled tuples over a pipe (both ends are this code):

- in: ``(template_key, template | None, data, fmt)``; ``None`` means "the template you have";
- out: ``("ok", image_bytes, recycle)``, ``("missing",)``, or
  ``("failed", kind, field, message, recycle)`` with kind ``budget``, ``data``, ``memory``
  or ``error``.
"""

from __future__ import annotations

import os
import pickle
import resource
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["TEMPLATES_KEPT", "render_job", "worker_main"]

TEMPLATES_KEPT = 8


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:  # noqa: PTH123 - Linux only, cheap
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(limit_bytes: int) -> None:
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))
    except (ValueError, OSError):  # not allowed here: the RSS recycling still bounds it
        pass


def render_job(job: tuple[Any, ...], templates: OrderedDict[str, Any]) -> tuple[Any, ...]:
    from posters import PosterDataError, PosterTemplateError, render_poster

    key, template, data, fmt = job
    if template is None:
        template = templates.get(key)
        if template is None:
            return ("missing",)
    templates[key] = template
    templates.move_to_end(key)
    while len(templates) > TEMPLATES_KEPT:
        templates.popitem(last=False)
    try:
        return ("ok", render_poster(template, data, fmt))
    except PosterTemplateError as exc:  # budget errors included
        return ("failed", "budget", exc.field, exc.message)
    except PosterDataError as exc:
        return ("failed", "data", "", str(exc))
    except MemoryError:
        return ("failed", "memory", "", "the render needed more memory than a worker has")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs it
        return ("failed", "error", "", f"{type(exc).__name__}: {exc}")


READY = b"ready"


def worker_main(conn: Connection, memory_limit_bytes: int) -> None:
    """Serve render jobs from ``conn`` until it closes."""
    _limit_memory(memory_limit_bytes)
    import posters  # noqa: F401 - load Pillow, fonts and qrcode before the first job

    conn.send_bytes(READY)  # the parent sends no job before this: a send never waits on us
    templates: OrderedDict[str, Any] = OrderedDict()
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        job = pickle.loads(message)  # noqa: S301 - sent by our own parent process
        try:
            reply = render_job(job, templates)
        except MemoryError:
            reply = ("failed", "memory", "", "the render needed more memory than a worker has")
        recycle = _rss_bytes() > memory_limit_bytes // 2 or reply[:3] == ("failed", "memory", "")
        if reply[0] != "missing":
            reply = (*reply, recycle)
        conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        if recycle:
            return
