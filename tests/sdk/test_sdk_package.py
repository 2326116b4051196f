"""The package: exported names, dependencies, import isolation, static types."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import types
from pathlib import Path

import liebian_sdk
import pytest
from liebian_sdk import webhooks

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and value is not webhooks)
        and name != "annotations"
    }


def test_all_lists_exactly_the_public_names() -> None:
    assert sorted(liebian_sdk.__all__) == sorted(set(liebian_sdk.__all__))
    assert set(liebian_sdk.__all__) - {"__version__"} == public_names(liebian_sdk)
    for name in liebian_sdk.__all__:
        assert getattr(liebian_sdk, name) is not None


def test_webhooks_all_lists_its_public_names() -> None:
    public = {
        name
        for name, value in vars(webhooks).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", webhooks.__name__) == webhooks.__name__
        and name not in {"annotations", "Any"}
    }
    assert set(webhooks.__all__) == public


def test_the_distribution_depends_on_httpx_and_msgspec_only() -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["name"] == "liebian-sdk"
    assert project["requires-python"] == ">=3.11"
    names = {
        dep.split(">")[0].split("<")[0].split("=")[0].strip() for dep in project["dependencies"]
    }
    assert names == {"httpx", "msgspec"}
    assert (SDK / "liebian_sdk" / "py.typed").exists()


def test_importing_the_sdk_loads_no_server_stack() -> None:
    code = textwrap.dedent(
        """
        import sys
        import liebian_sdk
        from liebian_sdk import webhooks
        liebian_sdk.Client("https://x.test", "k").close()
        roots = {name.split(".")[0] for name in sys.modules}
        print(" ".join(sorted(roots)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SDK
    ).stdout.split()
    for forbidden in ("litestar", "piccolo", "PIL", "server", "rewards", "posters", "uvicorn"):
        assert forbidden not in out


def test_version_and_user_agent() -> None:
    from liebian_sdk._client import USER_AGENT

    assert f"liebian-sdk/{liebian_sdk.__version__}" == USER_AGENT
    assert liebian_sdk.__version__.count(".") == 2


TYPED_USAGE = """
from typing import Any, Coroutine, assert_type

import liebian_sdk as sdk


def sync_usage(client: sdk.Client) -> None:
    assert_type(client.distributors.get("a"), sdk.Distributor)
    assert_type(client.orders.paid("o", "u", 100, "2024-11-11T10:00:00+08:00"), sdk.Order)
    assert_type(client.posters.get("a", format="jpeg"), bytes)
    assert_type(client.leaderboards.rank("c", "a", period="week"), sdk.LeaderboardRank)
    assert_type(client.webhooks.verify(b"{}", "t=1,v1=0", "s"), dict[str, Any])


async def async_usage(client: sdk.AsyncClient) -> None:
    assert_type(await client.distributors.get("a"), sdk.Distributor)
    pending = client.links.create("a")
    _ = assert_type(pending, Coroutine[Any, Any, sdk.Link])
    assert_type(await pending, sdk.Link)
    assert_type(await client.settlements.export("s", "xlsx"), bytes)


def misuse(client: sdk.Client) -> None:
    client.distributors.upsert("a", nickname="n", tier="gold")  # E: Literal
    client.orders.refund("o", "r", amount_fen="10")  # E: int
"""


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "mypy").exists(), reason="mypy is not installed"
)
def test_static_types_of_both_clients(tmp_path: Path) -> None:
    usage = tmp_path / "usage.py"
    usage.write_text(TYPED_USAGE)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "mypy"),
            "--strict",
            "--no-incremental",
            "--config-file=",
            str(usage),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        # The editable install's import hook is invisible to mypy: point it at the sources.
        env={**os.environ, "MYPYPATH": str(SDK)},
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, result.stdout
    assert '"tier"' in errors[0] and '"amount_fen"' in errors[1]
