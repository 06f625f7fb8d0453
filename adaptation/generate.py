"""Batched answer generation with per-answer token counts and timings.

Each answer's ``seconds`` is the wall time from the start of its batch's generation to the
decoding step at which *that* sequence finished (end-of-sequence or the length limit), read
from a per-step clock; so ``new_tokens / seconds`` is the throughput that sequence saw
while sharing the batch. Tokenisation and decoding are timed apart from generation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from adaptation.modelio import LoadedModel, split_on_oom

StopReason = Literal["eos", "length"]


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 96
    min_new_tokens: int = 0  # end-of-sequence is suppressed before this many tokens
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    seed: int = 0
    use_chat_template: bool = True
    batch_size: int = 8
    system_prompt: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 8192:
            raise ValueError("max_new_tokens must be between 1 and 8192")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError("min_new_tokens must be between 0 and max_new_tokens")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GeneratedAnswer:
    index: int  # position of the prompt in the caller's list
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # generation wall time for this sequence
    tokenize_seconds: float
    stop_reason: StopReason
    batch_size: int

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def chars_per_second(self) -> float:
        return len(self.text) / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _StepClock:
    """A stopping criterion that never stops: it only stamps the time of every step."""

    stamps: list[float] = field(default_factory=list)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    configured = loaded.model.generation_config.eos_token_id
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(int(loaded.tokenizer.eos_token_id))
    return ids


def render_prompt(loaded: LoadedModel, question: str, settings: GenerationSettings) -> str:
    """The exact text fed to the model: the chat template when asked for and available."""
    tokenizer = loaded.tokenizer
    if settings.use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = []
        if settings.system_prompt:
            messages.append({"role": "system", "content": settings.system_prompt})
        messages.append({"role": "user", "content": question})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text)
    return question


def generate_answers(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: GenerationSettings,
    *,
    skip: frozenset[int] = frozenset(),
    on_batch: Callable[[list[GeneratedAnswer]], None] | None = None,
    seed_offsets: Mapping[int, int] | None = None,
) -> Iterator[GeneratedAnswer]:
    """Generate one answer per prompt, in batches of similar prompt length.

    Prompts whose index is in ``skip`` are not generated (already stored by an earlier,
    interrupted attempt). ``on_batch`` is called after every batch, before its answers are
    yielded, so a caller can persist them as a unit. ``seed_offsets`` (index -> n) moves a
    prompt's sampling seed, for an answer generated again. A batch that runs out of device
    memory is retried in halves.
    """
    tokenizer = loaded.tokenizer
    eos = _eos_ids(loaded)
    rendered: list[tuple[int, str, list[int], float]] = []
    for index, question in enumerate(prompts):
        if index in skip:
            continue
        text = render_prompt(loaded, question, settings)
        started = time.perf_counter()
        ids = tokenizer(text, add_special_tokens=not settings.use_chat_template)["input_ids"]
        rendered.append((index, text, ids, time.perf_counter() - started))
    # Similar lengths in one batch waste less compute on padding.
    rendered.sort(key=lambda item: len(item[2]))
    offsets = seed_offsets or {}
    for start in range(0, len(rendered), settings.batch_size):
        chunk = rendered[start : start + settings.batch_size]
        # A batch that runs out of device memory is generated again in halves.
        for _, answers in split_on_oom(
            lambda part: _generate_chunk(loaded, part, settings, eos, offsets), chunk
        ):
            if on_batch is not None:
                on_batch(answers)
            yield from answers


def _generate_chunk(
    loaded: LoadedModel,
    chunk: list[tuple[int, str, list[int], float]],
    settings: GenerationSettings,
    eos: set[int],
    offsets: Mapping[int, int],
) -> list[GeneratedAnswer]:
    tokenizer, model = loaded.tokenizer, loaded.model
    batch = tokenizer.pad(
        {"input_ids": [ids for _, _, ids, _ in chunk]}, return_tensors="pt", padding=True
    ).to(loaded.device)
    clock = _StepClock()
    sampling = settings.temperature > 0
    # A regenerated answer (offset > 0) draws from another seed, so sampling gives a new text.
    torch.manual_seed(
        settings.seed + chunk[0][0] + 7919 * sum(offsets.get(i, 0) for i, *_ in chunk)
    )
    began = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(
            **batch,
            max_new_tokens=settings.max_new_tokens,
            min_new_tokens=settings.min_new_tokens or None,
            do_sample=sampling,
            temperature=settings.temperature if sampling else None,
            top_p=settings.top_p if sampling else None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=[clock],
        )
    new = output[:, batch["input_ids"].shape[1] :].tolist()
    answers = []
    for (index, _, ids, tok_seconds), row in zip(chunk, new, strict=True):
        end = next((i for i, t in enumerate(row) if t in eos), None)
        kept = row[:end] if end is not None else row
        finished_step = end if end is not None else len(kept) - 1
        finished_step = min(max(finished_step, 0), len(clock.stamps) - 1)
        seconds = clock.stamps[finished_step] - began if clock.stamps else 0.0
        answers.append(
            GeneratedAnswer(
                index=index,
                text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                prompt_tokens=len(ids),
                new_tokens=len(kept) + (1 if end is not None else 0),
                seconds=seconds,
                tokenize_seconds=tok_seconds,
                stop_reason="eos" if end is not None else "length",
                batch_size=len(chunk),
            )
        )
    return answers
