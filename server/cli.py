"""The ``liebian`` command line: serve, migrate, tenants, keys, demo, settlements, ledger.

Output meant for programs is JSON on stdout (``--json``); everything else goes to stderr.
A bad setting is one line naming the variable, exit status 2. A database that cannot be
reached or opened, or that is not migrated, is one line too (exit status 1), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from server.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


class CliError(Exception):
    """A failure the user can fix, said in one line (exit status 1)."""


def _database_name(settings: Settings) -> str:
    """Where LIEBIAN_DATABASE_URL points, without credentials."""
    if settings.engine == "sqlite":
        return f"the SQLite file {settings.sqlite_path}"
    parts = urlsplit(settings.database_url)
    return f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _explain(exc: BaseException, settings: Settings) -> str | None:
    """The one line that explains a low-level error, or None to let it through."""
    import asyncpg

    if isinstance(exc, CliError):
        return str(exc)
    unmigrated = (
        isinstance(exc, sqlite3.OperationalError)
        and str(exc).startswith(("no such table", "no such column"))
    ) or isinstance(exc, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError)
    if unmigrated:
        return (
            f"{_database_name(settings)} (LIEBIAN_DATABASE_URL) has no liebian schema or an "
            f"older one ({_first_line(exc)}); run `liebian migrate`"
        )
    return None


async def _connect(settings: Settings, pool_size: int = 2) -> Any:
    """Open the store, turning any failure to reach or open it into one line."""
    from server.db import connect

    try:
        return await connect(settings.database_url, pool_size=pool_size)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the user gets one line
        if settings.engine == "sqlite":
            verb, fix = "open", "check that its directory exists and is writable"
        else:
            verb, fix = "reach", "check the host, port, database, credentials and that it runs"
        raise CliError(
            f"cannot {verb} {_database_name(settings)} named by LIEBIAN_DATABASE_URL "
            f"({_first_line(exc)}); {fix}"
        ) from exc


def _print_json(payload: Any) -> None:
    sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
    sys.stdout.flush()


async def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from server.coherence import coherent

    db = await _connect(settings)
    try:
        # A change made here (a revoked key) is announced to the serving nodes over Redis.
        async with coherent(settings, subscribe=False):
            return await fn(db)
    finally:
        await db.close()


async def _migrate(settings: Settings) -> None:
    from server.migrate import migrate

    if settings.engine == "postgres":
        # Reach the server first: Piccolo would warn and then fail with a bare socket error.
        await (await _connect(settings, pool_size=1)).close()
    # Piccolo reports progress on stdout; keep stdout for machine-readable output.
    with contextlib.redirect_stdout(sys.stderr):
        await migrate(settings)


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    asyncio.run(_migrate(settings))
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_tenants_create(settings: Settings, args: argparse.Namespace) -> int:
    from server.tenants.service import create_tenant

    async def run() -> Any:
        await _migrate(settings)
        return await _with_db(settings, lambda db: create_tenant(db, args.name))

    created = asyncio.run(run())
    if args.json:
        _print_json(created)
    else:
        print(
            f"tenant_id: {created.tenant_id}\nadmin_key: {created.admin_key}\n"
            f"sdk_key:   {created.sdk_key}\n(keys are shown once; store them now)"
        )
    return 0


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from server.errors import NotFound
    from server.tenants.service import find_tenant, rotate_keys

    scopes: tuple[Any, ...] = ("admin", "sdk") if args.scope == "all" else (args.scope,)

    async def run(db: Any) -> dict[str, str]:
        tenant_id = await find_tenant(db, args.tenant)
        if tenant_id is None:
            raise NotFound(f"no tenant with id or name {args.tenant!r}")
        return {"tenant_id": tenant_id, **await rotate_keys(db, tenant_id, scopes)}

    try:
        keys = asyncio.run(_with_db(settings, run))
    except NotFound as exc:
        print(f"liebian: error: {exc.detail}", file=sys.stderr)
        return 1
    _print_json(keys) if args.json else print("\n".join(f"{k}: {v}" for k, v in keys.items()))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.demo import ensure_demo

    async def run() -> Any:
        await _migrate(settings)
        base_url = args.base_url or settings.public_base_url
        return await _with_db(settings, lambda db: ensure_demo(db, base_url))

    _print_json(asyncio.run(run()))
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve_public_url(settings: Settings, host: str, port: int, demo: bool) -> tuple[str, str]:
    """(public base URL, warning) for ``liebian serve``; the warning is "" when none is due.

    Unset LIEBIAN_PUBLIC_URL falls back to this server's own address, http://HOST:PORT (a
    wildcard bind such as 0.0.0.0 gives 127.0.0.1): right for a local or demo instance; one
    reachable from outside warns, since its links would then point at an internal address.
    """
    if settings.public_url is not None:
        return settings.public_url, ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        shown = host
    else:
        unspecified = address.is_unspecified
        shown = "127.0.0.1" if unspecified else f"[{host}]" if address.version == 6 else host
    fallback = f"http://{shown}:{port}"
    if demo or _is_loopback(host):
        return fallback, ""
    return fallback, (
        f"liebian: warning: LIEBIAN_PUBLIC_URL is unset, so share links, poster QR codes and "
        f"signed poster URLs use {fallback}; set LIEBIAN_PUBLIC_URL to the address users reach "
        f"(e.g. https://go.example.com)"
    )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    public_url, warning = _serve_public_url(settings, args.host, args.port, args.demo)
    if warning:
        print(warning, file=sys.stderr)
    # The workers build their settings from the environment (uvicorn's factory takes none).
    os.environ["LIEBIAN_PUBLIC_URL"] = public_url
    settings = msgspec.structs.replace(settings, public_url=public_url)
    if args.demo:
        cmd_demo(settings, argparse.Namespace(base_url=None))
    else:
        asyncio.run(_migrate(settings))
    # The bind address says nothing about who can reach the service (a loopback bind behind a
    # reverse proxy is the usual production set-up), so it never relaxes the outbound guard:
    # only LIEBIAN_WEBHOOK_ALLOW_PRIVATE=1 does.
    if settings.engine == "sqlite" and args.workers > 1:
        print(
            "liebian: note: SQLite with several workers serialises writes on the file lock; "
            "use PostgreSQL for more than one worker",
            file=sys.stderr,
        )
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
    )
    return 0


@contextlib.contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when stderr is a terminal; None (no bar) otherwise, so
    logs and pipes get no carriage returns or escape codes."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def cmd_settlement_export(settings: Settings, args: argparse.Namespace) -> int:
    from server.settlements.export import export_to_file

    with _progress_bar(f"export {args.settlement_id}") as progress:
        return asyncio.run(
            _with_db(settings, lambda db: export_to_file(db, args, sys.stderr, progress))
        )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("liebian")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    """One JSON line per difference between the maintained totals/counts and the ledger;
    exit status 1 when there is any (after fixing them with ``--fix``)."""
    from server.ledger.reconcile import verify

    async def run(db: Any) -> int:
        found = 0
        async for diff in verify(db, args.tenant, fix=args.fix, batch=args.batch):
            found += 1
            _print_json({**diff, "fixed": args.fix})
        return found

    found = asyncio.run(_with_db(settings, run))
    print(
        f"liebian: {found} difference(s)" + (" fixed" if args.fix and found else ""),
        file=sys.stderr,
    )
    return 1 if found else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liebian",
        description=__doc__.splitlines()[0],
        epilog="Settings come from LIEBIAN_* environment variables (see the README).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="migrate and serve the HTTP API",
        description="Migrate the database, then serve the HTTP API with uvicorn.",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (default 1; use PostgreSQL for more than one)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="create or reuse the demo tenant first and print its keys as JSON",
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Apply pending migrations to LIEBIAN_DATABASE_URL (safe to repeat).",
    ).set_defaults(func=cmd_migrate)

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True
    )
    create = tenants.add_parser(
        "create",
        help="create a tenant and print its keys (once)",
        description="Create a tenant with an admin and an sdk key; keys are shown only here.",
    )
    create.add_argument("name", help="the tenant's name (unique; used by keys rotate --tenant)")
    create.add_argument(
        "--json",
        action="store_true",
        help='print {"tenant_id","admin_key","sdk_key"} as one JSON line',
    )
    create.set_defaults(func=cmd_tenants_create)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    rotate = keys.add_parser(
        "rotate",
        help="revoke a tenant's keys and issue new ones",
        description="Revoke a tenant's keys of a scope and print the new ones (shown once).",
    )
    rotate.add_argument("--tenant", required=True, help="tenant id or name")
    rotate.add_argument(
        "--scope",
        choices=["admin", "sdk", "all"],
        default="all",
        help="which keys to replace: admin, sdk or all (default all)",
    )
    rotate.add_argument("--json", action="store_true", help="print the new keys as one JSON line")
    rotate.set_defaults(func=cmd_keys_rotate)

    demo = sub.add_parser(
        "demo",
        help="create or reuse the demo tenant and print its keys",
        description="Create (or reuse, with fresh keys) the demo tenant; print one JSON line.",
    )
    demo.add_argument(
        "--base-url",
        default=None,
        help="base of the printed URLs (default LIEBIAN_PUBLIC_URL, else http://127.0.0.1:8000)",
    )
    demo.set_defaults(func=cmd_demo)

    settlements = sub.add_parser("settlements", help="finance exports").add_subparsers(
        dest="settlements_command", required=True
    )
    export = settlements.add_parser(
        "export",
        help="export a settlement to CSV, XLSX or a payout file",
        description="Write a settlement's statement or payout file (a progress bar on a terminal).",
    )
    export.add_argument("settlement_id", help="the settlement's id (stl_...)")
    export.add_argument(
        "--tenant", default=None, help="tenant id the settlement must belong to (optional check)"
    )
    export.add_argument(
        "--format",
        choices=["csv", "xlsx", "payout"],
        default="csv",
        help="csv/xlsx: the statement; payout: the file for the payout channel (approved only)",
    )
    export.add_argument(
        "--lang", choices=["zh", "en"], default="zh", help="column headers: Chinese or English"
    )
    export.add_argument(
        "--layout",
        default=None,
        help="payout layout: program (the tenant's), generic_bank or wechat_transfer",
    )
    export.add_argument("-o", "--output", required=True, help="the file to write")
    export.set_defaults(func=cmd_settlement_export)

    ledger = sub.add_parser("ledger", help="ledger reconciliation").add_subparsers(
        dest="ledger_command", required=True
    )
    check = ledger.add_parser(
        "verify",
        help="recompute balances' totals (matured ones too), team counts and team ancestors "
        "from the ledger and bindings; print differences as JSON lines (exit 1 if any)",
    )
    check.add_argument("--tenant", default=None, help="tenant id (default: every tenant)")
    check.add_argument("--fix", action="store_true", help="also correct what differs")
    check.add_argument("--batch", type=int, default=1000, help="distributors per batch")
    check.set_defaults(func=cmd_ledger_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"liebian: error: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = _explain(exc, settings)
        if line is None:
            if not isinstance(exc, OSError):
                raise
            line = str(exc)
        print(f"liebian: error: {line}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
