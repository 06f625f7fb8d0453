"""Loading models from disk: a Hugging Face safetensors folder or a single GGUF file.

GGUF files are de-quantised by ``transformers`` (15-50 s for a small model), so the first
load converts them once into a safetensors folder under ``cache_dir`` and every later load
reads that folder (well under a second). The folder is named after the sha256 of the whole
GGUF file, so two different files never share a conversion, whatever their names, sizes or
first bytes. ``trust_remote_code`` is never set.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    device: str
    folder: Path


T = TypeVar("T")
R = TypeVar("R")


def out_of_memory_errors() -> tuple[type[BaseException], ...]:
    """torch's out-of-memory exception (its name moved between versions), for ``except``."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom,) if oom is not None else ()


def split_on_oom(run: Callable[[list[T]], R], batch: list[T]) -> Iterator[tuple[list[T], R]]:
    """``run(batch)``; when the device runs out of memory, the two halves apart, down to one
    item, where the error propagates (a transient error for the caller: another job may be
    holding the device). Yields each part that ran with its result, in order."""
    try:
        result = run(batch)
    except out_of_memory_errors():
        if len(batch) == 1:
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(batch) // 2
        yield from split_on_oom(run, batch[:half])
        yield from split_on_oom(run, batch[half:])
        return
    yield batch, result


def pick_device(device: str = "auto") -> str:
    """``cuda`` when a GPU is visible and ``auto`` was asked for, else what was asked."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def gguf_cache_key(path: Path) -> str:
    """The conversion cache entry of a GGUF file: ``gguf-<sha256 of all its bytes>``.

    Hashing reads the whole file (about a second per GB); the digest is remembered for the
    life of the process while the file's inode, size and modification time stay the same.
    """
    stat = path.stat()
    identity = (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    digest = _DIGESTS.get(identity)
    if digest is None:
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
        digest = _DIGESTS[identity] = sha.hexdigest()
    return f"gguf-{digest}"


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def gguf_to_folder(gguf_path: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file to a float32 safetensors folder once; later calls reuse it.

    Safe under concurrency: a file lock serialises converters and the folder appears by an
    atomic rename only when complete.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = gguf_path.resolve()
    target = cache_dir / gguf_cache_key(gguf_path)
    if (target / "config.json").exists():
        return target
    with _locked(cache_dir / f".{target.name}.lock"):
        if (target / "config.json").exists():
            return target
        tmp = cache_dir / f".{target.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model: Any = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
        # The de-quantised weights are plain tensors; drop the GGUF quantiser so they save.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    return target


def resolve_folder(path: Path, cache_dir: Path) -> Path:
    """The safetensors folder for ``path``: itself, or its cached conversion from GGUF."""
    if path.is_file() and path.suffix == ".gguf":
        return gguf_to_folder(path, cache_dir)
    if (path / "config.json").exists():
        return path
    ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else []
    if len(ggufs) == 1:
        return gguf_to_folder(ggufs[0], cache_dir)
    raise FileNotFoundError(f"{path} is neither a model folder with config.json nor a .gguf file")


def left_padded(tokenizer: Any) -> Any:
    """``tokenizer`` set up for batched generation: left padding, eos as pad if it has none."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def heads_tied(model: Any) -> bool:
    """Does the LM head share its weight tensor with the input embeddings?"""
    head = model.get_output_embeddings()
    return head is not None and head.weight is model.get_input_embeddings().weight


def load_model(path: Path, *, cache_dir: Path, device: str = "auto") -> LoadedModel:
    """Load a causal LM and its tokenizer for inference (eval mode, left padding).

    A model folder or a GGUF file; :func:`adaptation.loading.load_any` also loads a saved
    ensemble of task adapters."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    folder = resolve_folder(Path(path), Path(cache_dir))
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = left_padded(AutoTokenizer.from_pretrained(folder))
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model = model.to(device)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, folder=folder)
