"""The repository documents itself: every served route is in docs/api.md, nothing points outside."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _served_routes(client: Any) -> set[str]:
    routes = set()
    for route in client.app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for method in getattr(route, "methods", ()):
            if method not in ("HEAD", "OPTIONS"):
                routes.add(f"{method} {path}")
    return routes


def test_every_served_route_is_documented(client: Any) -> None:
    guide = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = sorted(r for r in _served_routes(client) if f"`{r}`" not in guide)
    assert not missing, f"docs/api.md lacks: {missing}"


def test_nothing_in_the_repository_points_outside_it() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"\.\./shared|\bshared/(API|DOMAIN|STYLE)\.md")
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg", ".yml", ".yaml"}:
            continue
        if path == Path(__file__).resolve():
            continue
        if outside.search(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(name)
    assert not offenders, f"these files point outside the repository: {offenders}"


def test_docs_links_resolve() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
