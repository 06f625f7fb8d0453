"""Swap a model's vocabulary: new tokenizer, new input embeddings and new LM head.

Every new token ``t`` is spelled with the OLD tokenizer (``ids(t) = [o_1 .. o_k]``) and its
rows are initialised from the old rows (input embeddings and, when untied, the LM head):

* ``mean``           e(t) = (1/k) · Σ_i E_old[o_i]
* ``weighted_mean``  e(t) = Σ_i w_i · E_old[o_i],  w_i ∝ decay^i  (earlier pieces weigh more)
* ``random``         e(t) ~ N(0, I) rescaled to the mean row norm of E_old (a baseline)
* ``projection``     e(t) = M(t) · W,  W = argmin_W ‖M W − T‖² + ridge·‖W‖², where M holds
  the mean-initialised rows and T the rows of a target model that already uses the new
  tokenizer (a regression onto the target's space)
* ``lep``            Learned Embedding Propagation (Tikhomirov & Chernyshev, arXiv 2412.21140),
  as ruadapt does it: e(t) = D(t) · W,  W = argmin_W ‖B W − O‖² + ridge·‖W‖², where O are
  this model's rows (an instruct model), B the rows of its base model (same old tokenizer)
  and D the rows of a *donor*: that base already adapted to the new tokenizer. The map
  base -> instruct is fitted on the old vocabulary (``lep_fit="old"``) or on both converted
  to the new vocabulary by the mean of pieces (``lep_fit="converted"``, ruadapt's default),
  then carries the donor's trained rows into the instruct model's space.

Each method is a function registered in :data:`INIT_METHODS` with :func:`init_method`, beside
its code; the CLI's ``--init``, the configs' checks and the web form's choices read that
registry, so a new method is one function here (and its test).

Spelling: a new token whose string the old vocabulary holds verbatim is its own old token (a
tokenizer swapped onto itself keeps every row). Otherwise a sentencepiece piece ``▁слово``
stands for `` слово`` (a word start) and ``ость`` for a word's continuation: for an old
tokenizer that marks the text start with ``▁`` (LLaMA, Mistral, an adapted model) the
continuation is encoded after a sentinel whose own pieces are then dropped, as ruadapt does,
so it gains no spurious word start. Byte pieces ``<0xNN>`` map to the old tokenizer's byte
token (``<0xNN>`` or the byte-level ``Ġ``-style character); special tokens map to the old
token with the same string, else to the old token of the same role (bos/eos/pad/unk).
Specials are mapped this way under every method.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from adaptation.modelio import heads_tied
from adaptation.registry import Registry, gettext_noop


@dataclass(frozen=True)
class References:
    """Rows of other models an init method may read, for the matrix being initialised."""

    target: torch.Tensor | None = None  # a model on the new tokenizer (projection; LEP's donor)
    base: torch.Tensor | None = None  # LEP: the base model, on the old tokenizer


# (old rows, spellings, config, references) -> (new rows, projection residual or None)
InitRows = Callable[..., tuple[torch.Tensor, float | None]]


@dataclass(frozen=True)
class InitMethod:
    """A registered way to initialise the new rows; ``label`` is what a person reads."""

    name: str
    rows: InitRows
    label: str
    needs_target: bool = False  # needs a model already on the new tokenizer (``--target``)
    needs_base: bool = False  # needs the base model of this one (``--base``)


INIT_METHODS: Registry[InitMethod] = Registry("init")


def init_method(
    name: str, label: str, *, needs_target: bool = False, needs_base: bool = False
) -> Callable[[InitRows], InitRows]:
    """Register the decorated function as the init method ``name``."""

    def register(rows: InitRows) -> InitRows:
        INIT_METHODS.add(name, InitMethod(name, rows, label, needs_target, needs_base))
        return rows

    return register


def without_target(method: InitMethod) -> bool:
    """The methods the pipeline (and the web form) can run: no other model needed."""
    return not (method.needs_target or method.needs_base)


LEP_FITS = ("old", "converted")


@dataclass(frozen=True)
class SwapConfig:
    init: str = "mean"  # a name in INIT_METHODS
    decay: float = 0.5  # weighted_mean: weight of piece i is decay**i before normalising
    ridge: float = 1e-4  # projection, lep: Tikhonov term, relative to the mean of diag(MᵀM)
    seed: int = 0  # random
    lep_fit: str = "old"  # lep: fit base -> this model on the "old" or "converted" vocabulary

    def __post_init__(self) -> None:
        INIT_METHODS.lookup(self.init)
        if not 0 < self.decay <= 1:
            raise ValueError("decay must be in (0, 1]")
        if self.lep_fit not in LEP_FITS:
            raise ValueError(f"lep_fit must be one of {', '.join(LEP_FITS)}")


@dataclass
class SwapReport:
    init: str
    old_vocab: int
    new_vocab: int
    tied: bool
    special_mapped: int = 0  # new specials mapped to an old token
    byte_mapped: int = 0  # byte-fallback pieces mapped to an old byte token
    unspelled: int = 0  # tokens with no old spelling (initialised with the mean old row)
    mean_pieces: float = 0.0  # average number of old tokens per new token
    projection_residual: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=1)
def _byte_chars() -> dict[int, str]:
    """GPT-2's byte-to-character table used by byte-level BPE vocabularies (``Ġ`` = space)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _adds_prefix(tokenizer: Any) -> bool:
    """True for sentencepiece-style tokenizers that mark the text start with ``▁``."""
    ids = tokenizer("a", add_special_tokens=False)["input_ids"]
    return bool(ids) and str(tokenizer.convert_ids_to_tokens(ids[0])).startswith("▁")


