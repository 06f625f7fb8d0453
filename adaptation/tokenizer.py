"""Train a sentencepiece tokenizer on Russian text and save it as a Hugging Face tokenizer.

Unigram (Kudo 2018) is the default because it beat BPE for Russian in the research; BPE is an
option. The sentencepiece model is trained with the identity normaliser (so decoding gives
back exactly the input text) and converted into a ``tokenizers`` pipeline::

    pre-tokeniser: " " -> "▁", "▁" prepended to the text's first section
    model: Unigram / BPE (byte fallback)
    decoder:    "▁" -> " ", byte fallback, fuse, strip one leading space

The original model's special tokens (bos/eos/pad/unk strings, e.g. SmolLM2's ``<|im_start|>``)
keep their strings and occupy the first ids; its chat template is copied, and a bos token is
prepended to encodings exactly when the original tokenizer does so.

What the frozen body already knows stays whole: the chat roles and the words of the chat
template (``assistant``, ``system``, ``user``…) are user-defined pieces, so a marker such as
``<|im_start|>assistant`` is two tokens, not ``as,s,ist,ant``; and every printable ASCII
character is a piece of its own (``required_chars``), so English and code never fall back to
byte pieces however Russian the corpus.

Round trip: ``decode(encode(text)) == text`` for any text that does not start with a space
(a leading space merges with the dummy prefix, as in the Llama/Mistral fast tokenizers).
"""

from __future__ import annotations

import io
import json
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from adaptation.corpus import read_text_file

ModelType = Literal["unigram", "bpe"]
MODEL_TYPES: dict[str, str] = {"unigram": "Unigram", "bpe": "BPE"}  # name -> label


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 32000
    model_type: ModelType = "unigram"
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    split_digits: bool = True
    max_sentence_length: int = 16384
    input_sentence_size: int = 0  # 0: use every line; else a random sample of that many
    num_threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {', '.join(MODEL_TYPES)}")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must be at least 300 (256 byte pieces + specials)")


@dataclass(frozen=True)
class SpecialTokens:
    """The special-token strings of the original tokenizer, carried over to the new one."""

    unk: str = "<unk>"
    bos: str | None = None
    eos: str | None = None
    pad: str | None = None
    extra: tuple[str, ...] = ()
    add_bos: bool = False  # the original prepends bos when add_special_tokens=True
    chat_template: str | None = None

    @property
    def ordered(self) -> list[str]:
        """Distinct special strings, unk first, then in the original's id order."""
        out: list[str] = []
        for token in (self.unk, self.bos, self.eos, self.pad, *self.extra):
            if token and token not in out:
                out.append(token)
        return out


