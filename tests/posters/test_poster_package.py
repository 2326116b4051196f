"""The package boundary: pure imports and a deliberate public API."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import posters

ROOT = Path(__file__).resolve().parents[2]


def test_import_loads_no_web_framework_or_database() -> None:
    script = (
        "import sys, posters\n"
        "posters.render_poster(posters.default_template(),"
        " posters.PosterData(nickname='x', link='https://x.cn'))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('litestar', 'piccolo', 'httpx', 'server', 'asyncpg', 'redis'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == ""


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name for name, value in vars(posters).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }  # fmt: skip
    assert set(posters.__all__) == public - {"annotations"}
    assert sorted(posters.__all__) == posters.__all__
    for name in posters.__all__:
        assert getattr(posters, name) is not None


def test_errors_form_one_hierarchy() -> None:
    assert issubclass(posters.PosterTemplateError, posters.PosterError)
    assert issubclass(posters.PosterTemplateError, ValueError)
    assert issubclass(posters.FontNotFoundError, posters.PosterError)