SENTINELS = ("\n", "0", "§", "|")  # tried in turn: a character no piece merges with


def _encode_continuations(old: Any, texts: list[str]) -> list[list[int]]:
    """Old ids of word-continuation ``texts`` for a tokenizer that marks the text start.

    Each text is encoded after a sentinel and the sentinel's own ids are dropped; a text for
    which no sentinel stays separate is encoded bare (with the spurious word start).
    """
    out: list[list[int] | None] = [None] * len(texts)
    todo = list(range(len(texts)))
    for sentinel in SENTINELS:
        if not todo:
            break
        head = old(sentinel, add_special_tokens=False)["input_ids"]
        encoded = old([sentinel + texts[i] for i in todo], add_special_tokens=False)["input_ids"]
        left = []
        for i, ids in zip(todo, encoded, strict=True):
            if ids[: len(head)] == head and len(ids) > len(head):
                out[i] = list(ids[len(head) :])
            else:
                left.append(i)
        todo = left
    if todo:
        bare = old([texts[i] for i in todo], add_special_tokens=False)["input_ids"]
        for i, ids in zip(todo, bare, strict=True):
            out[i] = list(ids)
    return [ids or [] for ids in out]


def spell_new_tokens(old: Any, new: Any) -> tuple[list[list[int]], SwapReport]:
    """For every new id, the old ids that spell it (possibly empty)."""
    import re

    new_vocab = len(new)
    report = SwapReport(init="", old_vocab=len(old), new_vocab=new_vocab, tied=False)
    tokens = new.convert_ids_to_tokens(list(range(new_vocab)))
    special_strings = set(new.all_special_tokens) | {
        t.content for t in getattr(new, "added_tokens_decoder", {}).values()
    }
    roles = {}
    for role in ("bos_token", "eos_token", "pad_token", "unk_token"):
        new_str, old_id = getattr(new, role, None), getattr(old, f"{role}_id", None)
        if new_str is not None and old_id is not None:
            roles[new_str] = old_id
    old_vocab = old.get_vocab()
    old_prefix = _adds_prefix(old)
    byte_level = "Ġ" in old_vocab
    spellings: list[list[int] | None] = [None] * new_vocab
    texts: dict[int, str] = {}  # new id -> text the old tokenizer encodes as it is
    continuations: dict[int, str] = {}  # new id -> a word's continuation (no word start)
    old_specials = set(old.all_special_tokens)
    for new_id, token in enumerate(tokens):
        token = str(token)
        if token in special_strings:
            old_id = old_vocab.get(token)
            old_id = old_id if old_id is not None else roles.get(token)
            spellings[new_id] = [old_id] if old_id is not None else []
            report.special_mapped += old_id is not None
            continue
        byte = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", token)
        if byte:
            value = int(byte.group(1), 16)
            old_id = old_vocab.get(token)
            if old_id is None and byte_level:
                old_id = old_vocab.get(_byte_chars()[value])
            if old_id is not None:
                spellings[new_id] = [old_id]
                report.byte_mapped += 1
                continue
            if value < 0x80:
                texts[new_id] = chr(value)
            else:
                spellings[new_id] = []
            continue
        if token in old_vocab and token not in old_specials:
            spellings[new_id] = [old_vocab[token]]  # the same piece: its own row
            continue
        surface = token.replace("▁", " ")
        if old_prefix and surface.startswith(" "):
            surface = surface[1:] or " "  # the old tokenizer adds the word-start marker itself
            texts[new_id] = surface
        elif old_prefix:
            continuations[new_id] = surface
        else:
            texts[new_id] = surface
    if texts:
        ids = list(texts)
        encoded = old([texts[i] for i in ids], add_special_tokens=False)["input_ids"]
        for new_id, old_ids in zip(ids, encoded, strict=True):
            spellings[new_id] = list(old_ids)
    if continuations:
        ids = list(continuations)
        encoded = _encode_continuations(old, [continuations[i] for i in ids])
        for new_id, old_ids in zip(ids, encoded, strict=True):
            spellings[new_id] = old_ids
    out = [s if s is not None else [] for s in spellings]
    report.unspelled = sum(1 for s in out if not s)
    spelled = [len(s) for s in out if s]
    report.mean_pieces = sum(spelled) / len(spelled) if spelled else 0.0
    return out, report