def special_tokens_of(tokenizer: Any) -> SpecialTokens:
    """Read the special tokens, bos behaviour and chat template of a HF tokenizer."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    extra = tuple(tok.content for _, tok in sorted(added.items()) if getattr(tok, "special", True))
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    add_bos = (
        tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id] != bare[:1]
    )
    return SpecialTokens(
        unk=tokenizer.unk_token or "<unk>",
        bos=tokenizer.bos_token,
        eos=tokenizer.eos_token,
        pad=tokenizer.pad_token,
        extra=extra,
        add_bos=bool(add_bos),
        chat_template=getattr(tokenizer, "chat_template", None),
    )


CHAT_ROLES = ("system", "user", "assistant", "tool")
ASCII_CHARS = "".join(ch for ch in string.printable if ch.isprintable() and ch != " ")


def template_words(chat_template: str | None) -> list[str]:
    """The chat roles and the ASCII words (4+ letters) of the template's string literals,
    leaving out markers (``<|im_start|>``) and subscripts (``message['role']``)."""
    words = list(CHAT_ROLES)
    template = chat_template or ""
    for match in re.finditer(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", template):
        if match.start() and template[match.start() - 1] == "[":
            continue  # a subscript such as message['role']
        text = re.sub(r"<[^<>]*>", " ", match.group()[1:-1])
        for word in re.findall(r"[A-Za-z]{4,}", text):
            if word not in words:
                words.append(word)
    return words


def _lines(text: Iterable[str] | Path) -> Iterator[str]:
    if isinstance(text, Path | str):
        yield from read_text_file(Path(text))
    else:
        for line in text:
            if line.strip():
                yield line


def train_sentencepiece(
    text: Iterable[str] | Path, config: TokenizerConfig, specials: SpecialTokens
) -> bytes:
    """Train a sentencepiece model; returns the serialised ``ModelProto``."""
    import sentencepiece as spm

    spm.set_random_generator_seed(config.seed)
    model = io.BytesIO()
    control = [t for t in specials.ordered if t != specials.unk]
    special_text = " ".join(specials.ordered)
    words = [w for w in template_words(specials.chat_template) if w not in special_text]
    spm.SentencePieceTrainer.train(
        sentence_iterator=_lines(text),
        model_writer=model,
        model_type=config.model_type,
        vocab_size=config.vocab_size,
        character_coverage=config.character_coverage,
        byte_fallback=config.byte_fallback,
        split_digits=config.split_digits,
        max_sentence_length=config.max_sentence_length,
        input_sentence_size=config.input_sentence_size,
        shuffle_input_sentence=True,
        num_threads=config.num_threads,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        unk_piece=specials.unk,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        control_symbols=control,
        user_defined_symbols=words,
        required_chars=ASCII_CHARS,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return model.getvalue()


def _backend(proto_bytes: bytes, config: TokenizerConfig, specials: SpecialTokens) -> Any:
    """A ``tokenizers.Tokenizer`` equivalent to the sentencepiece model."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    proto = pb.ModelProto()
    proto.ParseFromString(proto_bytes)
    vocab = [(p.piece, p.score) for p in proto.pieces]
    if config.model_type == "unigram":
        model = models.Unigram(vocab, unk_id=0, byte_fallback=config.byte_fallback)
    else:
        from transformers.convert_slow_tokenizer import generate_merges

        vocab_ids = {piece: i for i, (piece, _) in enumerate(vocab)}
        # sentencepiece BPE scores are merge ranks: order merges by score, best first
        merges = generate_merges(
            vocab_ids, {piece: score for piece, score in vocab}, specials.ordered
        )
        model = models.BPE(
            vocab_ids,
            merges,
            unk_token=specials.unk,
            fuse_unk=True,
            byte_fallback=config.byte_fallback,
        )
    tok = Tokenizer(model)
    # Prepend "▁" only to the first section (not after every special token), like
    # sentencepiece's dummy prefix; spaces become "▁" without splitting.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first", split=False
    )
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in specials.ordered]
    )
    if specials.add_bos and specials.bos:
        bos_id = tok.token_to_id(specials.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{specials.bos} $A",
            pair=f"{specials.bos} $A {specials.bos} $B",
            special_tokens=[(specials.bos, bos_id)],
        )
    return tok


def build_hf_tokenizer(proto_bytes: bytes, config: TokenizerConfig, specials: SpecialTokens) -> Any:
    """Wrap the converted pipeline as a ``PreTrainedTokenizerFast`` with the original specials."""
    from transformers import PreTrainedTokenizerFast

    extra = [t for t in specials.extra if t not in (specials.bos, specials.eos, specials.pad)]
    hf = PreTrainedTokenizerFast(
        tokenizer_object=_backend(proto_bytes, config, specials),
        unk_token=specials.unk,
        bos_token=specials.bos,
        eos_token=specials.eos,
        pad_token=specials.pad,
        additional_special_tokens=[t for t in extra if t != specials.unk] or None,
        clean_up_tokenization_spaces=False,
    )
    if specials.chat_template:
        hf.chat_template = specials.chat_template
    return hf


def train_tokenizer(
    text: Iterable[str] | Path,
    out_dir: Path,
    config: TokenizerConfig = TokenizerConfig(),
    *,
    original: Any | None = None,
) -> Path:
    """Train on ``text`` (lines or a .txt/.jsonl path) and save a HF tokenizer folder.

    ``original`` (a HF tokenizer or a folder path) supplies the special tokens and the chat
    template to keep; without it the tokenizer gets ``<unk>``, ``<s>`` and ``</s>``.
    The folder also holds ``sentencepiece.model`` and ``adaptation_tokenizer.json``.
    """
    if isinstance(original, str | Path):
        from transformers import AutoTokenizer

        original = AutoTokenizer.from_pretrained(str(original))
    specials = (
        special_tokens_of(original)
        if original is not None
        else SpecialTokens(unk="<unk>", bos="<s>", eos="</s>", pad="</s>", add_bos=True)
    )
    proto = train_sentencepiece(text, config, specials)
    hf = build_hf_tokenizer(proto, config, specials)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out_dir)
    (out_dir / "sentencepiece.model").write_bytes(proto)
    meta = {"config": asdict(config), "specials": asdict(specials), "vocab_size": len(hf)}
    (out_dir / "adaptation_tokenizer.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return out_dir
