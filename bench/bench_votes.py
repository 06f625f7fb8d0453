"""Bench: vote-submit latency over real HTTP against a real server (prints a table; not a test).

    python bench/bench_votes.py [--quick] [--only a,b-runserver,b-gunicorn,c] [--keep]

Every scenario gets a fresh var dir (SBS_VAR_DIR in a temp dir) and a fresh database
(SQLite under that dir, or a PostgreSQL database ``sbs_bench`` created and dropped here),
migrated with ``manage.py migrate``. A study with N annotators x M questions is written
straight into the database (two ModelEntry rows with dummy paths, answers of realistic
length and Markdown, no generation), then opened by the app's own service. The real server
runs as a subprocess on 127.0.0.1 and a free port:

- ``runserver``: ``manage.py runserver --noreload`` with the defaults, as ``make demo``
  serves (DEBUG on, threaded);
- ``gunicorn``: ``gunicorn sbs.wsgi:application --workers 4 --threads 4`` (gthread) with
  production settings (DEBUG=0); the client sends ``X-Forwarded-Proto: https`` and an
  ``Origin`` the way a TLS-terminating proxy in front of it would.

Each simulated annotator is one thread with its own ``requests.Session``: it logs in
(POST /login/ with the CSRF token, before the clock starts), then loops GET the vote page,
parse the hidden fields, (think,) POST a random choice without following the redirect.
POST and GET latencies are recorded separately. A POST whose outcome is unknown (an
exception) is never re-sent: the annotator GETs the page again and the server says whether
the pair is still open; a re-POST of the same assignment is counted in ``re-posts``.

After the run the server is stopped and the votes are counted in the database: stored must
equal acknowledged (a 302 without an error message on the next page), ``dup`` counts
assignments with more than one vote row, ``revisions`` counts vote changes (VoteRevision rows).
For gunicorn the server's own per-request time (access log ``%(D)s``) is shown beside the
client's. The second table says where the CPU went during the run, in cores: the server's
process group, the client (this process), PostgreSQL backends (every ``postgres`` process on
the machine) and everything else ("others": other work on a shared machine), with the
Linux CPU pressure (PSI "some", last 10 s). ``srv CPU/vote`` is the server's CPU time over
the votes stored (one GET and one POST each).

Options for investigating: ``--annotators/--votes/--think`` override the chosen scenarios,
``--server``/``--db``/``--workers``/``--threads`` change how they are served, ``--settings``
serves with another settings module (a variant importing ``sbs.settings``, found on
PYTHONPATH), ``--keep`` keeps the var dir with the server log.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, load_average, percentile, table  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "sbs_bench"
PASSWORD = "bench-annotator-pw-1"
CHOICES = ("left", "right", "tie", "both_bad")
FIELD_RE = re.compile(r'name="(assignment|shown|csrfmiddlewaretoken)" value="([^"]*)"')
MESSAGE_ERROR_RE = re.compile(r'<ul class="messages">.*?class="error"', re.S)


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    server: str  # "runserver" | "gunicorn"
    db: str  # "sqlite" | "postgres"
    annotators: int
    votes: int  # per annotator
    think: tuple[float, float] | None  # seconds, uniform
    target_p95_ms: float
    workers: int = 4  # gunicorn only
    threads: int = 4  # gunicorn only
    settings: str = ""  # another DJANGO_SETTINGS_MODULE, to try a variant

    @property
    def server_label(self) -> str:
        if self.server == "runserver":
            return "runserver"
        if self.server == "demo":
            return "demo: manage.py serve"
        return f"gunicorn {self.workers}w x {self.threads}t"


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("a", "(a) demo defaults", "demo", "sqlite", 5, 20, None, 150),
            Scenario("b-runserver", "(b) no think", "runserver", "sqlite", 10, 10, None, 300),
            Scenario("b-gunicorn", "(b) no think", "gunicorn", "sqlite", 10, 10, None, 300),
            Scenario("c", "(c) think time", "gunicorn", "postgres", 10, 5, (0.5, 2.0), 50),
        ]
    return [
        Scenario("a", "(a) demo defaults", "demo", "sqlite", 15, 78, None, 150),
        Scenario("b-runserver", "(b) no think", "runserver", "sqlite", 50, 20, None, 300),
        Scenario("b-gunicorn", "(b) no think", "gunicorn", "sqlite", 50, 20, None, 300),
        Scenario("c", "(c) think time", "gunicorn", "postgres", 50, 20, (0.5, 2.0), 50),
    ]


# ------------------------------------------------------------ inside Django (child process)


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sbs.settings")
    import django

    django.setup()


def _answer_text(label: str, question: dict[str, str]) -> str:
    reference = question.get("reference") or question["question"]
    return (
        f"{reference}\n\n"
        f"1. Первый пункт ответа модели «{label}».\n"
        "2. Второй пункт: **важная** деталь и `код`.\n\n"
        "```python\nprint('пример')\n```\n\n" + "Дополнительное пояснение к ответу. " * 10
    ).strip()


def setup_study(n_annotators: int, n_questions: int) -> dict[str, Any]:
    """Users, two dummy models, a question set, answers; the study opened by the service."""
    _django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from sbs.catalog.models import ModelEntry
    from sbs.questions import services as question_services
    from sbs.studies import services
    from sbs.studies.models import Answer, GenerationRun, Study

    User = get_user_model()
    hashed = make_password(PASSWORD)  # hashed once: 50 create_user calls would take ~30 s
    owner = User.objects.create_user("bench-researcher", password=None)
    names = [f"annotator{i:03d}" for i in range(n_annotators)]
    User.objects.bulk_create([User(username=name, password=hashed) for name in names])
    users = list(User.objects.filter(username__in=names).order_by("username"))

    demo = [
        json.loads(line)
        for line in (ROOT / "data" / "demo_questions_ru.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    rows = []
    for i in range(n_questions):
        q = dict(demo[i % len(demo)])
        q["id"] = f"{q['id']}-{i // len(demo)}" if i >= len(demo) else q["id"]
        rows.append(q)
    by_id = {q["id"]: q for q in rows}
    qset = question_services.question_set_import(
        name="bench questions",
        data="\n".join(json.dumps(q, ensure_ascii=False) for q in rows).encode(),
        filename="bench.jsonl",
    )
    models = [
        ModelEntry.objects.create(
            name=f"bench-model-{x}",
            kind=ModelEntry.Kind.GGUF,
            path=f"/nonexistent/bench-model-{x}.gguf",
            sha256=str(x) * 64,
        )
        for x in ("a", "b")
    ]
    study = services.study_create(
        owner=owner,
        name="bench",
        question_set=qset,
        model_a=models[0],
        model_b=models[1],
        generation={"max_new_tokens": 64, "batch_size": 16},
        seed=7,
    )
    services.study_add_annotators(study=study, users=users)
    for label, model in zip(("альфа", "бета"), models, strict=True):
        run = GenerationRun.objects.create(
            study=study,
            model=model,
            status=GenerationRun.Status.DONE,
            total_count=n_questions,
            done_count=n_questions,
        )
        Answer.objects.bulk_create(
            Answer(
                run=run,
                question=q,
                text=_answer_text(label, by_id[q.external_id]),
                prompt_tokens=40,
                new_tokens=64,
                seconds=2.0,
                stop_reason="length",
            )
            for q in qset.questions.all()
        )
    Study.objects.filter(pk=study.pk).update(status=Study.Status.GENERATING)
    if not services.study_open_if_ready(study_id=study.pk):
        raise SystemExit("the bench study did not open")
    return {"study_id": study.pk, "annotators": names}


def count_votes(study_id: int) -> dict[str, Any]:
    _django()
    from django.db.models import Count

    from sbs.studies.models import Assignment
    from sbs.voting.models import Vote, VoteRevision

    votes = Vote.objects.filter(assignment__pair__study_id=study_id)
    stored = [
        [name, aid] for name, aid in votes.values_list("assignment__annotator__username", "assignment_id")
    ]  # fmt: skip
    dup = (
        votes.values("assignment_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )  # 0 by the one-to-one constraint; counted anyway
    return {
        "stored": stored,
        "dup": dup,
        "revisions": VoteRevision.objects.filter(vote__assignment__pair__study_id=study_id).count(),
        "assignments": Assignment.objects.filter(pair__study_id=study_id).count(),
    }


# ------------------------------------------------------------------- the client side


@dataclass
class AnnotatorStats:
    username: str
    post_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # assignment ids answered 302
    refused: int = 0  # 302 but the next page carried an error message
    reposts: int = 0  # POSTs of an assignment this annotator had already POSTed
    finished: bool = False


class Annotator:
    def __init__(self, base: str, username: str, behind_proxy: bool, seed: int) -> None:
        import requests

        self.base, self.stats = base, AnnotatorStats(username)
        self.session = requests.Session()
        self.rng = random.Random(seed)
        if behind_proxy:
            self.session.headers["X-Forwarded-Proto"] = "https"
            self.session.headers["Origin"] = "https://" + base.split("://", 1)[1]
        self.behind_proxy = behind_proxy

    def _request(self, method: str, url: str, **kw: Any) -> Any:
        response = self.session.request(method, url, **kw)
        if self.behind_proxy:  # the bench stands in for the TLS proxy: Secure cookies go
            for cookie in self.session.cookies:  # back over plain HTTP
                cookie.secure = False
        return response

    def login(self) -> None:
        url = self.base + "/login/"
        page = self._request("GET", url, timeout=60)
        token = dict(FIELD_RE.findall(page.text))["csrfmiddlewaretoken"]
        r = self._request(
            "POST",
            url,
            data={
                "csrfmiddlewaretoken": token,
                "username": self.stats.username,
                "password": PASSWORD,
            },
            allow_redirects=False,
            timeout=120,
        )
        if r.status_code != 302:
            raise RuntimeError(f"login of {self.stats.username} failed: HTTP {r.status_code}")

    def run(
        self, study_id: int, votes: int, think: tuple[float, float] | None, start: threading.Barrier
    ) -> None:
        url = f"{self.base}/annotate/{study_id}/"
        st = self.stats
        posted: dict[int, str] = {}
        last_acked: int | None = None
        start.wait()
        attempts = 0
        while attempts < votes * 3:
            began = time.perf_counter()
            try:
                page = self._request("GET", url, timeout=120, allow_redirects=False)
            except Exception as exc:  # a GET is safe to repeat
                st.errors.append(f"GET {type(exc).__name__}")
                time.sleep(0.1)
                attempts += 1
                continue
            st.get_ms.append((time.perf_counter() - began) * 1000)
            if page.status_code != 200:
                st.errors.append(f"GET {page.status_code}")
                attempts += 1
                continue
            if last_acked is not None and MESSAGE_ERROR_RE.search(page.text):
                st.refused += 1
                st.acked.remove(last_acked)
            last_acked = None
            fields = dict(FIELD_RE.findall(page.text))
            if "assignment" not in fields:  # every pair judged
                st.finished = True
                break
            aid = int(fields["assignment"])
            if aid not in posted and len(posted) >= votes:
                break
            if think:
                time.sleep(self.rng.uniform(*think))
            if aid in posted:
                st.reposts += 1
            choice = posted.setdefault(aid, self.rng.choice(CHOICES))
            data = {
                "csrfmiddlewaretoken": fields["csrfmiddlewaretoken"],
                "assignment": str(aid),
                "shown": fields["shown"],
                "choice": choice,
                "comment": "",
            }
            attempts += 1
            began = time.perf_counter()
            try:
                r = self._request("POST", url, data=data, timeout=120, allow_redirects=False)
            except Exception as exc:  # outcome unknown: never re-send; the next GET tells
                st.errors.append(f"POST {type(exc).__name__}")
                continue
            st.post_ms.append((time.perf_counter() - began) * 1000)
            if r.status_code == 302:
                st.acked.append(aid)
                last_acked = aid
            else:
                st.errors.append(f"POST {r.status_code}")


# ------------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DB
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


def cpu_snapshot(server_pgid: int) -> dict[str, float]:
    """CPU seconds so far: the whole machine (busy), the server's process group, PostgreSQL
    backends, and this process (the client threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    server = postgres = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()  # after the name: state ppid pgrp ... utime(11) stime(12)
        used = int(fields[11]) + int(fields[12])
        if int(fields[2]) == server_pgid:
            server += used
        elif head.endswith("(postgres"):
            postgres += used
    return {
        "busy": busy / tick,
        "server": server / tick,
        "postgres": postgres / tick,
        "client": time.process_time(),
    }


def cpu_pressure() -> float:
    """Linux PSI: share of the last 10 s in which some runnable task waited for a CPU (%)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return float("nan")


class Server:
    def __init__(self, sc: Scenario, env: dict[str, str], var_dir: Path) -> None:
        kind = sc.server
        self.kind, self.port = kind, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.access_log = var_dir / "access.log"
        self.log_path = var_dir / "server.log"
        if kind == "runserver":
            cmd = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
        elif kind == "demo":  # exactly what `make demo` serves with
            cmd = [sys.executable, "manage.py", "serve", f"127.0.0.1:{self.port}"]
        else:
            cmd = [
                sys.executable, "-m", "gunicorn", "sbs.wsgi:application",
                "--workers", str(sc.workers), "--threads", str(sc.threads),
                "--bind", f"127.0.0.1:{self.port}", "--access-logfile", str(self.access_log),
                "--keep-alive", "75",
                "--access-logformat", "%(m)s %(U)s %(s)s %(D)s", "--log-level", "warning",
            ]  # fmt: skip
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )  # fmt: skip
        import requests

        headers = {"X-Forwarded-Proto": "https"} if kind == "gunicorn" else {}
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited at start; see {self.log_path}")
            try:
                if (
                    requests.get(self.base + "/login/", headers=headers, timeout=5).status_code
                    == 200
                ):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer in 90 s; see {self.log_path}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def server_post_ms(self) -> list[float]:
        if not self.access_log.exists():
            return []
        out = []
        for line in self.access_log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "POST" and parts[1].startswith("/annotate/"):
                out.append(int(parts[3]) / 1000.0)
        return out


def run_scenario(sc: Scenario, keep: bool) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix=f"sbs-bench-votes-{sc.key}-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    env.update(SBS_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING")
    if sc.server == "gunicorn":
        env.update(DEBUG="0", SECRET_KEY="bench-" + "k" * 50, ALLOWED_HOSTS="127.0.0.1")
    if sc.settings:  # a variant module importable from the current directory or PYTHONPATH
        env["DJANGO_SETTINGS_MODULE"] = sc.settings
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    with contextlib.ExitStack() as stack:
        if sc.db == "postgres":
            env["DATABASE_URL"] = stack.enter_context(postgres_database())
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )  # fmt: skip
        made = child_json(["--setup", str(sc.annotators), str(sc.votes)], env)
        server = Server(sc, env, var_dir)
        try:
            clients = [
                Annotator(server.base, name, sc.server == "gunicorn", seed=i)
                for i, name in enumerate(made["annotators"])
            ]
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda c: c.login(), clients))
            barrier = threading.Barrier(len(clients) + 1)
            threads = [
                threading.Thread(target=c.run, args=(made["study_id"], sc.votes, sc.think, barrier))
                for c in clients
            ]
            for t in threads:
                t.start()
            load_before = load_average()
            cpu0 = cpu_snapshot(server.proc.pid)
            barrier.wait()
            began = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - began
            cpu1 = cpu_snapshot(server.proc.pid)
            pressure = cpu_pressure()
        finally:
            server.stop()
        counted = child_json(["--count", str(made["study_id"])], env)
    server_ms = server.server_post_ms()
    stats = [c.stats for c in clients]
    acked = {(s.username, a) for s in stats for a in s.acked}
    stored = {(name, aid) for name, aid in counted["stored"]}
    result = {
        "sc": sc,
        "post": [x for s in stats for x in s.post_ms],
        "get": [x for s in stats for x in s.get_ms],
        "server_post": server_ms,
        "wall": wall,
        "errors": [e for s in stats for e in s.errors],
        "acked": len(acked),
        "acked_posts": sum(len(s.acked) for s in stats),
        "stored": len(counted["stored"]),
        "lost": len(acked - stored),
        "unacked_stored": len(stored - acked),
        "dup": counted["dup"],
        "revisions": counted["revisions"],
        "refused": sum(s.refused for s in stats),
        "reposts": sum(s.reposts for s in stats),
        "cores": {k: (cpu1[k] - cpu0[k]) / wall for k in cpu0},
        "server_cpu_per_vote_ms": (cpu1["server"] - cpu0["server"])
        * 1000
        / max(1, len(counted["stored"])),
        "pressure": pressure,
        "load": f"{load_before} -> {load_average()}",
        "var_dir": var_dir,
    }
    if keep:
        print(f"  kept {var_dir}", flush=True)
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
    return result


def fmt(x: float) -> str:
    return "-" if x != x else (f"{x:.0f}" if x >= 100 else f"{x:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scenarios (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated: a,b-runserver,b-gunicorn,c")
    parser.add_argument("--keep", action="store_true", help="keep the temp var dirs and logs")
    parser.add_argument("--annotators", type=int, help="override the chosen scenarios' count")
    parser.add_argument("--votes", type=int, help="override the votes per annotator")
    parser.add_argument("--think", help="override the think time, e.g. 0.5-2 (0: none)")
    parser.add_argument(
        "--server", choices=["runserver", "gunicorn", "demo"], help="override the server"
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], help="override the database")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--settings", help="DJANGO_SETTINGS_MODULE for the server (a variant)")
    parser.add_argument("--setup", nargs=2, type=int, metavar=("ANNOTATORS", "QUESTIONS"), help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--count", type=int, metavar="STUDY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        print(json.dumps(setup_study(*args.setup)))
        return
    if args.count is not None:
        print(json.dumps(count_votes(args.count)))
        return

    chosen = [s for s in scenarios(args.quick) if not args.only or s.key in args.only.split(",")]
    overrides: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("annotators", "votes", "server", "db", "workers", "threads", "settings")
        if getattr(args, k) is not None
    }
    if args.think is not None:
        lo, _, hi = args.think.partition("-")
        overrides["think"] = None if float(lo) == 0 and not hi else (float(lo), float(hi or lo))
    chosen = [dataclasses.replace(s, **overrides) for s in chosen]
    print(f"load average at start: {load_average()} ({os.cpu_count()} CPUs)", flush=True)
    results = []
    for sc in chosen:
        print(
            f"- {sc.label}: {sc.server}, {sc.db}, {sc.annotators} annotators x {sc.votes} votes"
            + (f", think {sc.think[0]}-{sc.think[1]} s" if sc.think else ""),
            flush=True,
        )
        r = run_scenario(sc, args.keep)
        print(
            f"  {r['wall']:.1f} s, POST p95 {fmt(percentile(r['post'], 95))} ms, "
            f"errors {len(r['errors'])}, load {r['load']}",
            flush=True,
        )
        if r["errors"]:
            kinds: dict[str, int] = {}
            for e in r["errors"]:
                kinds[e] = kinds.get(e, 0) + 1
            print(f"  errors: {kinds}", flush=True)
        results.append(r)

    rows = []
    for r in results:
        rs: Scenario = r["sc"]
        p95 = percentile(r["post"], 95)
        rows.append(
            [
                rs.label,
                rs.server_label + (f" [{rs.settings}]" if rs.settings else ""),
                rs.db,
                f"{rs.annotators} x {rs.votes}",
                f"{rs.think[0]}-{rs.think[1]} s" if rs.think else "0",
                fmt(percentile(r["post"], 50)),
                fmt(p95),
                fmt(percentile(r["post"], 99)),
                fmt(percentile(r["get"], 50)),
                fmt(percentile(r["get"], 95)),
                f"{r['acked'] / r['wall']:.1f}",
                len(r["errors"]),
                r["acked"],
                r["stored"],
                r["lost"],
                r["dup"],
                r["reposts"],
                f"< {rs.target_p95_ms:.0f} {'ok' if p95 < rs.target_p95_ms else 'MISSED'}",
            ]
        )
    table(
        "Vote submit over real HTTP (latencies in ms, client side)",
        [
            "scenario", "server", "db", "annot x votes", "think", "POST p50", "POST p95",
            "POST p99", "GET p50", "GET p95", "votes/s", "errors", "acked", "stored", "lost",
            "dup", "re-posts", "p95 target",
        ],
        rows,
    )  # fmt: skip
    table(
        "The same runs: server-side time, CPU (cores busy during the run), consistency",
        [
            "scenario", "server", "srv POST p50", "srv POST p95", "srv CPU/vote ms",
            "server", "client", "postgres", "others", "CPU PSI some10", "wall s", "refused",
            "stored not acked", "revisions", "load 1/5/15 min",
        ],
        [
            [
                r["sc"].label,
                r["sc"].server_label,
                fmt(percentile(r["server_post"], 50)),
                fmt(percentile(r["server_post"], 95)),
                fmt(r["server_cpu_per_vote_ms"]),
                f"{r['cores']['server']:.2f}",
                f"{r['cores']['client']:.2f}",
                f"{max(0.0, r['cores']['postgres']):.2f}",
                f"{max(0.0, r['cores']['busy'] - r['cores']['server'] - r['cores']['client'] - r['cores']['postgres']):.2f}",
                f"{r['pressure']:.0f}%",
                f"{r['wall']:.1f}",
                r["refused"],
                r["unacked_stored"],
                r["revisions"],
                r["load"],
            ]
            for r in results
        ],
    )  # fmt: skip
    print(
        "\nacked: distinct (annotator, assignment) answered 302 with no error message after;"
        "\nstored: vote rows in the database after the run; lost = acked but not stored;"
        "\ndup: assignments with more than one vote row; re-posts: POSTs the client repeated."
    )


if __name__ == "__main__":
    main()
