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


def _check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _OVERRIDES}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, "SBS_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = _check_deploy(
        tmp_path, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="example.org"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_catches_a_weak_secret_key(tmp_path):
    result = _check_deploy(tmp_path, DEBUG="0", SECRET_KEY="short", ALLOWED_HOSTS="example.org")
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout
