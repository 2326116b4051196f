"""The ``liebian`` command line, run as a user would (a subprocess, JSON on stdout)."""

from __future__ import annotations

import json
import os
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
