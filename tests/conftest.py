"""Shared fixtures: a tiny real model, a real Celery worker process, users and studies."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adaptation.shipped import smollm2_gguf
from sbs.core.queues import Queue, worker_argv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's real tokenizer, as safetensors.

    Real tokenizer, real chat template, real ``generate``; small enough to run in seconds.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def model_store(settings: Any, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    settings.MODEL_STORE = store
    settings.MODEL_CACHE = store / ".cache"
    return store


def _database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` subprocess on the test database, on the GPU queue unless
    given ``queues``."""

    def __init__(
        self,
        store: Path,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        queues: tuple[Queue, ...] = (Queue.GPU,),
    ):
        self.store = store
        self.queues = list(queues)
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, name: str = "w1") -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "MODEL_STORE": str(self.store),
            "MODEL_CACHE": str(self.store / ".cache"),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            worker_argv(self.queues, f"{name}@%h", "--without-gossip", "--without-mingle"),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL, as when a machine dies: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def purge_queues() -> Iterator[None]:
    from workers.celery import app

    app.control.purge()
    yield
    app.control.purge()


@pytest.fixture
def worker(model_store: Path, tmp_path: Path, purge_queues: None) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(model_store, tmp_path / "worker.log")
    proc.start()
    yield proc
    proc.stop()


def wait_for(predicate: Any, timeout: float, what: str, log: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    details = f"\n--- worker log ---\n{log()[-4000:]}" if log else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{details}")


@pytest.fixture
def two_models(model_store: Path, tiny_model_dir: Path) -> tuple[Any, Any]:
    from tests.factories import model_entry

    return model_entry("Original-SmolTiny", tiny_model_dir), model_entry(
        "Adapted-RuTiny", tiny_model_dir
    )


@pytest.fixture(autouse=True)
def english_by_default(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests read English messages unless they ask for Russian (Accept-Language: ru)."""
    if not request.config.pluginmanager.hasplugin("django"):
        yield
        return
    from django.utils import translation

    request.getfixturevalue("settings").LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