def combine_rows(
    old_rows: torch.Tensor, spellings: list[list[int]], *, decay: float | None = None
) -> torch.Tensor:
    """Rows ``Σ_i w_i · old_rows[o_i]``: uniform weights, or ``w_i ∝ decay**i`` when given.

    Tokens with an empty spelling get the mean of all old rows. Works for 1-D ``old_rows``
    (an LM head bias) as well as matrices.
    """
    old = old_rows.detach().float()
    fallback = old.mean(dim=0)
    out = torch.empty((len(spellings), *old.shape[1:]), dtype=torch.float32)
    for new_id, ids in enumerate(spellings):
        if not ids:
            out[new_id] = fallback
            continue
        rows = old[torch.tensor(ids)]
        if decay is None:
            out[new_id] = rows.mean(dim=0)
        else:
            w = decay ** torch.arange(len(ids), dtype=torch.float32)
            w = w / w.sum()
            out[new_id] = (w.view(-1, *([1] * (rows.dim() - 1))) * rows).sum(dim=0)
    return out.to(old_rows.dtype)


def random_rows(old_rows: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` Gaussian rows, each rescaled to the mean L2 norm of ``old_rows``."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randn((count, old_rows.shape[1]), generator=generator)
    norm = old_rows.detach().float().norm(dim=1).mean()
    return (rows / rows.norm(dim=1, keepdim=True) * norm).to(old_rows.dtype)


def fit_projection(
    source: torch.Tensor, target: torch.Tensor, ridge: float = 1e-4
) -> tuple[torch.Tensor, float]:
    """Least squares ``W = (SᵀS + λI)⁻¹ SᵀT`` with ``λ = ridge · mean(diag SᵀS)``.

    Returns ``W`` (d_source × d_target) and the relative residual ``‖SW − T‖ / ‖T‖``.
    """
    s, t = source.double(), target.double()
    gram = s.T @ s
    lam = ridge * gram.diagonal().mean()
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    weight = torch.linalg.solve(gram + lam * eye, s.T @ t)
    residual = float((s @ weight - t).norm() / t.norm().clamp_min(1e-12))
    return weight.to(source.dtype), residual


def _apply_specials(rows: torch.Tensor, old_rows: torch.Tensor, spellings, specials) -> None:
    for new_id in specials:
        if spellings[new_id]:
            rows[new_id] = old_rows[spellings[new_id]].float().mean(dim=0).to(rows.dtype)


@init_method("mean", gettext_noop("mean of the old pieces"))
def mean_init(
    old_rows: torch.Tensor, spellings: list[list[int]], config: SwapConfig, refs: References
) -> tuple[torch.Tensor, float | None]:
    return combine_rows(old_rows, spellings), None


@init_method("weighted_mean", gettext_noop("weighted mean"))
def weighted_mean_init(
    old_rows: torch.Tensor, spellings: list[list[int]], config: SwapConfig, refs: References
) -> tuple[torch.Tensor, float | None]:
    return combine_rows(old_rows, spellings, decay=config.decay), None


@init_method("random", gettext_noop("random (baseline)"))
def random_init(
    old_rows: torch.Tensor, spellings: list[list[int]], config: SwapConfig, refs: References
) -> tuple[torch.Tensor, float | None]:
    return random_rows(old_rows, len(spellings), config.seed), None


@init_method("projection", gettext_noop("projection onto a target model"), needs_target=True)
def projection_init(
    old_rows: torch.Tensor, spellings: list[list[int]], config: SwapConfig, refs: References
) -> tuple[torch.Tensor, float | None]:
    target = _target_rows(refs, spellings, "projection")
    mean = combine_rows(old_rows, spellings)
    weight, residual = fit_projection(mean, target.to(mean.dtype), config.ridge)
    return mean @ weight, residual


@init_method(
    "lep",
    gettext_noop("LEP: the base-to-this-model map applied to an adapted base"),
    needs_target=True,
    needs_base=True,
)
def lep_init(
    old_rows: torch.Tensor, spellings: list[list[int]], config: SwapConfig, refs: References
) -> tuple[torch.Tensor, float | None]:
    """``D · W`` with ``W = argmin ‖B W − O‖² + ridge`` (B base, O this model, D the donor)."""
    donor = _target_rows(refs, spellings, "lep")
    if refs.base is None:
        raise ValueError("init='lep' needs the base model's rows (--base)")
    if refs.base.shape != old_rows.shape:
        raise ValueError(
            f"the base has {tuple(refs.base.shape)} rows, this model {tuple(old_rows.shape)}: "
            "LEP needs the base of this model, on the same tokenizer"
        )
    source, goal = refs.base.float(), old_rows.float()
    if config.lep_fit == "converted":
        source, goal = combine_rows(source, spellings), combine_rows(goal, spellings)
    weight, residual = fit_projection(source, goal, config.ridge)
    return (donor.float() @ weight).to(old_rows.dtype), residual


def _target_rows(refs: References, spellings: list[list[int]], init: str) -> torch.Tensor:
    if refs.target is None:
        raise ValueError(f"init={init!r} needs a model on the new tokenizer (--target)")
    if refs.target.shape[0] != len(spellings):
        raise ValueError(
            f"the target has {refs.target.shape[0]} rows, the new tokenizer {len(spellings)}"
        )
    return refs.target


def new_rows(
    old_rows: torch.Tensor,
    spellings: list[list[int]],
    config: SwapConfig,
    *,
    special_ids: list[int],
    refs: References = References(),
) -> tuple[torch.Tensor, float | None]:
    """The initialised rows for one matrix (embeddings or head) and the projection residual.

    The registered method computes every row; special tokens then take their old token's row
    whatever the method (for the means that changes nothing: a special is spelled by one id).
    """
    method = INIT_METHODS.lookup(config.init)
    rows, residual = method.rows(old_rows, spellings, config, refs)
    _apply_specials(rows, old_rows, spellings, special_ids)
    return rows, residual


def _references(model: Any | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(input rows, head rows) of a reference model; a tied head reads the input rows."""
    if model is None:
        return None, None
    rows_in = model.get_input_embeddings().weight.detach()
    head = model.get_output_embeddings()
    return rows_in, (head.weight.detach() if head is not None else rows_in)


def _sync_token_ids(model: Any, tokenizer: Any) -> None:
    """Point config and generation config at the new tokenizer's special ids."""
    for role in ("bos", "eos", "pad", "unk"):
        token_id = getattr(tokenizer, f"{role}_token_id", None)
        if hasattr(model.config, f"{role}_token_id") or token_id is not None:
            setattr(model.config, f"{role}_token_id", token_id)
        gen = getattr(model, "generation_config", None)
        if gen is not None and role in ("bos", "eos", "pad"):
            setattr(gen, f"{role}_token_id", token_id)


def swap_vocabulary(
    model: Any,
    old_tokenizer: Any,
    new_tokenizer: Any,
    config: SwapConfig = SwapConfig(),
    *,
    target: Any | None = None,
    base: Any | None = None,
) -> SwapReport:
    """Replace ``model``'s embeddings and LM head (in place) for ``new_tokenizer``.

    ``target`` (a model using ``new_tokenizer``) is required for ``init='projection'`` and
    ``'lep'`` (the donor), ``base`` (this model's base, on the old tokenizer) for ``'lep'``.
    Tied heads stay tied; an untied head is initialised from the old head rows the same way.
    """
    spellings, report = spell_new_tokens(old_tokenizer, new_tokenizer)
    report.init = config.init
    special_ids = sorted(
        set(new_tokenizer.all_special_ids) | set(getattr(new_tokenizer, "added_tokens_decoder", {}))
    )
    input_emb = model.get_input_embeddings()
    output_emb = model.get_output_embeddings()
    tied = heads_tied(model)
    report.tied = tied
    old_in = input_emb.weight.detach().clone()
    old_out = None if tied or output_emb is None else output_emb.weight.detach().clone()
    old_bias = None
    if output_emb is not None and getattr(output_emb, "bias", None) is not None:
        old_bias = output_emb.bias.detach().clone()

    (target_in, target_out), (base_in, base_out) = _references(target), _references(base)
    refs_in = References(target=target_in, base=base_in)
    refs_out = References(target=target_out, base=base_out)

    rows_in, res_in = new_rows(old_in, spellings, config, special_ids=special_ids, refs=refs_in)
    if res_in is not None:
        report.projection_residual["embeddings"] = res_in
    rows_out = None
    if old_out is not None:
        rows_out, res_out = new_rows(
            old_out, spellings, config, special_ids=special_ids, refs=refs_out
        )
        if res_out is not None:
            report.projection_residual["lm_head"] = res_out

    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(rows_in)
        head = model.get_output_embeddings()
        if rows_out is not None:
            head.weight.copy_(rows_out)
        if old_bias is not None:
            head.bias.copy_(combine_rows(old_bias, spellings))
    if tied:
        model.tie_weights()
    model.config.vocab_size = len(new_tokenizer)
    _sync_token_ids(model, new_tokenizer)
    return report


def save_adapted(
    model: Any, tokenizer: Any, out_dir: Path, report: SwapReport | None = None
) -> Path:
    """Save model (safetensors) + tokenizer; ``adaptation_swap.json`` records the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if report is not None:
        (out_dir / "adaptation_swap.json").write_text(json.dumps(report.to_dict(), indent=2))
    return out_dir


def swap_vocab_folder(
    model_path: Path,
    tokenizer_dir: Path,
    out_dir: Path,
    config: SwapConfig = SwapConfig(),
    *,
    cache_dir: Path,
    target_path: Path | None = None,
    base_path: Path | None = None,
) -> SwapReport:
    """Load a model (folder or GGUF), swap its vocabulary, save the result to ``out_dir``.

    ``target_path`` and ``base_path`` are the other models ``projection`` and ``lep`` read.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptation.modelio import resolve_folder

    folder = resolve_folder(Path(model_path), Path(cache_dir))
    old = AutoTokenizer.from_pretrained(folder)
    new = AutoTokenizer.from_pretrained(Path(tokenizer_dir))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)

    def load(path: Path | None) -> Any:
        if path is None:
            return None
        other = resolve_folder(Path(path), Path(cache_dir))
        return AutoModelForCausalLM.from_pretrained(other, dtype=torch.float32)

    report = swap_vocabulary(
        model, old, new, config, target=load(target_path), base=load(base_path)
    )
    save_adapted(model, new, out_dir, report)
    return report
