"""The README's walk-through runs as written.

Against conftest.target's real API (the app in-process, or a live server): the code blocks are
the same, only the clients' transport is swapped in.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import liebian_sdk
import pytest
from liebian_sdk import Client, webhooks
from sdk_testing import Target

README = Path(__file__).resolve().parents[2] / "sdk" / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def run_readme(target: Target, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("LIEBIAN_BASE_URL", target.base_url)
    monkeypatch.setenv("LIEBIAN_ADMIN_KEY", target.admin_key)
    monkeypatch.setenv("LIEBIAN_SDK_KEY", target.sdk_key)
    monkeypatch.setenv("LIEBIAN_WEBHOOK_SECRET", target.webhook_secret)
    # The blocks build their own clients: hand them the target's transports.
    for name, transport in [
        ("Client", target.sync_transport),
        ("AsyncClient", target.async_transport),
    ]:
        if transport is not None:
            cls = getattr(liebian_sdk, name)
            monkeypatch.setattr(liebian_sdk, name, functools.partial(cls, transport=transport))
    namespace: dict[str, Any] = {"__name__": "readme"}
    try:
        for number, block in enumerate(python_blocks(), 1):
            code = compile(block, f"{README}:block{number}", "exec")
            exec(code, namespace)  # noqa: S102 - the README's own code, run as documented
    except BaseException:
        # The walk-through closes its client at the end; when a step fails, close it here.
        for value in namespace.values():
            if isinstance(value, Client):
                value.close()
        raise
    return namespace


def test_readme_has_the_walk_through() -> None:
    text = "\n".join(python_blocks())
    for step in ("upsert", "referrals.bind", "orders.paid", "orders.refund", "posters.get"):
        assert step in text
    for step in ("leaderboards.rank", "balance", "webhooks.verify"):
        assert step in text


def test_readme_runs_as_written(
    target: Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = run_readme(target, monkeypatch)

    assert isinstance(ns["campaign"], liebian_sdk.Campaign)
    assert ns["referral"].outcome in {"bound", "kept"}
    assert ns["referral"].inviter_id == "openid-alice"
    assert ns["poster"].startswith(b"\x89PNG")
    assert isinstance(ns["me"].balance, liebian_sdk.Balance)
    assert "refused:" in capsys.readouterr().out

    body = b'{"type": "order.paid", "data": {"order_id": "wx-order-1001"}}'
    handler = ns["handle_liebian_webhook"]
    assert handler(body, webhooks.sign(body, target.webhook_secret)) == 204
    assert handler(body, webhooks.sign(body, "another-secret")) == 400


def test_readme_figures_on_the_app(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    if target.name != "app":
        pytest.skip("exact figures need a fresh tenant; the live run is checked above")
    ns = run_readme(target, monkeypatch)

    # Program [1000, 500] bp: Bob, bound to Alice, pays 19,900 fen; 5,000 fen come back.
    assert ns["referral"].outcome == "bound"
    assert [(c.distributor_id, c.level, c.amount_fen) for c in ns["order"].commissions] == [
        ("openid-alice", 1, 1990)
    ]
    assert sum(r.amount_fen for r in ns["refund"].reversals) == -500
    assert (ns["standing"].rank, ns["standing"].score) == (1, 1)
    assert (ns["me"].balance.pending_fen, ns["me"].balance.available_fen) == (1490, 0)
