"""The house layout: controllers translate HTTP, nothing else.

Handlers get ``db``, ``tenant_id``, ``program`` and ``settings`` from Litestar's DI
(:mod:`server.dependencies`) and answer with :mod:`server.responses`, typed as the model they
carry, so mypy strict checks them without exceptions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "server"
HTTP_MODULES = sorted([*SERVER.glob("*/controller.py"), *SERVER.glob("console/*.py")])


@pytest.mark.parametrize("path", HTTP_MODULES, ids=lambda p: str(p.relative_to(SERVER)))
def test_http_modules_are_typed_and_injected(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "type: ignore" not in text
    assert "request.app.state.db" not in text, "take `db: Db` from server.dependencies"
    assert "request.auth.tenant_id" not in text, "take `tenant_id: TenantId`"
    assert "run_idempotent" not in text, "use server.responses.idempotent (typed)"


@pytest.mark.parametrize(
    "path", sorted(SERVER.glob("*/controller.py")), ids=lambda p: str(p.relative_to(SERVER))
)
def test_api_controllers_run_no_sql_and_open_no_transaction(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for word in (".fetch", ".execute", "SELECT ", "INSERT ", "UPDATE ", "DELETE ", ".transaction("):
        assert word not in text, f"{word!r}: SQL and transactions live in the domain's service"


def test_every_domain_controller_is_found() -> None:
    assert len([p for p in HTTP_MODULES if p.name == "controller.py"]) >= 11
