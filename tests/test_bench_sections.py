"""Every benchmark is a section of ``python -m bench`` and takes the shared options.

The sections themselves run for minutes (``make bench``, ``python -m bench --quick``); here only
their wiring is checked: each module under bench/ is a section, ``--help`` lists it, and its
parser takes ``--quick`` (switching to its small sizes) and ``--engine``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import SECTIONS, main, module, parse_section

BENCH = Path(__file__).resolve().parents[1] / "bench"
HELPERS = {"__init__", "__main__", "harness", "loadgen", "bare_app"}


def test_every_bench_module_is_a_section() -> None:
    modules = {path.stem for path in BENCH.glob("*.py")} - HELPERS
    assert modules == set(SECTIONS.values())


def test_help_lists_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.split("sections:", 1)[1]
    assert [line.split()[0] for line in listed.strip().splitlines()] == list(SECTIONS)


@pytest.mark.parametrize("name", list(SECTIONS))
def test_section_takes_quick_and_engine(name: str) -> None:
    full, _ = parse_section(name, ["--engine", "sqlite"], strict=True)
    quick, _ = parse_section(name, ["--quick", "--engine", "postgres"], strict=True)
    assert (full.quick, full.engine, quick.quick, quick.engine) == (
        False, "sqlite", True, "postgres",
    )
    small = getattr(module(name), "QUICK", {})
    assert small, f"{name} has no QUICK sizes"
    for option, value in small.items():
        assert getattr(quick, option) == value != getattr(full, option)
    assert callable(module(name).run)


def test_the_readme_lists_every_section() -> None:
    readme = " ".join((BENCH.parent / "README.md").read_text(encoding="utf-8").split())
    listed = readme.split("lists the sections: ", 1)[1].split(";", 1)[0]
    assert listed.split(", ") == list(SECTIONS)


def test_an_explicit_option_beats_quick() -> None:
    args, _ = parse_section("top-distributor", ["--quick", "--entries", "5000"], strict=True)
    assert (args.entries, args.invitees) == (5000, 10_000)


def test_an_option_no_chosen_section_takes_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upline", "balances", "--no-such-option"]) == 2
    assert "--no-such-option" in capsys.readouterr().err
    assert main(["no-such-section"]) == 2
