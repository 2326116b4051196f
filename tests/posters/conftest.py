"""Fixtures for the poster tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from poster_helpers import clear_font_state


@pytest.fixture
def fresh_fonts(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Font resolution from scratch; the process-wide choice is restored afterwards."""
    clear_font_state()
    yield monkeypatch
    monkeypatch.undo()
    clear_font_state()
