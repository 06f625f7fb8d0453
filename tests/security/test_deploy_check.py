"""Production settings pass Django's deployment checks, warnings included."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Variables that would change what is checked: production is DEBUG=0 plus these three.
_OVERRIDES = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
              "SECURE_HSTS_PRELOAD", "DJANGO_SETTINGS_MODULE")  # fmt: skip


def _check_deploy(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    # A deployment never runs with DJANGO_ALLOW_ASYNC_UNSAFE (the browser tests set it).
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in _OVERRIDES and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, "SBS_VAR_DIR": str(tmp_path), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_production_settings_pass_check_deploy_and_a_weak_key_would_not(tmp_path):
    production = _check_deploy(
        tmp_path, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="example.org"
    )
    weak = _check_deploy(tmp_path, DEBUG="0", SECRET_KEY="short", ALLOWED_HOSTS="example.org")
    out, err = production.communicate(timeout=120)
    assert production.returncode == 0, out + err
    assert "no issues" in out
    # The same command fails on one warning: the pass above is not a formality.
    weak_out, weak_err = weak.communicate(timeout=120)
    assert weak.returncode != 0
    assert "security.W009" in weak_out + weak_err
