"""A non-editable install works: the wheel carries templates, static files, translations and
the shipped data, and the site runs from it in another folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)

CHECK = """
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
import sbs
from sbs import assets
settings.ALLOWED_HOSTS = ["*"]
page = Client(HTTP_ACCEPT_LANGUAGE="ru").get("/login/")
print(sbs.__file__)
print(page.status_code, "Войти" in page.content.decode())
print(finders.find("js/vote.js"))
print((assets.DATA / "demo_questions_ru.jsonl").exists())
"""


def test_the_wheel_runs_the_site_from_another_folder(tmp_path):
    wheels, target, cwd = tmp_path / "wheels", tmp_path / "site", tmp_path / "run"
    cwd.mkdir()
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, ROOT], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("sbs-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PYTHONPATH=str(target), DJANGO_SETTINGS_MODULE="sbs.settings")
    run = [sys.executable, "-m", "sbs"]
    subprocess.run([*run, "migrate", "-v0"], check=True, cwd=cwd, env=env)
    out = subprocess.run(
        [*run, "shell", "-c", CHECK], check=True, cwd=cwd, env=env, capture_output=True, text=True
    ).stdout.splitlines()
    lines = [line for line in out if line.strip() and "objects imported" not in line]
    assert lines[0].startswith(str(target))  # the installed copy, not the checkout
    assert lines[1] == "200 True"  # a template, rendered in Russian from the shipped catalogue
    assert lines[2].startswith(str(target)) and lines[3] == "True"
    assert (cwd / "var" / "sbs.sqlite3").exists()  # state in the working folder
