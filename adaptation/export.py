"""Take an adapted model out of the tool: a folder other programs load as it is.

:func:`export_model` writes the pipeline's final model as

* ``config.json`` + ``model*.safetensors`` in the original model's dtype (bf16 when the
  original is a GGUF or says nothing), loadable with plain ``AutoModelForCausalLM``;
* the Hugging Face tokenizer files and ``tokenizer.model``, the sentencepiece model of the new
  tokenizer, which llama.cpp's ``convert_hf_to_gguf.py`` reads for a Llama-style vocabulary;
* ``README.md``, a model card written from what the pipeline's steps recorded (their ``.done``
  files): corpus, tokenizer and fertility, the swap and its head's bits per character,
  training losses, the φ curve and the chosen φ, forgetting when measured;
* ``adapter/`` when a LoRA step ran: the adapter on its own, with a short card.

Every text a person typed (model and file names) reaches the card through :func:`md`, which
escapes Markdown and HTML, and the YAML front matter through JSON strings.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DTYPES = ("auto", "bfloat16", "float32")
_KNOWN_DTYPES = ("bfloat16", "float16", "float32")
TOKENIZER_MODEL = "tokenizer.model"
SENTENCEPIECE_MODEL = "sentencepiece.model"  # what adaptation.tokenizer saves
ADAPTER = "adapter"
CARD = "README.md"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "chat_template.jinja", "chat_template.json")  # fmt: skip
_DONE = ".done"


@dataclass
class ExportReport:
    out_dir: str
    dtype: str
    files: dict[str, int] = field(default_factory=dict)  # file -> bytes
    adapter: bool = False
    tokenizer_model: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- records


# The pipeline's steps as this module needs them, in order: (name, folder, the model folder
# it yields or None). The pipeline passes its own (adaptation.pipeline.step_layout()), so this
# module does not import the pipeline that imports it.
Layout = Sequence[tuple[str, str, str | None]]


def step_records(work_dir: Path, layout: Layout) -> dict[str, dict[str, Any]]:
    """What each finished pipeline step recorded (its ``.done``), by step name."""
    records: dict[str, dict[str, Any]] = {}
    for name, folder, _yields in layout:
        done = Path(work_dir) / folder / _DONE
        if done.exists():
            records[name] = json.loads(done.read_text(encoding="utf-8"))
    return records


def final_folder(work_dir: Path, layout: Layout) -> Path:
    """The last model folder a finished step of the pipeline left in ``work_dir``."""
    found: Path | None = None
    for _name, step_folder, yields in layout:
        folder = Path(work_dir) / step_folder
        if yields is not None and (folder / _DONE).exists():
            candidate = folder / yields
            if (candidate / "config.json").exists():
                found = candidate
    if found is None:
        raise FileNotFoundError(f"{work_dir}: no finished model step in this work folder")
    return found.resolve()


def original_dtype(model_path: Path | None) -> str:
    """The dtype the original model's config names (``torch_dtype`` or ``dtype``); bfloat16
    for a GGUF file or a config that names none."""
    if model_path is None:
        return "bfloat16"
    config = Path(model_path) / "config.json"
    if not config.is_file():
        return "bfloat16"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "bfloat16"
    for key in ("dtype", "torch_dtype"):
        value = str(data.get(key) or "").removeprefix("torch.")
        if value in _KNOWN_DTYPES:
            return value
    return "bfloat16"


# ----------------------------------------------------------------------------- export


def export_model(
    source: Path,
    out_dir: Path,
    dtype: str = "auto",
    *,
    original: Path | None = None,
    config: Mapping[str, Any] | None = None,
    texts: Sequence[Path] = (),
    layout: Layout = (),
) -> ExportReport:
    """Export the adapted model of ``source`` (a pipeline work folder, whose steps ``layout``
    describes, or a model folder) to ``out_dir``; ``dtype`` "auto" keeps the ``original``
    model's dtype. :func:`adaptation.pipeline.export_work` exports a work folder.

    ``config`` (the pipeline's settings) and ``texts`` (the user's text files) go into the
    card. The folder is written beside ``out_dir`` and renamed into place when complete.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    source, out_dir = Path(source), Path(out_dir)
    is_work = not (source / "config.json").exists()
    if is_work and not layout:
        raise ValueError("a work folder needs the pipeline's step layout: use export_work")
    model_dir = final_folder(source, layout) if is_work else source
    records = step_records(source, layout) if is_work else {}
    chosen = original_dtype(original) if dtype == "auto" else dtype

    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, chosen))
    model.save_pretrained(tmp, safe_serialization=True)
    del model
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.save_pretrained(tmp)
    spm = _sentencepiece_model(source if is_work else None, model_dir)
    if spm is not None:
        shutil.copyfile(spm, tmp / TOKENIZER_MODEL)
    adapter = source / "lora" / ADAPTER if is_work else None
    has_adapter = adapter is not None and (adapter / ADAPTER_FILES[0]).exists()
    if adapter is not None and has_adapter:
        export_adapter(adapter, tmp / ADAPTER, records=records, original=original)
    card = model_card(
        records, original=original, config=config, texts=texts, dtype=chosen,
        tokenizer_model=spm is not None, adapter=has_adapter,
    )  # fmt: skip
    (tmp / CARD).write_text(card, encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    files = {p.relative_to(out_dir).as_posix(): p.stat().st_size
             for p in sorted(out_dir.rglob("*")) if p.is_file()}  # fmt: skip
    return ExportReport(
        out_dir=str(out_dir), dtype=chosen, files=files, adapter=has_adapter,
        tokenizer_model=spm is not None,
    )  # fmt: skip


def _sentencepiece_model(work_dir: Path | None, model_dir: Path) -> Path | None:
    candidates = [model_dir / TOKENIZER_MODEL, model_dir / SENTENCEPIECE_MODEL]
    if work_dir is not None:
        candidates.insert(0, work_dir / "tokenizer" / SENTENCEPIECE_MODEL)
    return next((c for c in candidates if c.is_file()), None)


def export_adapter(
    adapter_dir: Path,
    out_dir: Path,
    *,
    records: Mapping[str, Any] | None = None,
    original: Path | None = None,
) -> Path:
    """Copy a LoRA adapter (config, weights, tokenizer) to ``out_dir`` with a short card.

    Its ``base_model_name_or_path`` (a path in the work folder) is cleared: the base is the
    vocabulary-swapped, embedding-trained model, which the card describes."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((adapter_dir / ADAPTER_FILES[0]).read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = None
    (out_dir / ADAPTER_FILES[0]).write_text(json.dumps(config, indent=2), encoding="utf-8")
    for name in (*ADAPTER_FILES[1:], *_TOKENIZER_FILES):
        if (adapter_dir / name).is_file():
            shutil.copyfile(adapter_dir / name, out_dir / name)
    (out_dir / CARD).write_text(
        adapter_card(records or {}, config, original=original), encoding="utf-8"
    )
    return out_dir


# ----------------------------------------------------------------------------- the card


_MD_SPECIAL = "\\`*_{}[]()#+-.!|~<>&"


def md(value: Any) -> str:
    """Text for Markdown that may be opened as HTML: one line, HTML and Markdown escaped."""
    text = " ".join(str(value).split())
    out = []
    for ch in text:
        if ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == "&":
            out.append("&amp;")
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _yaml(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are YAML), ASCII only."""
    return json.dumps(" ".join(value.split()))


def num(value: Any, digits: int = 3) -> str:
    """A recorded number as text; "—" when it is missing or not finite."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return md(value)
    if not math.isfinite(number):
        return "—"
    return f"{number:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def base_name(original: Path | None) -> str | None:
    """The original model's name (its folder or file name, never the server path)."""
    if original is None:
        return None
    path = Path(original)
    return (path.stem if path.suffix == ".gguf" else path.name) or None


def model_card(
    records: Mapping[str, Any],
    *,
    original: Path | None = None,
    config: Mapping[str, Any] | None = None,
    texts: Sequence[Path] = (),
    dtype: str = "bfloat16",
    tokenizer_model: bool = True,
    adapter: bool = False,
) -> str:
    """A Hugging Face model card (README.md) from the steps' records."""
    base = base_name(original)
    front = ["---", "language:", "- ru", "library_name: transformers",
             "pipeline_tag: text-generation"]  # fmt: skip
    if base:
        front.append(f"base_model: {_yaml(base)}")
    front += ["tags:", "- russian", "- vocabulary-adaptation", "- sbs-adaptation", "---", ""]
    title = f"{md(base)}, adapted to Russian" if base else "A model adapted to Russian"
    out = [*front, f"# {title}", ""]
    out += [
        "Made by the side-by-side bench's adaptation recipe: a new Russian tokenizer, new "
        "embeddings and output head initialised from the original's and trained with the "
        "body frozen" + (", then a LoRA merged at the factor φ chosen on held-out text" if
        "merge" in records else "") + ". Every number below was recorded while it was made.",
        "",
        f"Weights: safetensors, {md(dtype)}.",
        "",
    ]  # fmt: skip
    out += _recipe_section(config or {})
    out += _corpus_section(records.get("corpus") or {}, texts)
    out += _tokenizer_section(records.get("tokenizer") or {})
    out += _swap_section(records.get("swap") or {})
    out += _training_section(records)
    out += _merge_section(records.get("merge") or {})
    out += _usage_section(tokenizer_model, adapter)
    return "\n".join(out).rstrip() + "\n"


def _recipe_section(config: Mapping[str, Any]) -> list[str]:
    if not config:
        return []
    rows = [[md(k), md(", ".join(map(num, v)) if isinstance(v, list | tuple) else num(v, 6))]
            for k, v in sorted(config.items())]  # fmt: skip
    return ["## Recipe", "", *_table(["Setting", "Value"], rows)]


def _corpus_section(corpus: Mapping[str, Any], texts: Sequence[Path]) -> list[str]:
    if not corpus:
        return []
    dedup = corpus.get("dedup") or {}
    rows = [["training lines", num(corpus.get("train_lines"))],
            ["held-out lines", num(corpus.get("heldout_lines"))],
            ["training characters", num(corpus.get("train_chars"))]]  # fmt: skip
    if dedup:
        rows += [["lines before deduplication", num(dedup.get("lines"))],
                 ["templates (a 6-gram in 50+ lines)", num(dedup.get("templates"))],
                 ["template lines dropped", num(dedup.get("dropped"))],
                 ["held-out lines sharing half their 6-grams with training, %",
                  num(100 * float(dedup.get("heldout_overlap") or 0.0), 1)]]  # fmt: skip
    out = ["## Corpus", ""]
    if texts:
        names = ", ".join(md(Path(t).name) for t in texts)
        out += [f"Russian text: wiki-ru-wordnet (when enabled) and the files {names}.", ""]
    return [*out, *_table(["", "Value"], rows)]


def _tokenizer_section(tok: Mapping[str, Any]) -> list[str]:
    if not tok:
        return []
    out = ["## Tokenizer", "",
           f"A {md(tok.get('type'))} sentencepiece tokenizer of {num(tok.get('vocab_size'))} "
           "pieces, with the original's special tokens and chat template.", ""]  # fmt: skip
    fert = tok.get("fertility") or {}
    if fert:
        rows = [[name, num((fert.get(key) or {}).get("tokens_per_word"), 3),
                 num((fert.get(key) or {}).get("chars_per_token"), 3)]
                for name, key in (("original", "original"), ("new", "new"))]  # fmt: skip
        out += [f"Fertility on general Russian prose never trained on ({md(fert.get('text'))}):",
                "", *_table(["Tokenizer", "tokens per word", "characters per token"], rows)]  # fmt: skip
    return out


def _swap_section(swap: Mapping[str, Any]) -> list[str]:
    if not swap:
        return []
    rows = [["new rows initialised by", md(swap.get("init"))],
            ["vocabulary, original → new", f"{num(swap.get('old_vocab'))} → {num(swap.get('new_vocab'))}"],
            ["old tokens per new token (mean)", num(swap.get("mean_pieces"), 2)],
            ["new tokens without an old spelling", num(swap.get("unspelled"))]]  # fmt: skip
    head = swap.get("head") or {}
    if head:
        rows.append(["output head chosen", md(head.get("chosen"))])
        for name, bpc in sorted((head.get("bpc") or {}).items()):
            rows.append([f"held-out bits per character, {md(name)} head", num(bpc, 4)])
    return ["## Vocabulary swap", "", *_table(["", "Value"], rows)]


def _training_section(records: Mapping[str, Any]) -> list[str]:
    rows = []
    for name in ("train", "lora"):
        step = records.get(name) or {}
        if not step:
            continue
        losses = [float(x) for x in step.get("losses") or []]
        tail = losses[-5:]
        rows.append([md(name), md(step.get("mode")), num(step.get("steps")),
                     num(step.get("trainable_params")),
                     num(losses[0], 4) if losses else "—", num(losses[-1], 4) if losses else "—",
                     num(sum(tail) / len(tail), 4) if tail else "—",
                     num(step.get("tokens_per_second"), 1), num(step.get("seconds"), 1)])  # fmt: skip
    if not rows:
        return []
    header = ["Step", "Mode", "Steps", "Trainable parameters", "First loss", "Last loss",
              "Mean of the last five", "Tokens per second", "Seconds"]  # fmt: skip
    return ["## Training", "", *_table(header, rows)]


def _merge_section(merge: Mapping[str, Any]) -> list[str]:
    if not merge:
        return []
    scores = list(merge.get("scores") or [])
    out = ["## Merging factor φ", "",
           f"φ = {num(merge.get('best_phi'), 3)}, chosen by the rule “{md(merge.get('select_by'))}” "
           f"(forgetting tolerance {num(100 * float(merge.get('tolerance') or 0.0), 1)} %"
           + ("; no φ was within it, the least forgetting one was kept" if merge.get("fallback") else "")
           + ").", ""]  # fmt: skip
    rows = [[num(s.get("phi"), 3), num(s.get("bpc"), 4), num(s.get("gain"), 4),
             num(100 * float(s.get("forgetting") or 0.0), 2),
             "yes" if s.get("within_tolerance") else "no"] for s in scores]  # fmt: skip
    if rows:
        out += ["The curve (Russian held-out bits per character, gain over φ = 0, forgetting):",
                "", *_table(["φ", "bits per character", "gain", "forgetting, %",
                             "within tolerance"], rows)]  # fmt: skip
    categories = sorted({c for s in scores for c in (s.get("forgetting_by_category") or {})})
    if categories:
        table = [[num(s.get("phi"), 3)]
                 + [num(100 * float((s.get("forgetting_by_category") or {}).get(c, math.nan)), 2)
                    for c in categories] for s in scores]  # fmt: skip
        out += ["Forgetting by category (relative rise of bits per character, %):", "",
                *_table(["φ", *(md(c) for c in categories)], table)]  # fmt: skip
    return out


def _usage_section(tokenizer_model: bool, adapter: bool) -> list[str]:
    out = ["## Use", "", "```python",
           "from transformers import AutoModelForCausalLM, AutoTokenizer",
           'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
           'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")', "```", ""]  # fmt: skip
    if tokenizer_model:
        out += ["For llama.cpp (`tokenizer.model` is the tokenizer's sentencepiece model):", "",
                "```sh", "python llama.cpp/convert_hf_to_gguf.py path/to/this/folder "
                "--outtype bf16 --outfile model-ru.gguf", "```", ""]  # fmt: skip
    if adapter:
        out += ["`adapter/` holds the LoRA adapter on its own (see its README.md).", ""]
    return out


def adapter_card(
    records: Mapping[str, Any], config: Mapping[str, Any], *, original: Path | None = None
) -> str:
    lora = records.get("lora") or {}
    merge = records.get("merge") or {}
    base = base_name(original)
    front = ["---", "language:", "- ru", "library_name: peft"]
    if base:
        front.append(f"base_model: {_yaml(base)}")
    front += ["tags:", "- lora", "- russian", "- sbs-adaptation", "---", ""]
    losses = [float(x) for x in lora.get("losses") or []]
    rows = [["rank r", num(config.get("r"))], ["alpha", num(config.get("lora_alpha"), 1)],
            ["target modules", md(", ".join(sorted(config.get("target_modules") or [])))],
            ["steps", num(lora.get("steps"))],
            ["last loss", num(losses[-1], 4) if losses else "—"]]  # fmt: skip
    if merge:
        rows.append(["merged into the released model at φ", num(merge.get("best_phi"), 3)])
    title = f"LoRA adapter of {md(base)}, adapted to Russian" if base else "LoRA adapter"
    return "\n".join([
        *front, f"# {title}", "",
        "The LoRA the adaptation recipe trained on top of the vocabulary-swapped, "
        "embedding-trained model (its base, which has the new tokenizer in this folder; the "
        "released model is that base with this adapter merged at φ).", "",
        *_table(["", "Value"], rows),
    ]).rstrip() + "\n"  # fmt: skip


# ----------------------------------------------------------------------------- download


class _Sink:
    """A write-only file for ``zipfile``: what is written waits in memory until taken."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def zip_stream(files: Sequence[tuple[str, Path]], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """A zip of ``(name in the archive, file)`` as a stream of chunks, written as it is read
    (stored, not compressed: weights do not compress; zip64 for files over 4 GiB), so a
    model of many gigabytes never sits in memory or in a temporary file."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[arg-type]
        for name, path in files:
            info = zipfile.ZipInfo.from_file(path, name)
            info.compress_type = zipfile.ZIP_STORED
            with Path(path).open("rb") as source, archive.open(info, "w") as target:
                while block := source.read(chunk_size):
                    target.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
