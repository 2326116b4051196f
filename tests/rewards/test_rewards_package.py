"""Package-level contracts: isolation from the web/DB stack, exports, integer-only money math."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rewards

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rewards"


def test_import_loads_neither_litestar_nor_piccolo() -> None:
    code = (
        "import sys, rewards, rewards.prizes, rewards.settlement\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'litestar', 'piccolo'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_all_names_exist_and_are_public() -> None:
    assert sorted(rewards.__all__) == sorted(set(rewards.__all__))
    for name in rewards.__all__:
        assert hasattr(rewards, name), name
        assert not name.startswith("_")


def test_public_api_of_the_brief_is_exported() -> None:
    expected = {
        "MAX_LEVELS", "validate_commission_rates", "split_commission", "cumulative_reversal",
        "RedPacketConfig", "validate_red_packet_config", "planned_count", "draw_per_invite",
        "split_pool_random", "split_pool_proportional", "Standing", "Ranked", "sort_key",
        "rank_standings", "PrizeTier", "Award", "validate_prize_table", "award_top_n",
        "split_pool_awards", "EntryAmount", "SettlementLine", "settle", "settlement_total",
        "fen_to_yuan_str", "RewardConfigError",
    }  # fmt: skip
    assert expected <= set(rewards.__all__)


def _sources() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_no_float_literals_or_true_division_in_money_code() -> None:
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offenders.append(f"{path.name}:{node.lineno} float literal")
            if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
                offenders.append(f"{path.name}:{node.lineno} true division")
            if isinstance(node, ast.Name) and node.id == "float":
                offenders.append(f"{path.name}:{node.lineno} float()")
    assert offenders == []


def test_no_io_or_server_imports() -> None:
    forbidden = {"litestar", "piccolo", "server", "os", "io", "socket", "sqlite3", "asyncpg"}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
    for path in _sources():
        assert "open(" not in path.read_text(encoding="utf-8"), path.name


def test_modules_stay_small() -> None:
    for path in _sources():
        assert len(path.read_text(encoding="utf-8").splitlines()) < 200, path.name
