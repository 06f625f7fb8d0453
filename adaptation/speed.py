"""Speed on the same text, so that two tokenizers do the same work.

Both measures report seconds per 1000 characters of a fixed reference text:

* (a) forced decoding: ``s_a = t / len(text) · 1000`` where ``t`` is the wall time to feed
  the text's tokens one at a time with a KV cache (incremental decoding, each step computing
  the next-token logits and their argmax, as generation does) with every next token forced
  to the reference token. A tokenizer that needs fewer tokens needs fewer steps.
* (b) one forward pass over the whole text (scoring, prefill): ``s_b = t / len(text) · 1000``.

Each figure is the median over ``repeats`` timed runs after ``warmup`` untimed ones.
"""

from __future__ import annotations

import inspect
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from adaptation.scoring import start_token_id


@dataclass(frozen=True)
class SpeedConfig:
    repeats: int = 3
    warmup: int = 1


@dataclass(frozen=True)
class SpeedResult:
    chars: int
    tokens: int
    forced_seconds: float  # (a) total, median
    single_pass_seconds: float  # (b) total, median

    @property
    def forced_s_per_1000_chars(self) -> float:
        return self.forced_seconds / self.chars * 1000

    @property
    def single_pass_s_per_1000_chars(self) -> float:
        return self.single_pass_seconds / self.chars * 1000

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["forced_s_per_1000_chars"] = self.forced_s_per_1000_chars
        out["single_pass_s_per_1000_chars"] = self.single_pass_s_per_1000_chars
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ids(model: Any, tokenizer: Any, text: str) -> torch.Tensor:
    ids = [start_token_id(tokenizer), *tokenizer(text, add_special_tokens=False)["input_ids"]]
    return torch.tensor([ids], device=next(model.parameters()).device)


def forced_decoding_seconds(model: Any, tokenizer: Any, text: str) -> float:
    """Wall time of token-by-token decoding of ``text`` with a KV cache (measure a)."""
    ids = _ids(model, tokenizer, text)
    _sync(ids.device)
    began = time.perf_counter()
    # transformers 5 names the KV cache argument ``cache``; 4.x ``past_key_values``.
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        past = None
        for pos in range(ids.shape[1] - 1):
            kwargs = {key: past} if past is not None else {}
            out = model(input_ids=ids[:, pos : pos + 1], use_cache=True, **kwargs)
            past = getattr(out, "cache", None) or out.past_key_values
            out.logits[:, -1].argmax(-1)
    _sync(ids.device)
    return time.perf_counter() - began


def single_pass_seconds(model: Any, tokenizer: Any, text: str) -> float:
    """Wall time of one forward pass over ``text`` (measure b)."""
    ids = _ids(model, tokenizer, text)
    _sync(ids.device)
    began = time.perf_counter()
    with torch.inference_mode():
        model(input_ids=ids, use_cache=False).logits.float().log_softmax(-1)
    _sync(ids.device)
    return time.perf_counter() - began


def measure_speed(
    model: Any, tokenizer: Any, text: str, config: SpeedConfig = SpeedConfig()
) -> SpeedResult:
    """Measures (a) and (b) on ``text``; see the module docstring."""
    model.eval()
    for _ in range(config.warmup):
        forced_decoding_seconds(model, tokenizer, text)
        single_pass_seconds(model, tokenizer, text)
    forced = [forced_decoding_seconds(model, tokenizer, text) for _ in range(config.repeats)]
    single = [single_pass_seconds(model, tokenizer, text) for _ in range(config.repeats)]
    return SpeedResult(
        chars=len(text),
        tokens=len(tokenizer(text, add_special_tokens=False)["input_ids"]),
        forced_seconds=statistics.median(forced),
        single_pass_seconds=statistics.median(single),
    )


REFERENCE_FILE = "ru_reference_1000.txt"


def reference_text() -> str:
    """The fixed Russian reference text every generation run is timed on (``data/``)."""
    from adaptation.benchmarks import data_dir

    return (data_dir() / REFERENCE_FILE).read_text(encoding="utf-8").strip()
