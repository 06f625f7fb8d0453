"""Bench: where one vote's server CPU goes, in process (prints tables; not a test).

    python bench/bench_vote_profile.py [--votes 78] [--top 18]

A fresh SQLite database under a temp var dir is migrated and given the votes bench's study
(bench_votes.setup_study: dummy models, answers with Markdown, opened by the service). In this
one process, through Django's test client (the whole middleware stack, sessions, auth,
templates, the database; no sockets):

1. **the app**: one annotator casts ``--votes`` votes (GET the page, POST a choice), CPU time
   per vote (``time.process_time``) with its median and p95, and the queries per GET/POST;
2. **the floor**: the same number of votes against a minimal Django page in the same process,
   the issue's reference: two pre-rendered answers in a small template, one INSERT per POST,
   the same session and auth middleware; the ratio app / floor says what is left to gain;
3. **the profile**: a second annotator's votes under cProfile, the time by area (database,
   templates, Markdown, sessions and auth, middleware, forms and signing, the rest) and the
   functions with the most own time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import load_average, percentile, table  # noqa: E402

AREAS = (  # (area, substrings of "file:function" in the profile), first match wins
    ("database", ("sqlite3", "psycopg", "db/backends", "db/models/sql/compiler")),
    ("ORM (building queries)", ("db/models",)),
    ("templates", ("template/",)),
    ("Markdown", ("markdown", "nh3")),
    ("sessions and auth", ("contrib/sessions", "contrib/auth", "sbs/accounts")),
    ("forms, signing, CSRF", ("forms/", "core/signing", "middleware/csrf")),
    ("middleware and handlers", ("core/handlers", "middleware", "utils/deprecation")),
    ("test client", ("django/test",)),
)


def _setup_env() -> Path:
    var_dir = Path(tempfile.mkdtemp(prefix="sbs-bench-vote-profile-"))
    for key in ("DATABASE_URL", "REDIS_URL", "DEBUG", "CACHE_URL"):
        os.environ.pop(key, None)
    os.environ.update(SBS_VAR_DIR=str(var_dir), DEBUG="0", SECRET_KEY="bench-" + "k" * 50,
                      ALLOWED_HOSTS="testserver", LOG_LEVEL="WARNING")  # fmt: skip
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                   env=os.environ.copy(), check=True)  # fmt: skip
    return var_dir


def _secure_client() -> Any:
    from django.test import Client

    # DEBUG off means HTTPS-only cookies: the client speaks "https" as a proxy would.
    return Client(HTTP_X_FORWARDED_PROTO="https", secure=True)


def _vote_loop(client: Any, url: str, votes: int) -> tuple[list[float], list[tuple[int, int]]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cpu: list[float] = []
    queries: list[tuple[int, int]] = []
    for _ in range(votes):
        started = time.process_time()
        with CaptureQueriesContext(connection) as get:
            html = client.get(url).content.decode()
        fields = dict(re.findall(r'name="(assignment|shown)" value="([^"]+)"', html))
        if "assignment" not in fields:
            break
        with CaptureQueriesContext(connection) as post:
            response = client.post(url, {**fields, "choice": "left", "comment": ""})
        cpu.append((time.process_time() - started) * 1000)
        assert response.status_code == 302, response.status_code
        queries.append((len(get.captured_queries), len(post.captured_queries)))
    return cpu, queries


def _floor(votes: int, user: Any) -> list[float]:
    """The minimal vote: a small template with two pre-rendered answers; one INSERT per POST."""
    from django.db import connection
    from django.http import HttpRequest, HttpResponse
    from django.shortcuts import redirect
    from django.template import engines
    from django.test import override_settings
    from django.urls import path

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, "
                       "user_id INTEGER, choice TEXT)")  # fmt: skip
    page = engines["django"].from_string(
        "<!doctype html><html><body><form method=post>{% csrf_token %}"
        "<div>{{ left|safe }}</div><div>{{ right|safe }}</div>"
        "<button name=choice value=left>L</button></form></body></html>"
    )
    left = "<p>" + "Ответ модели, уже отрисованный. " * 40 + "</p>"

    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_floor (user_id, choice) VALUES (%s, %s)",
                               [request.user.pk, request.POST.get("choice", "")])  # fmt: skip
            return redirect("/floor/")
        return HttpResponse(page.render({"left": left, "right": left}, request))

    module = type(sys)("bench_floor_urls")
    module.urlpatterns = [path("floor/", view)]  # type: ignore[attr-defined]
    sys.modules["bench_floor_urls"] = module
    client = _secure_client()
    client.force_login(user)
    cpu = []
    with override_settings(ROOT_URLCONF="bench_floor_urls"):
        for _ in range(votes):
            started = time.process_time()
            html = client.get("/floor/").content.decode()
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
            client.post("/floor/", {"choice": "left",
                                    "csrfmiddlewaretoken": token.group(1) if token else ""})  # fmt: skip
            cpu.append((time.process_time() - started) * 1000)
    return cpu


def _areas(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{filename}:{function}"
        area = next((a for a, marks in AREAS if any(m in key for m in marks)), "the rest")
        totals[area] = totals.get(area, 0.0) + own
    return sorted(totals.items(), key=lambda kv: -kv[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=78)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    var_dir = _setup_env()
    from bench.bench_votes import setup_study

    made = setup_study(2, args.votes)  # sets Django up
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    User = get_user_model()
    first, second = (User.objects.get(username=n) for n in made["annotators"])
    url = reverse("voting:vote", args=[made["study_id"]])
    print(f"var dir {var_dir}; load average {load_average()}")

    client = _secure_client()
    client.force_login(first)
    client.get(url)  # warm: imports, template loading, the Markdown cache's first fills
    app, queries = _vote_loop(client, url, args.votes)
    floor = _floor(len(app), first)
    table(
        f"CPU per vote (GET + POST), in process, {len(app)} votes, SQLite, DEBUG off",
        ["path", "median ms", "p95 ms", "mean ms", "queries GET / POST"],
        [["sbs vote page", f"{statistics.median(app):.2f}", f"{percentile(app, 95):.2f}",
          f"{statistics.fmean(app):.2f}", "{} / {}".format(*queries[len(queries) // 2])],
         ["minimal Django vote (floor)", f"{statistics.median(floor):.2f}",
          f"{percentile(floor, 95):.2f}", f"{statistics.fmean(floor):.2f}", "- / 1 insert"],
         ["ratio sbs / floor", f"{statistics.median(app) / statistics.median(floor):.2f}x",
          "", "", ""]],
    )  # fmt: skip

    client = _secure_client()
    client.force_login(second)
    client.get(url)
    profiler = cProfile.Profile()
    profiler.enable()
    profiled, _ = _vote_loop(client, url, args.votes)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(own for area, own in _areas(stats))
    table(
        f"Where the time goes (cProfile own time, {len(profiled)} votes; the profiler itself "
        "inflates every figure, the shares are what to read)",
        ["area", "ms per vote", "share"],
        [[area, f"{own * 1000 / len(profiled):.2f}", f"{own / total:.0%}"]
         for area, own in _areas(stats)],
    )  # fmt: skip
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]  # type: ignore[attr-defined]
    table(
        "Functions with the most own time",
        ["function", "calls per vote", "own ms per vote"],
        [[f"{Path(f).name}:{line} {fn}"[:90], f"{nc / len(profiled):.1f}",
          f"{own * 1000 / len(profiled):.3f}"]
         for (f, line, fn), (_cc, nc, own, _cum, _callers) in rows],
    )  # fmt: skip


if __name__ == "__main__":
    main()
