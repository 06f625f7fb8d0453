"""The whole adaptation recipe as one resumable pipeline over a work folder.

Steps (the research's two-stage recipe, section 2-3 of the seed), in :data:`STEPS`:
  1. corpus     Russian text (wiki-ru-wordnet + the user's files), templates capped and the
                held-out split made by template (dedup.py), so held-out text is not boilerplate
                seen in training
  2. tokenizer  a new sentencepiece tokenizer (unigram by default) keeping the special tokens;
                its fertility and the original's on the shipped general prose are recorded
  3. swap       new embeddings + LM head, initialised by a registered init method (vocab.py);
                the head tied, or untied with a unigram frequency prior, whichever scores
                fewer bits per character on held-out text (head.py)
  4. train      embeddings + LM head only (body frozen)
  5. lora       optionally a LoRA on top, the same training code in another mode
  6. merge      with LoRA: sweep the merging factor phi on the held-out split, keep the best
Then the final model is exported to ``model/`` (export.py: the original's dtype, a model card,
``tokenizer.model``, the adapter on its own); it is what :func:`run_pipeline` returns. With
``clean=True`` the bulky folders of the model steps (weights, checkpoints) are emptied
afterwards, their ``.done`` records kept: a rerun with the same inputs still does nothing.

Each step fills its own folder and names the files it must leave there. Resuming is one rule,
in :func:`run_pipeline`: a step is skipped when its ``.done`` marker and its outputs exist and
its fingerprint (a hash of the config values it reads and of the previous step's fingerprint)
matches; after the first step that runs, every later step runs too. A step that is redone
starts from an empty folder, except training, which keeps a checkpoint written under the same
fingerprint and continues from it (a redelivered job resumes mid-training).

:class:`PipelineConfig`'s fields describe themselves (label, bounds, choices: see
``registry.py``); the CLI's ``pipeline`` options and the web form are built from them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from adaptation.benchmarks import data_dir
from adaptation.corpus import CorpusConfig, read_text_file, wordnet_lines
from adaptation.dedup import DedupConfig, dedup_and_split
from adaptation.export import ExportReport, export_model
from adaptation.fertility import fertility
from adaptation.head import HEAD_CHOICES, choose_head_folder
from adaptation.merging import DEFAULT_GRID, MergeConfig, merge_sweep_folder
from adaptation.registry import check, gettext_noop, option
from adaptation.tokenizer import MODEL_TYPES, TokenizerConfig, train_tokenizer
from adaptation.training import TrainConfig, train_folder
from adaptation.vocab import INIT_METHODS, SwapConfig, swap_vocab_folder, without_target

OnProgress = Callable[[str, float, str], None]  # (step, fraction of that step, message)
Report = Callable[[float, str], None]  # a step's own progress: (fraction, message)


def parse_grid(text: str) -> tuple[float, ...]:
    """``"0,1/3,1/2,2/3,1"`` -> (0.0, 0.333.., 0.5, 0.666.., 1.0)."""
    return tuple(float(Fraction(part.strip())) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class PipelineConfig:
    vocab_size: int = option(32000, label=gettext_noop("Vocabulary size"), min=300, max=262144)
    tokenizer_type: str = option(
        "unigram", label=gettext_noop("Tokenizer"), choices=tuple(MODEL_TYPES.items())
    )
    init: str = option(
        "mean",
        label=gettext_noop("New embeddings initialised by"),
        choices=lambda: INIT_METHODS.choices(without_target),
    )
    head: str = option(
        "auto", label=gettext_noop("Output head after the swap"), choices=HEAD_CHOICES
    )
    train_steps: int = option(
        40, label=gettext_noop("Embedding training steps"), min=0, max=1_000_000
    )
    batch_size: int = option(4, label=gettext_noop("Batch size"), min=1, max=1024)
    seq_len: int = option(128, label=gettext_noop("Sequence length"), min=16, max=8192)
    learning_rate: float = option(2e-3, label=gettext_noop("Learning rate"), min=1e-7, max=1.0)
    lora_steps: int = option(
        0, label=gettext_noop("LoRA steps after that (0: none)"), min=0, max=1_000_000
    )
    lora_r: int = option(8, label=gettext_noop("LoRA rank r"), min=1, max=1024)
    lora_alpha: float = option(512.0, label=gettext_noop("LoRA alpha"), min=1, max=4096)
    lora_embeddings: bool = option(
        False, label="LoRA also trains the embeddings and the head in full", web=False
    )
    grad_accum: int = option(
        1, label="micro-batches per training step (divides the batch size)", min=1, web=False
    )
    precision: str = option(
        "fp32", label="training precision", choices=(("fp32", "fp32"), ("bf16", "bf16")), web=False
    )
    gradient_checkpointing: bool = option(
        False, label="recompute activations in the backward pass", web=False
    )
    merge_grid: tuple[float, ...] = option(
        DEFAULT_GRID,
        label="merging factors phi to try, comma-separated, fractions allowed",
        parse=parse_grid,
        web=False,
    )
    max_corpus_lines: int | None = option(
        None,
        label=gettext_noop(
            "Use at most this many lines of Russian text (empty: all, about 150,000)"
        ),
        min=1000,
    )
    heldout_lines: int = option(
        200, label="held-out lines used for the phi sweep", min=1, web=False
    )
    use_wordnet: bool = option(True, label="train on the wiki-ru-wordnet corpus", web=False)
    per_template: int = option(
        100, label="lines kept per template (a 6-gram in 50+ lines)", min=1, web=False
    )
    seed: int = option(0, label="random seed", min=0, web=False)

    def __post_init__(self) -> None:
        check(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("merge_grid"), list):  # JSON has no tuples
            values["merge_grid"] = tuple(values["merge_grid"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["merge_grid"] = list(self.merge_grid)
        return out


@dataclass
class PipelineResult:
    model_dir: Path
    steps: dict[str, Any] = field(default_factory=dict)  # step -> what its ``.done`` records
    ran: list[str] = field(default_factory=list)  # the steps this call ran (not skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"model_dir": str(self.model_dir), "steps": self.steps, "ran": self.ran}


@dataclass
class Context:
    """What the steps share: the inputs, and the model folder the latest step yielded."""

    model_path: Path
    work_dir: Path
    config: PipelineConfig
    cache_dir: Path
    extra_texts: tuple[Path, ...]
    device: str
    model: Path  # the original, then the swapped, trained or merged model

    def lines(self, part: str) -> list[str]:
        return (self.work_dir / "corpus" / f"{part}.txt").read_text().splitlines()


@dataclass(frozen=True)
class Step:
    """``run`` fills ``folder`` and returns what ``.done`` records; the step is done when
    ``outputs`` (relative to its folder) exist. ``reads`` names the inputs (config fields,
    ``model``, ``texts``) its fingerprint hashes; ``yields`` is the model folder it leaves
    for the next steps (relative to its folder), if any."""

    name: str
    folder: str
    run: Callable[[Context, Path, Report], dict[str, Any]]
    outputs: tuple[str, ...]
    reads: tuple[str, ...]
    yields: str | None = None
    resumable: bool = False  # keeps its folder (a training checkpoint) between attempts
    when: Callable[[PipelineConfig], bool] = lambda config: True


def _corpus(ctx: Context, folder: Path, report: Report) -> dict[str, Any]:
    report(0.0, "reading Russian text")
    config = ctx.config
    lines: list[str] = []
    if config.use_wordnet:
        lines.extend(wordnet_lines(CorpusConfig(max_lines=config.max_corpus_lines)))
    for path in ctx.extra_texts:
        lines.extend(read_text_file(Path(path)))
    if not lines:
        raise ValueError("no training text: enable wiki-ru-wordnet or give text files")
    report(0.5, "capping templates, splitting by template")
    train, heldout, dedup = dedup_and_split(
        lines, DedupConfig(per_template=config.per_template, seed=config.seed)
    )
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "heldout.txt").write_text("\n".join(heldout) + "\n")
    return {"train_lines": len(train), "heldout_lines": len(heldout),
            "train_chars": sum(map(len, train)), "dedup": dedup.to_dict()}  # fmt: skip


def _tokenizer(ctx: Context, folder: Path, report: Report) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from adaptation.modelio import resolve_folder

    config = ctx.config
    report(0.0, f"training a {config.tokenizer_type} tokenizer")
    original = AutoTokenizer.from_pretrained(resolve_folder(ctx.model_path, ctx.cache_dir))
    train_tokenizer(
        ctx.work_dir / "corpus" / "train.txt",
        folder,
        TokenizerConfig(vocab_size=config.vocab_size, model_type=config.tokenizer_type,
                        seed=config.seed),
        original=original,
    )  # fmt: skip
    prose = (data_dir() / PROSE_FILE).read_text(encoding="utf-8")
    new = AutoTokenizer.from_pretrained(folder)
    return {"vocab_size": config.vocab_size, "type": config.tokenizer_type,
            "fertility": {"text": PROSE_FILE, "original": fertility(original, prose).to_dict(),
                          "new": fertility(new, prose).to_dict()}}  # fmt: skip


def _swap(ctx: Context, folder: Path, report: Report) -> dict[str, Any]:
    report(0.0, f"{ctx.config.init} initialisation of the new embeddings")
    swap_report = swap_vocab_folder(
        ctx.model_path, ctx.work_dir / "tokenizer", folder,
        SwapConfig(init=ctx.config.init, seed=ctx.config.seed), cache_dir=ctx.cache_dir,
    )  # fmt: skip
    report(0.5, f"output head: {ctx.config.head}")
    head = choose_head_folder(
        folder, ctx.lines("train")[:HEAD_TRAIN_LINES],
        ctx.lines("heldout")[: ctx.config.heldout_lines], ctx.config.head,
    )  # fmt: skip
    return {**_plain(swap_report), "head": head.to_dict()}


def _training(mode: str, steps_field: str, lr_scale: float) -> Callable[..., dict[str, Any]]:
    """A training step: ``mode`` for ``config.<steps_field>`` steps at ``lr_scale`` times the
    learning rate, on the current model, resuming from the checkpoint in its folder."""

    def run(ctx: Context, folder: Path, report: Report) -> dict[str, Any]:
        config = ctx.config
        steps = getattr(config, steps_field)
        cfg = TrainConfig(mode=mode, steps=steps, batch_size=config.batch_size,
                          seq_len=config.seq_len, learning_rate=config.learning_rate * lr_scale,
                          lora_r=config.lora_r, lora_alpha=config.lora_alpha,
                          lora_embeddings=config.lora_embeddings, grad_accum=config.grad_accum,
                          precision=config.precision,
                          gradient_checkpointing=config.gradient_checkpointing,
                          warmup_steps=steps // 10, checkpoint_every=max(1, steps // 4),
                          seed=config.seed)  # fmt: skip
        report(0.0, f"{mode} training, {steps} steps")
        outcome = train_folder(
            ctx.model, ctx.lines("train"), folder, cfg, cache_dir=ctx.cache_dir,
            device=ctx.device, resume=(folder / "checkpoint").exists(),
            on_step=lambda step, total, loss: report(step / total, f"loss {loss:.3f}"),
        )  # fmt: skip
        return outcome.to_dict()

    return run


def _merge(ctx: Context, folder: Path, report: Report) -> dict[str, Any]:
    report(0.0, "sweeping the merging factor")
    heldout = ctx.lines("heldout")[: ctx.config.heldout_lines]
    sweep = merge_sweep_folder(
        ctx.work_dir / "lora" / "adapter", heldout, folder,
        MergeConfig(grid=ctx.config.merge_grid), cache_dir=ctx.cache_dir,
        base_path=ctx.model, device=ctx.device,
    )  # fmt: skip
    return sweep.to_dict()


PROSE_FILE = "ru_heldout_prose.txt"  # shipped general prose, never trained on
HEAD_TRAIN_LINES = 20000  # lines whose unigram counts the frequency head uses
TRAINING_READS = ("batch_size", "seq_len", "learning_rate", "seed", "precision")
STEPS: tuple[Step, ...] = (
    Step("corpus", "corpus", _corpus, ("train.txt", "heldout.txt"),
         reads=("use_wordnet", "max_corpus_lines", "per_template", "seed", "texts")),
    Step("tokenizer", "tokenizer", _tokenizer, ("tokenizer_config.json",),
         reads=("vocab_size", "tokenizer_type", "seed", "model")),
    Step("swap", "swapped", _swap, ("config.json",),
         reads=("init", "head", "heldout_lines", "seed", "model"),
         yields="."),
    Step("train", "trained", _training("embeddings", "train_steps", 1.0),
         ("model/config.json",), reads=("train_steps", *TRAINING_READS), yields="model",
         resumable=True, when=lambda config: config.train_steps > 0),
    Step("lora", "lora", _training("lora", "lora_steps", 0.5), ("adapter/adapter_config.json",),
         reads=("lora_steps", "lora_r", "lora_alpha", "lora_embeddings", *TRAINING_READS), resumable=True,
         when=lambda config: config.lora_steps > 0),
    Step("merge", "merged", _merge, ("config.json",), reads=("merge_grid", "heldout_lines"),
         yields=".", when=lambda config: config.lora_steps > 0),
)  # fmt: skip

DONE, FINGERPRINT = ".done", ".fingerprint"


def _fingerprint(step: Step, inputs: dict[str, Any], previous: str) -> str:
    read = {key: inputs[key] for key in step.reads}
    text = json.dumps([step.name, read, previous], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _recorded(folder: Path) -> str | None:
    path = folder / FINGERPRINT
    return path.read_text() if path.exists() else None


def _finished(step: Step, folder: Path, fingerprint: str) -> bool:
    return (
        (folder / DONE).exists()
        and _recorded(folder) == fingerprint
        and all((folder / output).exists() for output in step.outputs)
    )


def run_pipeline(
    model_path: Path,
    work_dir: Path,
    config: PipelineConfig,
    *,
    cache_dir: Path,
    extra_texts: Sequence[Path] = (),
    device: str = "cpu",
    on_progress: OnProgress | None = None,
    steps: Sequence[Step] = STEPS,
    clean: bool = False,
) -> PipelineResult:
    """Adapt ``model_path`` (HF folder or GGUF); the exported model folder is returned.
    ``clean``: empty the intermediate model folders afterwards (see :func:`clean_work`)."""

    def report(step: str, fraction: float, message: str = "") -> None:
        if on_progress is not None:
            on_progress(step, fraction, message)

    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(model_path=Path(model_path), work_dir=work_dir, config=config,
                  cache_dir=Path(cache_dir), extra_texts=tuple(map(Path, extra_texts)),
                  device=device, model=Path(model_path))  # fmt: skip
    texts = [(str(path), _digest(Path(path))) for path in extra_texts]
    inputs = {**config.to_dict(), "model": str(model_path), "texts": texts}
    result = PipelineResult(model_dir=work_dir)
    plan: list[tuple[Step, str]] = []
    previous = ""
    for step in steps:
        if step.when(config):
            previous = _fingerprint(step, inputs, previous)
            plan.append((step, previous))
    export_print = _fingerprint(EXPORT, inputs, previous)
    exported = work_dir / EXPORT.folder
    # a cleaned folder lacks the steps' outputs but not their records: done, if the export is
    cleaned = (
        (work_dir / CLEANED).exists()
        and _finished(EXPORT, exported, export_print)
        and all(_marked(work_dir / step.folder, fp) for step, fp in plan)
    )
    for step, fingerprint in plan:
        folder = work_dir / step.folder
        # once a step has run, every later one runs, on a clean folder
        if result.ran or not (cleaned or _finished(step, folder, fingerprint)):
            (work_dir / CLEANED).unlink(missing_ok=True)
            keep = step.resumable and not result.ran and _recorded(folder) == fingerprint
            if not keep:  # a checkpoint is kept only for the same inputs
                shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / DONE).unlink(missing_ok=True)
            (folder / FINGERPRINT).write_text(fingerprint)
            info = step.run(ctx, folder, lambda f, m, name=step.name: report(name, f, m))
            (folder / DONE).write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str))
            result.ran.append(step.name)
        result.steps[step.name] = json.loads((folder / DONE).read_text())
        if step.yields is not None:
            ctx.model = folder / step.yields
        report(step.name, 1.0)
    result.model_dir = ctx.model
    if ctx.model != ctx.model_path:  # a step made a model: export it, then clean up
        if result.ran or not _finished(EXPORT, exported, export_print):
            # reported as "done" (at 0): the export is the tail of the last step, not a step
            info = EXPORT.run(ctx, exported, lambda f, m: report("done", 0.0, m))
            (exported / FINGERPRINT).write_text(export_print)
            (exported / DONE).write_text(json.dumps(info, indent=2))
        info = json.loads((exported / DONE).read_text())
        if clean and not (work_dir / CLEANED).exists():
            info["work_bytes"] = clean_work(work_dir, [step for step, _ in plan])
            (exported / DONE).write_text(json.dumps(info, indent=2))
            (work_dir / CLEANED).write_text(json.dumps(info["work_bytes"]))
        result.steps[EXPORT.name] = info
        result.model_dir = exported
    report("done", 1.0)
    return result


def _export(ctx: Context, folder: Path, report: Report) -> dict[str, Any]:
    report(0.0, "exporting the model")
    exported = export_model(ctx.work_dir, folder, original=_original_folder(ctx),
                            config=ctx.config.to_dict(), texts=ctx.extra_texts,
                            layout=step_layout())  # fmt: skip
    return {"dtype": exported.dtype, "adapter": exported.adapter,
            "tokenizer_model": exported.tokenizer_model,
            "bytes": sum(exported.files.values())}  # fmt: skip


def step_layout() -> list[tuple[str, str, str | None]]:
    """(name, folder, the model folder it yields) of every step, for adaptation.export."""
    return [(step.name, step.folder, step.yields) for step in STEPS]


def export_work(
    work_dir: Path, out_dir: Path, dtype: str = "auto", *, original: Path | None = None
) -> ExportReport:
    """Export a finished work folder's model again (another dtype, another place)."""
    return export_model(work_dir, out_dir, dtype, original=original, layout=step_layout())


