"""``python -m server.dbcheck URL``: exit 0 if the PostgreSQL at URL answers within 3 s."""

from __future__ import annotations

import asyncio
import sys


async def _ping(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=3)
    await conn.close()


def main() -> int:
    try:
        asyncio.run(_ping(sys.argv[1]))
    except (TimeoutError, OSError, Exception) as exc:  # noqa: BLE001
        print(f"cannot reach {sys.argv[1]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
