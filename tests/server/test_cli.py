"""The ``liebian`` command line, run as a user would (a subprocess, JSON on stdout)."""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def liebian(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIEBIAN_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env,
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.sqlite_only
def test_tenants_create_json_keys_rotate_and_demo(tmp_path):
    db = tmp_path / "cli.db"
    created = liebian(db, "tenants", "create", "acme", "--json")
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)  # stdout is exactly one JSON document
    assert set(keys) == {"tenant_id", "admin_key", "sdk_key"}
    assert keys["admin_key"].startswith("lb_admin_") and keys["sdk_key"].startswith("lb_sdk_")

    rotated = liebian(db, "keys", "rotate", "--tenant", "acme", "--scope", "sdk", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["tenant_id"] == keys["tenant_id"] and new["sdk_key"] != keys["sdk_key"]
    assert liebian(db, "keys", "rotate", "--tenant", "nobody").returncode == 1

    first = json.loads(liebian(db, "demo").stdout)
    again = json.loads(liebian(db, "demo").stdout)
    assert first["tenant_id"] == again["tenant_id"]  # reused, with fresh keys
    assert first["admin_key"] != again["admin_key"]
    assert again["share_link"].startswith("http://127.0.0.1:8000/s/")
    assert liebian(db, "migrate").returncode == 0


# ---------------------------------------------------------------- one line, not a traceback


def run_cli(
    env_extra: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
    env.update(env_extra)
    # The subprocess imports the package from this checkout, whatever its working directory.
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "args",
    [
        ("keys", "rotate", "--tenant", "acme"),
        ("settlements", "export", "stl_x", "-o", "out.csv"),
    ],
)
def test_unmigrated_sqlite_database_is_one_line(tmp_path, args):
    env = {"LIEBIAN_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    result = run_cli(env, *args, cwd=tmp_path)
    assert result.returncode == 1
    assert_one_line(result, "liebian migrate")


@pytest.mark.postgres_only
def test_unmigrated_postgres_database_is_one_line(database_url, tmp_path):
    import asyncio

    import asyncpg

    async def execute(*statements: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    # An empty schema first on the search path: the same server, no liebian tables.
    drop = "DROP SCHEMA IF EXISTS cli_unmigrated CASCADE"
    asyncio.run(execute(drop, "CREATE SCHEMA cli_unmigrated"))
    try:
        sep = "&" if "?" in database_url else "?"
        env = {"LIEBIAN_DATABASE_URL": f"{database_url}{sep}search_path=cli_unmigrated"}
        result = run_cli(env, "keys", "rotate", "--tenant", "acme", cwd=tmp_path)
    finally:
        asyncio.run(execute(drop))
    assert result.returncode == 1
    assert_one_line(result, "liebian migrate")


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "args",
    [("migrate",), ("keys", "rotate", "--tenant", "acme"), ("tenants", "create", "acme")],
)
def test_unreachable_postgres_is_one_line_naming_the_variable(tmp_path, args):
    port = free_loopback_port()  # nobody listens there
    env = {"LIEBIAN_DATABASE_URL": f"postgresql://liebian:s3cretpw@127.0.0.1:{port}/app"}
    result = run_cli(env, *args, cwd=tmp_path)
    assert result.returncode == 1
    line = assert_one_line(result, "LIEBIAN_DATABASE_URL", f"127.0.0.1:{port}")
    assert "s3cretpw" not in line  # the password is never printed


@pytest.mark.sqlite_only
@pytest.mark.parametrize("path", ["../outside.db", "./var/../../outside.db", "../proj2/x.db"])
def test_relative_sqlite_path_outside_the_project_is_one_line(tmp_path, path):
    project = tmp_path / "proj"
    project.mkdir()
    result = run_cli({"LIEBIAN_DATABASE_URL": f"sqlite:///{path}"}, "migrate", cwd=project)
    assert result.returncode == 2
    assert_one_line(result, "LIEBIAN_DATABASE_URL", "absolute")
    assert not (tmp_path / "outside.db").exists() and not (tmp_path / "proj2").exists()


@pytest.mark.sqlite_only
def test_relative_sqlite_path_inside_the_project_works(tmp_path):
    result = run_cli({"LIEBIAN_DATABASE_URL": "sqlite:///var/in.db"}, "migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "in.db").is_file()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("value", ["go.example.com", "https://go.example.com/?a=1", "ftp://x"])
def test_bad_public_url_is_one_line_naming_the_variable(tmp_path, value):
    env = {"LIEBIAN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LIEBIAN_PUBLIC_URL": value}
    result = run_cli(env, "migrate", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line(result, "LIEBIAN_PUBLIC_URL")


# ---------------------------------------------------------------- help and version


def leaf_parsers() -> list[tuple[list[str], argparse.ArgumentParser]]:
    from server.cli import build_parser

    found: list[tuple[list[str], argparse.ArgumentParser]] = []

    def walk(words: list[str], parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((words, parser))
        for action in subs:
            for name, child in action.choices.items():
                walk([*words, name], child)

    walk([], build_parser())
    return found


def test_every_subcommand_is_found():
    commands = {" ".join(words) for words, _ in leaf_parsers()}
    assert {"serve", "migrate", "tenants create", "keys rotate", "demo", "settlements export"} <= (
        commands
    )


@pytest.mark.sqlite_only
@pytest.mark.parametrize("words", [w for w, _ in leaf_parsers()], ids=" ".join)
def test_help_of_every_subcommand_explains_each_option(words):
    parser = dict((tuple(w), p) for w, p in leaf_parsers())[tuple(words)]
    result = run_cli({}, *words, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    for action in options:
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{words} {name}: no help"
        assert name in text, f"{words}: {name} missing from --help"
        help_text = " ".join(action.help.split()).split("%(")[0].strip()
        assert help_text[:40] in text, f"{words} {name}: help text missing"


@pytest.mark.sqlite_only
def test_version():
    from importlib.metadata import version

    result = run_cli({}, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"liebian {version('liebian')}"


# ---------------------------------------------------------------- public URL at start-up


@pytest.fixture
def served(monkeypatch):
    """`liebian serve` in this process with uvicorn and the migration replaced by recorders."""
    import uvicorn

    from server import cli

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))

    async def no_migration(settings):
        return None

    monkeypatch.setattr(cli, "_migrate", no_migration)
    # cmd_serve passes settings to the workers through the environment: restore it afterwards.
    for name in ("LIEBIAN_PUBLIC_URL", "LIEBIAN_WEBHOOK_ALLOW_PRIVATE"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    return calls


@pytest.mark.sqlite_only
def test_serve_on_loopback_uses_its_own_address_silently(served, capsys):
    from server.cli import main

    assert main(["serve", "--host", "127.0.0.1", "--port", "8123"]) == 0
    assert served and os.environ["LIEBIAN_PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert capsys.readouterr().err == ""


@pytest.mark.sqlite_only
def test_serve_in_production_without_public_url_warns_in_one_line(served, capsys):
    from server.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 0  # noqa: S104
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "warning" in lines[0] and "LIEBIAN_PUBLIC_URL" in lines[0]
    assert "http://127.0.0.1:8123" in lines[0]  # what it falls back to
    assert os.environ["LIEBIAN_PUBLIC_URL"] == "http://127.0.0.1:8123"


@pytest.mark.sqlite_only
def test_serve_keeps_a_configured_public_url(served, capsys, monkeypatch):
    from server.cli import main

    monkeypatch.setenv("LIEBIAN_PUBLIC_URL", "https://go.example.com/")
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 0  # noqa: S104
    assert capsys.readouterr().err == ""
    assert os.environ["LIEBIAN_PUBLIC_URL"] == "https://go.example.com"


@pytest.mark.sqlite_only
def test_demo_prints_urls_under_the_public_url(tmp_path):
    env = {
        "LIEBIAN_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "LIEBIAN_PUBLIC_URL": "https://go.example.com",
    }
    result = run_cli(env, "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    demo = json.loads(result.stdout)
    assert demo["share_link"].startswith("https://go.example.com/s/")
    assert demo["poster_url"].startswith("https://go.example.com/v1/posters/")


# ---------------------------------------------------------------- export progress


def exported_settlement(tenant) -> str:
    from tests.server.test_settlements import draft, setup_earners
    from tests.server.test_settlements import order as paid_order

    setup_earners(tenant)
    paid_order(tenant, "o1", 10000)
    return draft(tenant)["id"]


def test_export_shows_no_progress_bar_off_a_tty(tenant, database_url, tmp_path):
    settlement_id = exported_settlement(tenant)
    target = tmp_path / "out.csv"
    env = {"LIEBIAN_DATABASE_URL": database_url}
    result = run_cli(env, "settlements", "export", settlement_id, "-o", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == tenant.get(f"/v1/settlements/{settlement_id}/export.csv").content
    assert "\r" not in result.stderr and "━" not in result.stderr and "\x1b" not in result.stderr
    assert_one_line(result, "wrote", str(target))


def test_export_draws_a_rich_progress_bar_on_a_tty(tenant, database_url, tmp_path):
    settlement_id = exported_settlement(tenant)
    target = tmp_path / "out.xlsx"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")
    } | {
        "LIEBIAN_DATABASE_URL": database_url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "TERM": "xterm-256color",
        "COLUMNS": "100",
    }
    env.pop("NO_COLOR", None)
    env.pop("TERM_PROGRAM", None)
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "settlements", "export", settlement_id,
             "--format", "xlsx", "-o", str(target)],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=secondary,
        )
        os.close(secondary)
        output = b""
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=60) == 0, output
    finally:
        os.close(primary)
    text = output.decode("utf-8", "replace")
    assert "━" in text  # rich's bar
    assert "lines" in text and "wrote" in text
    assert target.stat().st_size > 0