def _original_folder(ctx: Context) -> Path | None:
    """The original model's folder (its config names the dtype); None for a GGUF file."""
    path = ctx.model_path
    return path if (path / "config.json").is_file() else None


#: Not one of :data:`STEPS`: it follows whichever step made the model last, and is not listed
#: in :attr:`PipelineResult.ran` (its record is ``steps["export"]``).
EXPORT = Step("export", "model", _export, ("config.json", "README.md"), reads=("model",))
CLEANED = ".cleaned"


def _marked(folder: Path, fingerprint: str) -> bool:
    return (folder / DONE).exists() and _recorded(folder) == fingerprint


def folder_bytes(path: Path) -> int:
    return sum(
        p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink()
    )


def clean_work(work_dir: Path, steps: Sequence[Step]) -> dict[str, int]:
    """Empty the folders of the steps that make models or keep checkpoints, all but their
    ``.done`` records and fingerprints; the corpus, the tokenizer and the exported model stay.
    Returns the work folder's bytes before and after."""
    before = folder_bytes(work_dir)
    for step in steps:
        if step.yields is None and not step.resumable:
            continue
        folder = work_dir / step.folder
        for entry in folder.iterdir() if folder.is_dir() else ():
            if entry.name in (DONE, FINGERPRINT):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return {"before": before, "after": folder_bytes(work_dir)}


def _plain(obj: Any) -> dict[str, Any]:
    """A JSON-able summary of a report dataclass (large lists dropped)."""
    try:
        data = asdict(obj)
    except TypeError:
        data = dict(vars(obj))
    return {k: v for k, v in data.items() if not isinstance(v, (list, tuple)) or len(v) <= 32}
