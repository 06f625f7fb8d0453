"""Set up the demo study end to end: models, questions, users, answers from a real worker.

Every step is reused on a second run: what exists is kept, only what is missing is made.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from adaptation.shipped import gemma3_gguf, smollm2_gguf
from sbs import assets
from sbs.accounts.roles import make_researcher
from sbs.catalog import services as catalog_services
from sbs.catalog.models import AdaptationJob, ModelEntry
from sbs.core.queues import Queue, worker_argv
from sbs.questions import services as question_services
from sbs.questions.models import QuestionSet
from sbs.studies import services
from sbs.studies.models import GenerationRun, Study

DEMO_SET = "Демо: 78 вопросов"
DEMO_STUDY = "Demo: SmolLM2-135M vs its Russian adaptation"
ORIGINAL = "SmolLM2-135M-Instruct"
ADAPTED = "SmolLM2-135M-ru"
# A few minutes on a laptop CPU: enough to show the flow and the tokenizer's speed-up, far
# too little training for good Russian (that needs thousands of steps on a GPU).
DEMO_ADAPTATION = {"vocab_size": 32000, "train_steps": 40, "batch_size": 4, "seq_len": 128,
                   "learning_rate": 0.0005, "init": "mean", "head": "auto"}  # fmt: skip
RESEARCHER = ("researcher", "researcher-demo")
ANNOTATORS = [("annotator1", "annotator1-demo"), ("annotator2", "annotator2-demo"), ("annotator3", "annotator3-demo")]  # fmt: skip


def gemma3_demo_gguf() -> Path:
    return gemma3_gguf(Path(settings.VAR_DIR) / "downloads" / "gemma-3-270m-q4_k_m.gguf")


def _die_with_parent() -> None:
    """In the worker child: receive SIGTERM when the demo process dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Command(BaseCommand):
    help = "Create the demo study and generate its answers with a real worker process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-new-tokens", type=int, default=64)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument(
            "--questions",
            type=Path,
            default=assets.DATA / "demo_questions_ru.jsonl",
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000/")
        parser.add_argument(
            "--serve",
            metavar="ADDR:PORT",
            help="then serve the site there, keeping the worker running for analysis jobs",
        )

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"==> {text}"))

    def handle(self, *args: Any, **opts: Any) -> None:
        self.step("Models")
        models = {}
        for name, locate in (
            (ORIGINAL, smollm2_gguf),
            ("Gemma-3-270M", gemma3_demo_gguf),
        ):
            entry = ModelEntry.objects.filter(name=name).first()
            if entry is None:
                self.stdout.write(f"    registering {name} (checking and copying the file)…")
                entry = catalog_services.model_register(name=name, source=locate())
            self.stdout.write(f"    {name}: {entry.kind}, {entry.total_bytes / 1e6:.0f} MB")
            models[name] = entry

        # `kill` or `timeout` sends SIGTERM: exit through the finally block that stops the worker.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        worker = self._start_worker()
        try:
            self._build(models, worker, opts)
            if opts["serve"]:
                from sbs.core.management.commands.serve import gunicorn_argv

                self.step(f"Serving {opts['url']} with gunicorn (Ctrl-C to stop)")
                workers = max(2, os.cpu_count() or 2)
                server = subprocess.Popen(
                    gunicorn_argv(opts["serve"], workers, 8), cwd=settings.BASE_DIR
                )
                try:
                    server.wait()
                except KeyboardInterrupt:
                    server.terminate()
                    server.wait(timeout=30)
        finally:
            self._stop_worker(worker)

    def _build(
        self, models: dict[str, ModelEntry], worker: subprocess.Popen[bytes], opts: dict[str, Any]
    ) -> None:
        self.step("Russian adaptation of SmolLM2 (new tokenizer, embeddings trained on CPU)")
        adapted = ModelEntry.objects.ready().filter(name=ADAPTED).first()
        if adapted is None:
            job = AdaptationJob.objects.filter(name=ADAPTED).exclude(status="done").first()
            if job is None:
                job = catalog_services.adaptation_start(
                    parent=models[ORIGINAL], name=ADAPTED, config=DEMO_ADAPTATION
                )
            else:  # an earlier demo was stopped mid-way: resume where its pipeline stopped
                catalog_services.adaptation_requeue(job=job)
            self._watch_job(job, worker)
            adapted = ModelEntry.objects.ready().get(name=ADAPTED)
        self.stdout.write(
            f"    {adapted.name}: {adapted.total_bytes / 1e6:.0f} MB, adapted from {models[ORIGINAL].name}"
        )
        models[ADAPTED] = adapted

        self.step("Questions")
        qset = QuestionSet.objects.filter(name=DEMO_SET).first()
        if qset is None:
            qset = question_services.question_set_import(
                name=DEMO_SET, data=opts["questions"].read_bytes(), filename=opts["questions"].name
            )
        self.stdout.write(f"    {qset.name}: {qset.questions.count()} questions")

        self.step("Users")
        researcher = self._user(*RESEARCHER)
        make_researcher(researcher)
        annotators = [self._user(name, password) for name, password in ANNOTATORS]
        self.stdout.write(f"    researcher and {len(annotators)} annotators")

        self.step("Study")
        study = Study.objects.filter(name=DEMO_STUDY, owner=researcher).first()
        if study is None:
            study = services.study_create(
                owner=researcher,
                name=DEMO_STUDY,
                question_set=qset,
                model_a=models[ORIGINAL],
                model_b=models[ADAPTED],
                generation={
                    "max_new_tokens": opts["max_new_tokens"],
                    "batch_size": opts["batch_size"],
                    "temperature": 0.0,
                    "use_chat_template": True,
                },
                seed=2024,
            )
        services.study_add_annotators(study=study, users=annotators)
        if study.status == Study.Status.DRAFT:
            services.study_start(study=study)
        elif study.status == Study.Status.GENERATING:
            # An earlier demo was stopped mid-way: its worker went, and its message with it.
            for run in study.runs.exclude(status=GenerationRun.Status.DONE):
                services.run_requeue(run=run)
        study.refresh_from_db()

        if study.status == Study.Status.GENERATING:
            self.step("Generating answers with the worker process (queue 'gpu')")
            self._watch(study, worker)
        study.refresh_from_db()
        if study.status != Study.Status.OPEN:
            errors = "\n".join(r.error for r in study.runs.all() if r.error)
            raise CommandError(f"the demo study did not open (status {study.status}).\n{errors}")

        url = opts["url"]
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"The demo is ready: {url}"))
        self.stdout.write(
            f"    researcher : {RESEARCHER[0]} / {RESEARCHER[1]}   (results: {url}studies/{study.pk}/results/)"
        )
        for name, password in ANNOTATORS:
            self.stdout.write(
                f"    annotator  : {name} / {password}   (vote: {url}annotate/{study.pk}/)"
            )

    def _user(self, username: str, password: str) -> User:
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _start_worker(self) -> subprocess.Popen[bytes]:
        """A real Celery worker process for the GPU and default queues, logging to var/."""
        log_path = Path(settings.VAR_DIR) / "demo-worker.log"
        self.stdout.write(f"    worker: celery -A workers worker -Q gpu,default (log: {log_path})")
        with log_path.open("ab") as log:
            return subprocess.Popen(
                worker_argv([Queue.GPU, Queue.DEFAULT], "demo@%h"),
                cwd=settings.BASE_DIR,
                # One torch thread: the other core stays free for the web server.
                env={"TORCH_NUM_THREADS": "1", **os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def _stop_worker(self, worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()

    def _alive(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is not None:
            log_path = Path(settings.VAR_DIR) / "demo-worker.log"
            raise CommandError(f"the worker exited with code {worker.returncode}; see {log_path}")

    def _watch_job(self, job: AdaptationJob, worker: subprocess.Popen[bytes]) -> None:
        with tqdm(
            total=1.0, desc="    adapting", bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}"
        ) as bar:
            while True:
                job.refresh_from_db()
                bar.n = round(job.progress, 3)
                bar.set_postfix_str(f"{job.step} {job.message}".strip()[:60])
                bar.refresh()
                if job.status == AdaptationJob.Status.DONE:
                    return
                if job.status == AdaptationJob.Status.FAILED:
                    raise CommandError(f"the adaptation failed:\n{job.error}")
                self._alive(worker)
                time.sleep(1.0)

    def _watch(self, study: Study, worker: subprocess.Popen[bytes]) -> None:
        bars: dict[int, tqdm[Any]] = {}
        try:
            while True:
                runs = list(study.runs.select_related("model").order_by("pk"))
                for position, run in enumerate(runs):
                    bar = bars.get(run.pk)
                    if bar is None:
                        bar = bars[run.pk] = tqdm(total=run.total_count, desc=f"    {run.model.name:<22}", unit="answer", position=position, leave=True)  # fmt: skip
                    bar.n = run.done_count
                    bar.set_postfix_str(run.status)
                    bar.refresh()
                if all(
                    r.status in (GenerationRun.Status.DONE, GenerationRun.Status.FAILED)
                    for r in runs
                ):
                    break
                self._alive(worker)
                time.sleep(1.0)
        finally:
            for bar in bars.values():
                bar.close()
