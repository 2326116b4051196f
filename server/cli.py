"""The ``liebian`` command line: serve, migrate, tenants, keys, demo, settlements.

Output meant for programs is JSON on stdout (``--json``); everything else goes to stderr.
A bad setting is one line naming the variable, exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec

from server.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def _print_json(payload: Any) -> None:
    sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
    sys.stdout.flush()


async def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from server.db import connect

    db = await connect(settings.database_url, pool_size=2)
    try:
        return await fn(db)
    finally:
        await db.close()


async def _migrate(settings: Settings) -> None:
    from server.migrate import migrate

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
        return await _with_db(settings, lambda db: ensure_demo(db, args.base_url))

    _print_json(asyncio.run(run()))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    if args.demo:
        cmd_demo(settings, argparse.Namespace(base_url=f"http://{args.host}:{args.port}"))
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


def cmd_settlement_export(settings: Settings, args: argparse.Namespace) -> int:
    from server.settlements.export import export_to_file

    return asyncio.run(_with_db(settings, lambda db: export_to_file(db, args, sys.stderr)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liebian", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate and serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="create or reuse the demo tenant first")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True
    )
    create = tenants.add_parser("create", help="create a tenant and print its keys (once)")
    create.add_argument("name")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_tenants_create)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    rotate = keys.add_parser("rotate", help="revoke a tenant's keys and issue new ones")
    rotate.add_argument("--tenant", required=True, help="tenant id or name")
    rotate.add_argument("--scope", choices=["admin", "sdk", "all"], default="all")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_keys_rotate)

    demo = sub.add_parser("demo", help="create or reuse the demo tenant and print its keys")
    demo.add_argument("--base-url", default="http://127.0.0.1:8000")
    demo.set_defaults(func=cmd_demo)

    settlements = sub.add_parser("settlements", help="finance exports").add_subparsers(
        dest="settlements_command", required=True
    )
    export = settlements.add_parser(
        "export", help="export a settlement to CSV, XLSX or a payout file"
    )
    export.add_argument("settlement_id")
    export.add_argument("--tenant", default=None, help="tenant id (optional check)")
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
    export.add_argument("-o", "--output", required=True)
    export.set_defaults(func=cmd_settlement_export)
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
    except OSError as exc:
        print(f"liebian: error: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
