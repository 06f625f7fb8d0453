"""Bench: a study of three systems run end to end through the HTTP API, timed (not a test).

    python bench/bench_api_many_systems.py [--questions 78] [--annotators 5] [--budget 156]

A fresh var dir (SQLite) is migrated, a researcher and its API token are made with
``manage.py create_api_token``, and the demo's server (``manage.py serve``: gunicorn) runs
on a free port. Then, over real HTTP with ``requests``, as a researcher's script would:

1. import the shipped questions (``data/demo_questions_ru.jsonl``, cut to ``--questions``);
2. import a file of three systems' answers (written here: each question's reference text
   when it has one, changed per system, so the systems differ in length and detail; no model
   runs, which is the point of answers from anywhere);
3. create a study of the three with a pair budget, add annotators, start it (it opens at
   once: the answers are imported);
4. each annotator gets a token (``create_api_token``) and votes through ``/api/annotate``
   until nothing is left, preferring the systems in a fixed order of strength with logistic
   noise (Bradley–Terry with strengths 0, 0.5, 1), so the ranking has a right answer;
5. the researcher polls ``/results`` until the report job (``--worker``: a Celery worker on the
   embedded queue) has computed it, and prints the ranking and the pairwise verdicts.

Every step's wall time is printed in a table, with the votes per second of step 4.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench._common import ROOT, load_average, table  # noqa: E402

PY = sys.executable
SYSTEMS = {"baseline-api": 0.0, "vllm-run": 0.5, "ours-adapted": 1.0}


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_file(questions: list[dict[str, Any]], path: Path) -> None:
    """Three systems' answers: the reference (or the question restated), per system shorter
    or longer, never the same text (the simulated annotators tell the systems by it)."""
    with path.open("w", encoding="utf-8") as f:
        for q in questions:
            base = q.get("reference") or f"Ответ на вопрос: {q['question']}"
            texts = {
                "baseline-api": "Коротко: " + base.split(".")[0] + ".",
                "vllm-run": base,
                "ours-adapted": f"{base}\n\n- Кратко: {base.split('.')[0].lower()}.",
            }
            for system, text in texts.items():
                row = {"question_id": q["id"], "system": system, "answer": text}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=78)
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--budget", type=int, default=156, help="pairs to judge")
    parser.add_argument("--per-pair", type=int, default=2, help="judgments per pair")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="sbs-api-bench-"))
    env = {**os.environ, "SBS_VAR_DIR": str(var)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    timings: list[tuple[str, float]] = []
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings.append((name, now - clock))
        clock = now

    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "shell", "-c", "from tests import factories; factories.researcher('scientist')")
    token = manage(env, "create_api_token", "scientist").split()[-1]
    port = free_port()
    server = subprocess.Popen(
        [PY, "manage.py", "serve", f"127.0.0.1:{port}"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = subprocess.Popen(
        [PY, "-m", "celery", "-A", "workers", "worker", "-Q", "gpu,default", "-c", "1",
         "-P", "solo", "-l", "warning"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(100):
            try:
                requests.get(url + "/openapi.json", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or still starting
                time.sleep(0.5)
        lap("set up (migrate, token, server start)")

        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"

        def call(method: str, path: str, session: requests.Session = api, **kw: Any) -> Any:
            response = session.request(method, url + path, timeout=120, **kw)
            if response.status_code >= 400:
                raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
            return response

        lines = (ROOT / "data" / "demo_questions_ru.jsonl").read_text().splitlines()
        questions = [json.loads(line) for line in lines[: args.questions]]
        qfile, afile = var / "questions.jsonl", var / "answers.jsonl"
        qfile.write_text("\n".join(lines[: args.questions]) + "\n")
        answers_file(questions, afile)
        with qfile.open("rb") as f:
            qset = call("POST", "/question-sets", data={"name": "bench"}, files={"file": f}).json()
        lap(f"1. import {len(questions)} questions")
        with afile.open("rb") as f:
            systems = call("POST", f"/question-sets/{qset['id']}/answers", files={"file": f}).json()
        ids = {s["name"]: s["id"] for s in systems}
        lap(f"2. import {3 * len(questions)} answers of 3 systems")
        settings = {
            "name": "three systems", "question_set": qset["id"], "model_a": ids["baseline-api"],
            "model_b": ids["vllm-run"], "more_models": [ids["ours-adapted"]],
            "judgments_per_pair": args.per_pair, "pair_budget": args.budget,
        }  # fmt: skip
        study = call("POST", "/studies", json=settings).json()
        base = f"/studies/{study['id']}"
        names = [f"annotator{k}" for k in range(args.annotators)]
        added = call("POST", f"{base}/annotators", json={"names": names}).json()
        call("POST", f"{base}/start")
        status = call("GET", base).json()
        lap(f"3. create, add {args.annotators} annotators, start ({status['status']})")

        sessions = []
        for invite in added["invites"]:
            s = requests.Session()
            s.headers["Authorization"] = (
                "Bearer " + manage(env, "create_api_token", invite["username"]).split()[-1]
            )
            sessions.append(s)
        lap("   annotators' tokens (manage.py, not timed below)")
        rng = random.Random(7)
        by_text = {}
        for line in afile.read_text().splitlines():
            row = json.loads(line)
            by_text[(row["question_id"], row["answer"])] = row["system"]
        qtext = {q["question"]: q["id"] for q in questions}
        votes = 0
        started = time.perf_counter()
        for s in sessions:
            while (pair := call("GET", f"/annotate{base}", session=s).json()["pair"]) is not None:
                q = qtext.get(pair["question"])
                left = SYSTEMS[by_text[(q, pair["left"])]]
                right = SYSTEMS[by_text[(q, pair["right"])]]
                p_left = 1 / (1 + math.exp(right - left))
                u = rng.random()
                choice = "tie" if u < 0.1 else "left" if rng.random() < p_left else "right"
                call("POST", f"/annotate{base}/votes", session=s,
                     json={"assignment": pair["assignment"], "shown": pair["shown"],
                           "choice": choice})  # fmt: skip
                votes += 1
        seconds = time.perf_counter() - started
        lap(f"4. {votes} votes through the API ({votes / seconds:.1f} votes/s, GET + POST each)")
        while (response := call("GET", f"{base}/results")).status_code == 202:
            time.sleep(0.5)
        report = response.json()["report"]
        lap("5. results: the report job and the JSON")
    finally:
        for process in (server, worker):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()

    table(
        f"Three systems through the API (load {load_average()})",
        ["step", "seconds"],
        [(name, f"{t:.2f}") for name, t in timings],
    )
    table(
        "Ranking (Bradley-Terry, Elo, 95% bootstrap interval)",
        ["rank", "system", "true strength", "Elo", "interval", "votes"],
        [(r["rank"], r["model"], SYSTEMS[r["model"]], f"{r['elo']:.0f}",
          f"[{r['elo_low']:.0f}, {r['elo_high']:.0f}]", r["n_votes"])
         for r in report["ranking"]["ratings"]],
    )  # fmt: skip
    table(
        "Pairwise verdicts (Holm across pairs)",
        ["system", "against", "W/L/T", "win rate", "interval", "p", "Holm p", "significant"],
        [(p["model"], p["opponent"], f"{p['wins']}/{p['losses']}/{p['ties']}",
          f"{p['win_rate']:.3f}", f"[{p['low']:.3f}, {p['high']:.3f}]", f"{p['p']:.4f}",
          f"{p['p_holm']:.4f}", p["significant"])
         for p in report["pairwise"]["pairs"]],
    )  # fmt: skip


if __name__ == "__main__":
    main()
