"""Decide whether a model on disk or an uploaded archive is safe to register, and install it.

Accepted forms:

* a Hugging Face folder: ``config.json``, tokenizer files and ``*.safetensors`` weights;
* a single ``.gguf`` file;
* a ``.zip`` / ``.tar`` / ``.tar.gz`` (``.tgz``, ``.tar.bz2``, ``.tar.xz``) archive holding either
  of those, at its top level or inside a single top folder.

Anything that could run code when the model is loaded is refused: pickled weights, Python code
or native libraries, and ``auto_map`` entries (which make ``transformers`` import code shipped
with the model). Metadata may not name files outside the model either (``"vocab_file":
"/etc/passwd"`` in ``tokenizer_config.json`` and the like: some transformers versions open such
paths, and the answers would print them). Nothing here ever unpickles, imports or executes a
model file: safetensors and GGUF headers are parsed by hand, every length checked against the
file's size before anything is read or allocated, without loading tensors.

Two ways in:

* :func:`install_model` takes a path this program chose (an upload it staged, a worker's
  output, a model shipped on PyPI);
* :func:`install_from_server_path` takes a path a person typed. It must lie under one of the
  configured import roots and is opened one component at a time relative to the folder before
  (``O_NOFOLLOW``): no symlink is followed and nothing can be swapped between the check and the
  copy. Hard links are refused like symlinks. Every way of failing before the model is reached
  (outside the roots, missing, unreadable, a link) gives the same message, so the answer says
  nothing about files outside the roots.

Files are copied (or extracted) into a temporary folder inside the store, validated again
there, hashed and renamed into place; any failure removes the partial copy. Archives are
checked entry by entry before anything is written; tars are read as a stream whose size and
compression ratio are checked as it inflates, so a gzip bomb stops after a bounded read.

The module is pure Python (no Django) so it can run in a web process, a Celery worker or a CLI.
Its messages are English templates marked with :func:`gettext_noop` (``makemessages`` extracts
them) and kept with their params in :class:`Message`; ``str()`` of an error is the English text,
and the web side translates ``error.message`` into the reader's language when it shows it.
"""

from __future__ import annotations

import bz2
import dataclasses
import errno
import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Literal, Union

from adaptation.registry import gettext_noop

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "Message",
    "ModelFileError",
    "ModelInspection",
    "ServerPathError",
    "check_archive",
    "inspect_model_path",
    "install_from_server_path",
    "install_model",
    "sha256_file",
]

GIB = 1024**3
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_TOTAL_BYTES = 64 * GIB
#: An archive entry (zip) or a tar stream (gzip, bzip2, xz) that inflates more than this many
#: times its compressed size is refused, once past ``_RATIO_MIN_BYTES``: real weights barely
#: compress.
DEFAULT_MAX_RATIO = 250.0
_RATIO_MIN_BYTES = 1024**2

_CHUNK = 1024**2
_RAW_CHUNK = 64 * 1024  # compressed bytes read at a time while inflating a tar
_MAX_JSON_BYTES = 256 * 1024**2
_MAX_JSON_DEPTH = 64  # real configs nest 3 to 6 levels
_MAX_SAFETENSORS_HEADER = 100 * 1024**2  # the safetensors library's own limit
_MAX_FOLDER_ENTRIES = 100_000
_MAX_FOLDER_DEPTH = 32
_MAX_TAR_META = 1024**2  # PAX headers and GNU long names are read into memory by tarfile

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".ckpt", ".pickle", ".joblib"})
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll"})
_VERSIONED_SO = re.compile(r"\.so(\.\d+)+$")

#: Non-weight files of a Hugging Face folder that are copied into the store.
HF_METADATA_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "chat_template.jinja",
        "chat_template.json",
        "README.md",
        "USE_POLICY.md",
    }
)
#: The JSON metadata whose every key is checked for auto_map and for paths outside the model.
_CHECKED_JSON = ("config.json", "tokenizer_config.json", "generation_config.json", "chat_template.json")  # fmt: skip
_TOKENIZER_FILES = frozenset({"tokenizer.json", "tokenizer.model"})
_VOCAB_FILES = frozenset(
    {"vocab.json", "vocab.txt", "merges.txt", "spiece.model", "sentencepiece.bpe.model"}
)
_LEGAL_PREFIXES = ("LICENSE", "LICENCE", "NOTICE", "COPYING")
_INDEX_SUFFIX = ".safetensors.index.json"

#: Keys whose values are text shown to the model (tokens, templates), not paths.
_TEXT_KEYS = frozenset(
    {"chat_template", "added_tokens_decoder", "content", "additional_special_tokens",
     "extra_special_tokens", "model_specific_special_tokens"}
)  # fmt: skip
#: transformers' own bookkeeping: overwritten with the real folder on load, never opened.
_INFORMATIONAL_KEYS = frozenset({"_name_or_path", "name_or_path"})
#: An absolute path (POSIX, Windows, home directory) or a file URL.
_ABSOLUTE_RE = re.compile(r"^(?:[/\\]|~[\w.-]*(?:[/\\]|$)|[A-Za-z]:[/\\]|file:)", re.IGNORECASE)

_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_TAR_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_ARCHIVE_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
)

# Never follow a symlink; never block on a FIFO swapped in for a file.
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW
_O_FILE = os.O_RDONLY | _NOFOLLOW

_SAFETENSORS_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


#: A message's param: text shown as is, a count (shown with the reader's digit grouping) or
#: a nested message (translated too).
Param = Union[str, int, "Message"]


def _same(text: str) -> str:
    return text


def _grouped(n: int) -> str:
    return f"{n:,}"


@dataclass(frozen=True)
class Message:
    """``msgid % params``: ``msgid`` is an English template marked with :func:`gettext_noop`.

    :meth:`text` gives the English text, or the reader's with ``translate`` (e.g. Django's
    ``gettext``) and ``number`` (how a count is written). :meth:`to_json` and
    :meth:`from_json` carry it through a database row to the page that shows it.
    """

    msgid: str
    params: dict[str, Param] = field(default_factory=dict)

    def text(
        self, translate: Callable[[str], str] = _same, number: Callable[[int], str] = _grouped
    ) -> str:
        template = translate(self.msgid)
        if not self.params:
            return template
        values: dict[str, str] = {}
        for key, value in self.params.items():
            if isinstance(value, Message):
                values[key] = value.text(translate, number)
            elif isinstance(value, int) and not isinstance(value, bool):
                values[key] = number(value)
            else:
                values[key] = str(value)
        return template % values

    def __str__(self) -> str:
        return self.text()

    def to_json(self) -> dict[str, Any]:
        params = {k: v.to_json() if isinstance(v, Message) else v for k, v in self.params.items()}
        return {"msgid": self.msgid, "params": params}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """The message :meth:`to_json` gave (a nested message is an object, any other value
        is kept as a count or as text). Raises KeyError, TypeError on anything else."""
        params: dict[str, Param] = {}
        for key, value in dict(data.get("params") or {}).items():
            if isinstance(value, dict):
                params[str(key)] = cls.from_json(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                params[str(key)] = value
            else:
                params[str(key)] = str(value)
        msgid = data["msgid"]
        if not isinstance(msgid, str):
            raise TypeError("msgid must be text")
        return cls(msgid, params)


class ModelFileError(ValueError):
    """A model file or archive was refused; the message names the file and the reason.

    ``msgid`` (marked with :func:`gettext_noop`) and ``params`` make :attr:`message`, which the
    web side translates; ``str(error)`` is the English text.
    """

    def __init__(self, msgid: str, params: Mapping[str, Param] | None = None) -> None:
        self.message = Message(msgid, dict(params or {}))
        super().__init__(self.message.text())

    @property
    def msgid(self) -> str:
        return self.message.msgid

    @property
    def params(self) -> dict[str, Param]:
        return self.message.params

    def __reduce__(self) -> Any:
        return (type(self), (self.msgid, self.params), self.__dict__)


class ServerPathError(ModelFileError):
    """A typed server path that cannot be used. ``disabled``: no import roots are configured.

    Otherwise the message is the same whether the path is outside the roots, missing,
    unreadable or a link, so it tells nothing about the server's files.
    """

    def __init__(
        self, msgid: str, params: Mapping[str, Param] | None = None, *, disabled: bool = False
    ) -> None:
        super().__init__(msgid, params)
        self.disabled = disabled


@dataclass(frozen=True)
class ModelInspection:
    """What was found in a validated model.

    ``root`` is the Hugging Face folder, or the ``.gguf`` file itself. ``weight_files`` are
    names relative to the folder holding them, sorted. ``total_bytes`` is the weights' size and
    ``sha256`` the digest of the weight files' bytes concatenated in that sorted order.
    """

    kind: Literal["hf_folder", "gguf"]
    root: Path
    weight_files: tuple[str, ...]
    total_bytes: int
    sha256: str
    architecture: str | None
    tokenizer_class: str | None


# --------------------------------------------------------------------------- public API


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        _hash_into(digest, f)
    return digest.hexdigest()


def inspect_model_path(path: Path | str) -> ModelInspection:
    """Validate a Hugging Face folder or a ``.gguf`` file in place and describe it.

    A folder holding a single ``.gguf`` (and no ``config.json``) is accepted as that GGUF.
    Raises :class:`ModelFileError` on anything unsafe or incomplete.
    """
    path = Path(path)
    with _open_trusted(path) as src:
        if src.is_dir:
            return _inspect_folder(_survey(src, path), compute_hash=True)
        if src.name.lower().endswith(".gguf"):
            with _reader(src) as f:
                return _inspect_gguf(f, src.size, path, compute_hash=True)
    raise ModelFileError(
        gettext_noop(
            "%(name)s: not a model folder or a .gguf file; give a Hugging Face folder "
            "(config.json + tokenizer + *.safetensors) or a single .gguf file"
        ),
        {"name": path.name},
    )


def check_archive(
    path: Path | str,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
) -> list[str]:
    """Check an archive without extracting anything; return its normalized entry names.

    Refuses unsafe paths (``..``, absolute, drive letters), links and devices, pickles and
    code, too many entries, too many bytes, zip-bomb ratios, and archives that hold no model.
    """
    path = Path(path)
    limits = _Limits(max_entries, max_total_bytes, max_ratio)
    with _open_trusted(path) as src:
        if src.is_dir:
            raise ModelFileError(
                gettext_noop("%(name)s: archive does not exist or is not a file"),
                {"name": path.name},
            )
        with _reader(src) as f:
            return _plan_archive(f, src.name, limits).names


def install_model(
    source: Path | str,
    store: Path | str,
    slug: str,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
) -> ModelInspection:
    """Copy or extract a model that this program chose into ``store/slug``; inspect the copy.

    ``source`` is a Hugging Face folder (only allowed files are copied; symlinks inside it are
    copied as plain files, none may point out of it), a ``.gguf`` file (installed as
    ``store/slug/<name>.gguf``) or an archive (checked first, then only the model files are
    extracted). For a path a person typed use :func:`install_from_server_path`.
    """
    source = Path(source)
    _check_slug(Path(store), slug)
    with _open_trusted(source) as src:
        return _install(src, Path(store), slug, _Limits(max_entries, max_total_bytes, max_ratio))


def install_from_server_path(
    path: str | Path,
    roots: Sequence[str | Path],
    store: Path | str,
    slug: str,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
) -> ModelInspection:
    """Install a model from a server path a person typed, confined to ``roots``.

    ``path`` must be absolute and lie under one of ``roots`` (absolute folders chosen by the
    administrator; a root may itself be a symlink). Below the root each component is opened
    relative to the one before without following symlinks, and the files are copied from those
    open descriptors, so nothing outside the roots is ever read. Symlinks inside the model
    folder are copied as plain files when their target is inside it and is not a link itself;
    hard links are refused. Raises :class:`ServerPathError` (one message for every path that
    cannot be used, or ``disabled`` when ``roots`` is empty) and :class:`ModelFileError` for
    a model that is refused. Safe to call from a background job: it touches only the store.
    """
    _check_slug(Path(store), slug)
    with _open_confined(os.fspath(path), roots) as src:
        return _install(src, Path(store), slug, _Limits(max_entries, max_total_bytes, max_ratio))


# --------------------------------------------------------------------------- opening sources


@dataclass(frozen=True)
class _Limits:
    max_entries: int
    max_total_bytes: int
    max_ratio: float | None


@dataclass
class _Source:
    """An open model folder or file. ``confined``: reached from a typed path (hard links out)."""

    fd: int
    name: str
    is_dir: bool
    size: int
    confined: bool


@contextmanager
def _open_trusted(path: Path) -> Iterator[_Source]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelFileError(
            gettext_noop("%(path)s: does not exist"), {"path": str(path)}
        ) from None
    except OSError as exc:
        raise ModelFileError(
            gettext_noop("%(path)s: cannot be opened (%(error)s)"),
            {"path": str(path), "error": str(exc.strerror)},
        ) from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise ModelFileError(
                gettext_noop("%(name)s: not a regular file or folder"), {"name": path.name}
            )
        yield _Source(fd, path.name, stat.S_ISDIR(st.st_mode), st.st_size, confined=False)
    finally:
        os.close(fd)


def _path_parts(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split("/") if p not in ("", "."))


@contextmanager
def _open_confined(text: str, roots: Sequence[str | Path]) -> Iterator[_Source]:
    if not roots:
        raise ServerPathError(
            gettext_noop(
                "registering a model by server path is disabled: no import roots are "
                "configured (MODEL_IMPORT_ROOTS); upload the model instead"
            ),
            disabled=True,
        )
    shown = ", ".join(os.fspath(r) for r in roots)
    refused = ServerPathError(
        gettext_noop(
            "%(path)s: no readable model folder or file by this name under the import roots "
            "(%(roots)s); give the absolute path of a model folder or file inside one of them"
        ),
        {"path": text, "roots": shown},
    )
    parts = _path_parts(text)
    if "\x00" in text or not text.startswith("/") or ".." in parts:
        raise refused
    fd = None
    for root in roots:
        root_text = os.fspath(root)
        prefixes = {_path_parts(os.path.normpath(root_text)), _path_parts(os.path.realpath(root_text))}  # fmt: skip
        for prefix in prefixes:
            if parts[: len(prefix)] == prefix:
                try:
                    fd = _walk_open(root_text, parts[len(prefix) :])
                except OSError:
                    continue
                break
        if fd is not None:
            break
    if fd is None:
        raise refused
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise ModelFileError(
                gettext_noop(
                    "%(path)s: is a hard link; hard links are refused like symlinks (they can "
                    "point at files outside the import roots), so copy the file instead"
                ),
                {"path": text},
            )
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise refused
        name = parts[-1] if parts else os.path.basename(text.rstrip("/"))
        yield _Source(fd, name, stat.S_ISDIR(st.st_mode), st.st_size, confined=True)
    finally:
        os.close(fd)


def _walk_open(root: str, parts: tuple[str, ...]) -> int:
    """Open ``root`` (which the administrator chose, links allowed), then each part below it
    relative to the one before, never following a symlink. Raises OSError."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            flags = _O_DIR if i < len(parts) - 1 else os.O_RDONLY | _NOFOLLOW
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def _reader(src: _Source) -> Iterator[BinaryIO]:
    """A buffered reader over the source file's descriptor (left open for the caller)."""
    with open(src.fd, "rb", closefd=False) as f:
        yield f


# --------------------------------------------------------------------------- installing


def _check_slug(store: Path, slug: str) -> None:
    if not _SLUG_RE.match(slug):
        raise ModelFileError(
            gettext_noop(
                "%(slug)s: invalid model slug; use letters, digits, '.', '_' or '-' "
                "(at most 128 characters, starting with a letter or digit)"
            ),
            {"slug": repr(slug)},
        )
    if os.path.lexists(store / slug):
        raise ModelFileError(
            gettext_noop(
                "%(slug)s: a model with this slug already exists in the store; pick another slug"
            ),
            {"slug": slug},
        )


def _install(src: _Source, store: Path, slug: str, limits: _Limits) -> ModelInspection:
    """Check the source, copy what is needed into a temporary folder in the store, validate
    and hash the copy, and rename it to ``store/slug``."""
    fill: Callable[[Path], None]
    if src.is_dir:
        folder = _survey(src, Path(src.name))
        _inspect_folder(folder, compute_hash=False)  # fail before copying gigabytes
        sizes = _member_sizes(folder, limits.max_total_bytes)
        needed = sum(sizes.values())
        fill = lambda tmp: _copy_members(folder, sizes, tmp, limits.max_total_bytes)  # noqa: E731
    elif _archive_kind(src.name) is not None:
        with _reader(src) as f:
            plan = _plan_archive(f, src.name, limits)
        needed = sum(size for _, size in plan.wanted.values())
        fill = lambda tmp: _extract_archive(src, plan, tmp, limits)  # noqa: E731
    elif src.name.lower().endswith(".gguf"):
        with _reader(src) as f:
            _read_gguf_header(f, src.size, src.name)
        needed = src.size
        if needed > limits.max_total_bytes:
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: the model file takes %(size)s bytes, over the %(limit)s-byte limit"
                ),
                {"name": src.name, "size": needed, "limit": limits.max_total_bytes},
            )
        fill = lambda tmp: _copy_source_file(src, tmp)  # noqa: E731
    else:
        raise ModelFileError(
            gettext_noop(
                "%(name)s: not a model folder, a .gguf file or a supported archive "
                "(.zip, .tar, .tar.gz, .tgz)"
            ),
            {"name": src.name},
        )

    store.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(store).free
    if needed > free:
        raise ModelFileError(
            gettext_noop(
                "%(name)s: needs %(size)s bytes but the model store has only %(free)s free"
            ),
            {"name": src.name, "size": needed, "free": free},
        )
    dest = store / slug
    tmp = Path(tempfile.mkdtemp(prefix=f".{slug}.partial-", dir=store))
    try:
        fill(tmp)
        inspection = inspect_model_path(tmp)
        os.chmod(tmp, 0o755)
        if os.path.lexists(dest):
            raise ModelFileError(
                gettext_noop("%(slug)s: another model was installed under this slug meanwhile"),
                {"slug": slug},
            )
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(inspection, root=dest / inspection.root.relative_to(tmp))


# --------------------------------------------------------------------------- file rules


def _forbidden_reason(name: str) -> Message | None:
    """Why a file with this name may never be registered, or None."""
    lower = name.lower()
    suffix = PurePosixPath(lower).suffix
    if suffix in PICKLE_SUFFIXES:
        return Message(
            gettext_noop(
                "pickled weights (%(suffix)s) can run arbitrary code when loaded and are not "
                "accepted; convert the model to safetensors (save_pretrained(..., "
                "safe_serialization=True)) or GGUF and upload that instead"
            ),
            {"suffix": suffix},
        )
    if suffix in CODE_SUFFIXES or _VERSIONED_SO.search(lower):
        return Message(
            gettext_noop(
                "custom code is not accepted; only models that run with the stock "
                "transformers or llama.cpp code can be registered, so remove this file"
            )
        )
    return None


def _refused_file(where: Param, reason: Message) -> ModelFileError:
    return ModelFileError(gettext_noop("%(where)s: %(reason)s"), {"where": where, "reason": reason})


def _is_allowed_hf_file(name: str) -> bool:
    lower = name.lower()
    return (
        name in HF_METADATA_FILES
        or lower.endswith(".safetensors")
        or lower.endswith(_INDEX_SUFFIX)
        or name.upper().startswith(_LEGAL_PREFIXES)
    ) and _forbidden_reason(name) is None


def _check_hf_names(names: set[str], where: Message) -> None:
    """Check that a folder (or archive root) has config, tokenizer and safetensors weights.
    ``where`` names the folder (:func:`_in_folder`, :func:`_in_archive_root`)."""
    if "config.json" not in names:
        raise ModelFileError(
            gettext_noop(
                "config.json: missing from %(where)s; a Hugging Face model needs config.json, "
                "tokenizer files and *.safetensors weights"
            ),
            {"where": where},
        )
    has_tokenizer = bool(names & _TOKENIZER_FILES) or (
        "tokenizer_config.json" in names and bool(names & _VOCAB_FILES)
    )
    if not has_tokenizer:
        raise ModelFileError(
            gettext_noop(
                "tokenizer.json: missing from %(where)s (no tokenizer.json, tokenizer.model or "
                "tokenizer_config.json with vocabulary files); a Hugging Face model needs "
                "config.json, tokenizer files and *.safetensors weights"
            ),
            {"where": where},
        )
    if not any(n.lower().endswith(".safetensors") for n in names):
        raise ModelFileError(
            gettext_noop(
                "*.safetensors: no weight files in %(where)s; a Hugging Face model needs "
                "config.json, tokenizer files and *.safetensors weights"
            ),
            {"where": where},
        )


def _in_folder(name: str) -> Message:
    # Translators: where files are missing or found ("missing from …", "no weight files in
    # …"); in Russian the prepositional case, e.g. "папке %(folder)s".
    return Message(gettext_noop("the folder %(folder)s"), {"folder": name})


def _in_archive_root(label: str, prefix: tuple[str, ...]) -> Message:
    if prefix:
        # Translators: as "the folder %(folder)s" (prepositional case in Russian).
        return Message(
            gettext_noop("the archive %(archive)s (folder %(folder)s/)"),
            {"archive": label, "folder": prefix[0]},
        )
    # Translators: as "the folder %(folder)s" (prepositional case in Russian).
    return Message(gettext_noop("the archive %(archive)s"), {"archive": label})


def _in_archive(entry: str, label: str) -> Message:
    """An archive entry, named with its archive."""
    return Message(gettext_noop("%(entry)s (in %(archive)s)"), {"entry": entry, "archive": label})


# --------------------------------------------------------------------------- folders


@dataclass
class _Folder:
    """A surveyed model folder, read only through ``fd`` (never by path)."""

    fd: int
    path: Path
    confined: bool
    kind: Literal["hf_folder", "gguf"]
    #: top-level file name -> its path inside the folder (a symlink's target, resolved)
    files: dict[str, tuple[str, ...]]
    weights: list[str] = field(default_factory=list)
    copy_names: list[str] = field(default_factory=list)


def _symlink_target(dir_fd: int, name: str, rel: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where a symlink points, as parts inside the folder, or None when it points outside."""
    try:
        target = os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None
    if target.startswith("/"):
        return None
    parts = list(rel)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts) or None


def _survey(src: _Source, path: Path) -> _Folder:
    """Walk a folder through descriptors: refuse forbidden files anywhere and symlinks that
    leave it, list its top-level files and classify its layout."""
    files: dict[str, tuple[str, ...]] = {}
    count = 0

    def walk(dir_fd: int, rel: tuple[str, ...]) -> None:
        nonlocal count
        try:
            with os.scandir(dir_fd) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            where = "/".join(rel) or path.name
            raise ModelFileError(
                gettext_noop("%(where)s: cannot be listed (%(error)s)"),
                {"where": where, "error": str(exc.strerror)},
            ) from None
        for entry in entries:
            count += 1
            if count > _MAX_FOLDER_ENTRIES:
                raise ModelFileError(
                    gettext_noop(
                        "%(name)s: holds more than %(n)s files and folders; "
                        "point at the model folder itself"
                    ),
                    {"name": path.name, "n": _MAX_FOLDER_ENTRIES},
                )
            parts = (*rel, entry.name)
            shown = "/".join(parts)
            if entry.is_symlink():
                target = _symlink_target(dir_fd, entry.name, rel)
                if target is None:
                    raise ModelFileError(
                        gettext_noop(
                            "%(where)s: symlink points outside the model folder; copy the "
                            "real files into the folder (e.g. download with --local-dir "
                            "instead of using the Hugging Face cache)"
                        ),
                        {"where": shown},
                    )
                for name in (entry.name, target[-1]):
                    reason = _forbidden_reason(name)
                    if reason:
                        raise _refused_file(shown, reason)
                if not rel:
                    files[entry.name] = target
            elif entry.is_dir(follow_symlinks=False):
                if len(parts) > _MAX_FOLDER_DEPTH:
                    raise ModelFileError(
                        gettext_noop("%(where)s: folders nested too deeply"), {"where": shown}
                    )
                try:
                    sub = os.open(entry.name, _O_DIR, dir_fd=dir_fd)
                except OSError as exc:
                    raise ModelFileError(
                        gettext_noop("%(where)s: cannot be listed (%(error)s)"),
                        {"where": shown, "error": str(exc.strerror)},
                    ) from None
                try:
                    walk(sub, parts)
                finally:
                    os.close(sub)
            else:
                reason = _forbidden_reason(entry.name)
                if reason:
                    raise _refused_file(shown, reason)
                if not rel:
                    files[entry.name] = (entry.name,)

    walk(src.fd, ())
    names = set(files)
    if "config.json" not in names:
        ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
        if len(ggufs) == 1:
            return _Folder(src.fd, path, src.confined, "gguf", files, ggufs, ggufs)
        if len(ggufs) > 1:
            raise ModelFileError(
                gettext_noop(
                    "%(names)s: several .gguf files in %(folder)s; "
                    "upload exactly one GGUF file per model"
                ),
                {"names": ", ".join(ggufs), "folder": path.name},
            )
    _check_hf_names(names, _in_folder(path.name))
    weights = sorted(n for n in names if n.lower().endswith(".safetensors"))
    copy_names = sorted(n for n in names if _is_allowed_hf_file(n))
    return _Folder(src.fd, path, src.confined, "hf_folder", files, weights, copy_names)


@contextmanager
def _open_member(folder: _Folder, name: str) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """Open a top-level file of the folder relative to its descriptor, following no link."""
    parts = folder.files[name]
    opened: list[int] = []
    try:
        dir_fd = folder.fd
        for part in parts[:-1]:
            dir_fd = os.open(part, _O_DIR, dir_fd=dir_fd)
            opened.append(dir_fd)
        fd = os.open(parts[-1], _O_FILE, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: points at another symlink or through a linked folder; copy the "
                    "real file into the model folder"
                ),
                {"name": name},
            ) from None
        raise ModelFileError(
            gettext_noop("%(name)s: cannot be read (%(error)s)"),
            {"name": name, "error": str(exc.strerror)},
        ) from None
    finally:
        for d in opened:
            os.close(d)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(gettext_noop("%(name)s: not a regular file"), {"name": name})
        if folder.confined and st.st_nlink > 1:
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: is a hard link; hard links are refused like symlinks (they can "
                    "point at files outside the folder), so copy the real file into the folder"
                ),
                {"name": name},
            )
        yield f, st


def _inspect_folder(folder: _Folder, *, compute_hash: bool) -> ModelInspection:
    if folder.kind == "gguf":
        name = folder.weights[0]
        with _open_member(folder, name) as (f, st):
            return _inspect_gguf(f, st.st_size, folder.path / name, compute_hash=compute_hash)

    names = set(folder.files)
    data: dict[str, dict[str, Any]] = {}
    for name in _CHECKED_JSON:
        if name in names:
            data[name] = _read_json_object(folder, name)
            _check_metadata(data[name], name)
    architecture = None
    archs = data["config.json"].get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        architecture = archs[0]
    tokenizer_class = data.get("tokenizer_config.json", {}).get("tokenizer_class")
    if "tokenizer.json" in names:
        _read_json_object(folder, "tokenizer.json")

    for name in folder.weights:
        with _open_member(folder, name) as (f, st):
            _check_safetensors(f, st.st_size, name)
    for name in sorted(n for n in names if n.lower().endswith(_INDEX_SUFFIX)):
        _check_index(_read_json_object(folder, name), name, set(folder.weights))

    digest = hashlib.sha256()
    total = 0
    for name in folder.weights:
        with _open_member(folder, name) as (f, st):
            total += st.st_size
            if compute_hash:
                _hash_into(digest, f)
    return ModelInspection(
        kind="hf_folder",
        root=folder.path,
        weight_files=tuple(folder.weights),
        total_bytes=total,
        sha256=digest.hexdigest() if compute_hash else "",
        architecture=architecture,
        tokenizer_class=tokenizer_class if isinstance(tokenizer_class, str) else None,
    )


# --------------------------------------------------------------------------- JSON metadata


def _read_json_object(folder: _Folder, name: str) -> dict[str, Any]:
    with _open_member(folder, name) as (f, st):
        if st.st_size > _MAX_JSON_BYTES:
            raise ModelFileError(
                gettext_noop("%(name)s: %(size)s bytes is too large for a JSON metadata file"),
                {"name": name, "size": st.st_size},
            )
        raw = f.read(_MAX_JSON_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelFileError(
            gettext_noop("%(name)s: is not valid JSON (nested too deeply)"), {"name": name}
        ) from None
    except ValueError as exc:
        raise ModelFileError(
            gettext_noop("%(name)s: is not valid JSON (%(error)s)"),
            {"name": name, "error": str(exc)},
        ) from exc
    if not isinstance(data, dict):
        raise ModelFileError(
            gettext_noop("%(name)s: must hold a JSON object, not %(type)s"),
            {"name": name, "type": type(data).__name__},
        )
    return data


def _points_outside(value: str) -> bool:
    """An absolute path, a home-relative path, a file URL, or a path with a ``..`` part."""
    return bool(_ABSOLUTE_RE.match(value)) or ".." in re.split(r"[/\\]", value)


def _check_metadata(data: dict[str, Any], label: str) -> None:
    """Refuse ``auto_map`` anywhere (it makes transformers import shipped code), any value that
    names a file outside the model folder (``vocab_file``, ``tokenizer_file`` and every other
    key: some transformers versions open them), chat template names that are not plain names
    (transformers writes one file per name), and nesting deeper than ``_MAX_JSON_DEPTH``."""
    # (value, where, depth, is_text): text values (tokens, templates) are not paths.
    stack: list[tuple[Any, str, int, bool]] = [(data, "", 0, False)]
    while stack:
        value, where, depth, is_text = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise ModelFileError(
                gettext_noop("%(name)s: nested more than %(n)s levels deep; not a model config"),
                {"name": label, "n": _MAX_JSON_DEPTH},
            )
        if isinstance(value, dict):
            if "auto_map" in value:
                raise ModelFileError(
                    gettext_noop(
                        "%(name)s: declares auto_map (%(auto_map)s), i.e. custom code loaded "
                        "with trust_remote_code; only models supported by stock transformers "
                        "can be registered"
                    ),
                    {"name": label, "auto_map": json.dumps(value["auto_map"])[:200]},
                )
            for key, item in value.items():
                key = str(key)
                text = (
                    is_text
                    or key in _TEXT_KEYS
                    or key in _INFORMATIONAL_KEYS
                    or key.endswith(("_token", "_tokens"))
                )
                if key == "chat_template":
                    _check_template_names(item, label)
                stack.append((item, f"{where}.{key}" if where else key, depth + 1, text))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1, is_text) for i, v in enumerate(value))
        elif isinstance(value, str) and not is_text and _points_outside(value):
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: %(key)s names a file outside the model folder (%(value)s); "
                    "transformers may open it when the model is loaded. Remove the key (or "
                    "name a file inside the folder) and register the model again"
                ),
                {"name": label, "key": where, "value": repr(value[:200])},
            )


def _check_template_names(templates: Any, label: str) -> None:
    if isinstance(templates, dict):
        names = list(templates)
    elif isinstance(templates, list):
        names = [t.get("name") for t in templates if isinstance(t, dict)]
    else:
        return
    for name in names:
        if not isinstance(name, str) or not name or name.startswith(".") or re.search(r"[/\\\x00]", name):  # fmt: skip
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: chat template name %(template)s is not a plain name; "
                    "transformers writes each template to a file named after it"
                ),
                {"name": label, "template": repr(str(name)[:200])},
            )


def _check_index(index: dict[str, Any], label: str, weights: set[str]) -> None:
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFileError(gettext_noop("%(name)s: has no weight_map"), {"name": label})
    for shard in sorted({str(v) for v in weight_map.values()}):
        if shard not in weights:
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: lists weight file %(shard)s, which is not in the folder "
                    "(missing shard or not a top-level .safetensors file)"
                ),
                {"name": label, "shard": repr(shard)},
            )


# --------------------------------------------------------------------------- safetensors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_safetensors(f: BinaryIO, size: int, label: str) -> None:
    """Parse a safetensors header (u64 LE length + JSON) and check offsets; load no tensor."""

    def bad(msgid: str, params: Mapping[str, Param] | None = None) -> ModelFileError:
        return ModelFileError(
            gettext_noop(
                "%(name)s: not a valid safetensors file (%(reason)s); it may be truncated or "
                "not safetensors at all, re-export it with save_pretrained(..., "
                "safe_serialization=True)"
            ),
            {"name": label, "reason": Message(msgid, dict(params or {}))},
        )

    head = f.read(8)
    if len(head) < 8:
        raise bad(
            gettext_noop("only %(size)s bytes, shorter than the 8-byte header length"),
            {"size": size},
        )
    (header_len,) = struct.unpack("<Q", head)
    if header_len == 0 or header_len > _MAX_SAFETENSORS_HEADER:
        raise bad(gettext_noop("header length %(n)s is out of range"), {"n": header_len})
    if 8 + header_len > size:
        raise bad(
            gettext_noop("header length %(n)s runs past the end of the file"), {"n": header_len}
        )
    raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise bad(gettext_noop("header is not JSON: nested too deeply")) from None
    except ValueError as exc:
        raise bad(gettext_noop("header is not JSON: %(error)s"), {"error": str(exc)}) from exc
    if not isinstance(header, dict):
        raise bad(gettext_noop("header is not a JSON object"))
    data_size = size - 8 - header_len
    tensors = 0
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict):
                raise bad(gettext_noop("__metadata__ is not an object"))
            continue
        shown = {"tensor": repr(name)}
        if not isinstance(info, dict):
            raise bad(gettext_noop("entry %(tensor)s is not an object"), shown)
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise bad(gettext_noop("tensor %(tensor)s has no dtype"), shown)
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(gettext_noop("tensor %(tensor)s has an invalid shape"), shown)
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise bad(gettext_noop("tensor %(tensor)s has data offsets outside the file"), shown)
        itemsize = _SAFETENSORS_DTYPE_SIZES.get(dtype)
        if itemsize is not None:
            count = 1
            for d in shape:
                count *= d
            if count * itemsize != offsets[1] - offsets[0]:
                raise bad(
                    gettext_noop("tensor %(tensor)s size does not match its dtype and shape"),
                    shown,
                )
        tensors += 1
    if tensors == 0:
        raise bad(gettext_noop("it holds no tensors"))


# --------------------------------------------------------------------------- GGUF


class _Refusal(Exception):
    """An internal refusal that a :class:`ModelFileError` reports as its reason (``message``)."""

    def __init__(self, msgid: str, params: Mapping[str, Param] | None = None) -> None:
        self.message = Message(msgid, dict(params or {}))
        super().__init__(self.message.text())


class _GGUFParseError(_Refusal):
    pass


# Translators: parts of a GGUF file, as in "%(what)s of %(n)s bytes runs past the end of the file".
_GGUF_VALUE = Message(gettext_noop("a value"))
_GGUF_STRING = Message(gettext_noop("a string"))
_GGUF_ARRAY = Message(gettext_noop("an array"))
_GGUF_TENSOR_NAME = Message(gettext_noop("a tensor name"))


class _GGUFReader:
    """Sequential little-endian reader over a GGUF header: every length is checked against the
    bytes left in the file before anything is read, skipped or allocated."""

    _SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    _UINT32, _STRING, _ARRAY = 4, 8, 9
    MAX_ARRAY = 1 << 24  # tokenizer vocabularies and merges are well under this

    def __init__(self, f: BinaryIO, size: int, pos: int) -> None:
        self.f, self.size, self.pos = f, size, pos

    def need(self, n: int, what: Message = _GGUF_VALUE) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _GGUFParseError(
                gettext_noop("%(what)s of %(n)s bytes runs past the end of the file"),
                {"what": what, "n": n},
            )

    def read(self, n: int) -> bytes:
        self.need(n)
        data = self.f.read(n)
        if len(data) != n:
            raise _GGUFParseError(gettext_noop("short read"))
        self.pos += n
        return data

    def skip(self, n: int, what: Message = _GGUF_VALUE) -> None:
        self.need(n, what)
        self.pos += n
        self.f.seek(self.pos)

    def u32(self) -> int:
        return int(struct.unpack("<I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.read(8))[0])

    def string(self, limit: int) -> str:
        n = self.u64()
        if n > limit:
            raise _GGUFParseError(
                gettext_noop("a string of %(n)s bytes (at most %(limit)s expected here)"),
                {"n": n, "limit": limit},
            )
        return self.read(n).decode("utf-8", errors="replace")

    def skip_value(self, vtype: int, depth: int = 0) -> None:
        if vtype in self._SCALAR_SIZES:
            self.skip(self._SCALAR_SIZES[vtype])
        elif vtype == self._STRING:
            self.skip(self.u64(), _GGUF_STRING)
        elif vtype == self._ARRAY and depth < 4:
            etype, count = self.u32(), self.u64()
            if count > self.MAX_ARRAY:
                raise _GGUFParseError(gettext_noop("an array of %(n)s items"), {"n": count})
            if etype in self._SCALAR_SIZES:
                self.skip(count * self._SCALAR_SIZES[etype], _GGUF_ARRAY)
            else:
                self.need(count * 8, _GGUF_ARRAY)  # every element takes at least 8 bytes
                for _ in range(count):
                    self.skip_value(etype, depth + 1)
        else:
            raise _GGUFParseError(gettext_noop("unknown value type %(type)s"), {"type": vtype})


def _read_gguf_header(f: BinaryIO, size: int, label: str) -> tuple[str | None, str | None]:
    """Check the magic, the key/values and every tensor's extent; return (architecture,
    tokenizer model). Counts and lengths are bounded by the file's size before any loop."""
    from gguf.constants import GGML_QUANT_SIZES  # (block size, bytes per block) per type

    f.seek(0)
    magic = f.read(4)
    if magic != b"GGUF":
        raise ModelFileError(
            gettext_noop(
                "%(name)s: does not start with the GGUF magic bytes (found %(magic)s); "
                "it is not a GGUF file"
            ),
            {"name": label, "magic": repr(magic)},
        )
    reader = _GGUFReader(f, size, 4)
    wanted: dict[str, str | None] = {"general.architecture": None, "tokenizer.ggml.model": None}
    try:
        version = reader.u32()
        if version not in (2, 3):
            raise ModelFileError(
                gettext_noop(
                    "%(name)s: GGUF version %(version)s is not supported (only 2 and 3); "
                    "re-convert it with a recent llama.cpp"
                ),
                {"name": label, "version": version},
            )
        n_tensors, n_kv = reader.u64(), reader.u64()
        left = size - reader.pos
        if n_kv > left // 12:  # key length + value type, at least
            raise _GGUFParseError(
                gettext_noop("it claims %(n)s key/values, more than the file holds"), {"n": n_kv}
            )
        if n_tensors > left // 24:  # name length + dimensions + type + offset, at least
            raise _GGUFParseError(
                gettext_noop("it claims %(n)s tensors, more than the file holds"), {"n": n_tensors}
            )
        if n_tensors == 0:
            raise _GGUFParseError(gettext_noop("it holds no tensors"))
        alignment = 32
        for _ in range(n_kv):
            key = reader.string(65_535)  # the GGUF spec's limit on key length
            vtype = reader.u32()
            if key in wanted and vtype == _GGUFReader._STRING:
                wanted[key] = reader.string(4096)
            elif key == "general.alignment" and vtype == _GGUFReader._UINT32:
                alignment = reader.u32()
                if alignment == 0 or alignment & (alignment - 1):
                    raise _GGUFParseError(
                        gettext_noop("alignment %(n)s is not a power of two"), {"n": alignment}
                    )
            else:
                reader.skip_value(vtype)
        tensors = []
        for _ in range(n_tensors):
            reader.skip(reader.u64(), _GGUF_TENSOR_NAME)
            n_dims = reader.u32()
            if n_dims > 4:
                raise _GGUFParseError(
                    gettext_noop("a tensor with %(n)s dimensions (at most 4)"), {"n": n_dims}
                )
            dims = [reader.u64() for _ in range(n_dims)]
            tensors.append((dims, reader.u32(), reader.u64()))
        data_start = -(-reader.pos // alignment) * alignment
        for dims, ttype, offset in tensors:
            count = 1
            for d in dims:
                count *= d
            sizes = GGML_QUANT_SIZES.get(ttype)  # type: ignore[call-overload]
            if sizes is None:
                raise _GGUFParseError(gettext_noop("unknown tensor type %(type)s"), {"type": ttype})
            block, type_size = sizes
            if count % block or data_start + offset + count // block * type_size > size:
                raise _GGUFParseError(gettext_noop("a tensor's data runs past the end of the file"))
    except _GGUFParseError as exc:
        raise ModelFileError(
            gettext_noop(
                "%(name)s: GGUF header does not parse (%(reason)s); the file is truncated or "
                "corrupt"
            ),
            {"name": label, "reason": exc.message},
        ) from exc
    return wanted["general.architecture"], wanted["tokenizer.ggml.model"]


def _inspect_gguf(f: BinaryIO, size: int, root: Path, *, compute_hash: bool) -> ModelInspection:
    architecture, tokenizer = _read_gguf_header(f, size, root.name)
    digest = hashlib.sha256()
    if compute_hash:
        _hash_into(digest, f)
    return ModelInspection(
        kind="gguf",
        root=root,
        weight_files=(root.name,),
        total_bytes=size,
        sha256=digest.hexdigest() if compute_hash else "",
        architecture=architecture,
        tokenizer_class=tokenizer,
    )


# --------------------------------------------------------------------------- archives


class _ArchiveLimitError(_Refusal):
    """A limit hit while reading an archive; reported with the archive's name."""


@dataclass
class _Member:
    raw: str
    ftype: Literal["file", "dir", "symlink", "hardlink", "special"]
    size: int
    compress_size: int | None
    open: Callable[[], AbstractContextManager[IO[bytes]]]
    encrypted: bool = False
    method_ok: bool = True


@dataclass
class _ArchivePlan:
    names: list[str]
    wanted: dict[str, tuple[str, int]]  # normalized member name -> (installed name, size)


def _archive_kind(name: str) -> Literal["zip", "tar"] | None:
    name = name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    return None


class _Counted:
    """A file's ``read`` that counts the bytes it hands out (the compressed side)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.bytes_in = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_in += len(data)
        return data


_DECOMPRESSED: tuple[tuple[bytes, Callable[[Any], Any]], ...] = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)


class _TarStream:
    """The bytes of a tar archive for ``tarfile``'s stream mode, inflated on the fly when
    compressed (the standard library's gzip, bzip2 and xz readers, which inflate no more than
    is asked for). Checked as they stream: more than ``max_out`` bytes in all, or, once past
    1 MiB, more than ``max_ratio`` times the compressed bytes read so far, stops the read.
    Each read yields at most 1 MiB."""

    def __init__(self, raw: BinaryIO, *, max_out: int, max_ratio: float | None) -> None:
        head = raw.read(6)
        raw.seek(0)
        self._counted = _Counted(raw)
        self._compressed = False
        self._stream: Any = self._counted
        for magic, reader in _DECOMPRESSED:
            if head.startswith(magic):
                self._compressed, self._stream = True, reader(self._counted)
        self._max_out, self._max_ratio = max_out, max_ratio
        self.bytes_out = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(_CHUNK if size < 0 else min(size, _CHUNK))
        self.bytes_out += len(data)
        read_in = max(self._counted.bytes_in, 1)
        if self.bytes_out > self._max_out:
            raise _ArchiveLimitError(
                gettext_noop("unpacks to more than the %(limit)s-byte limit for a model"),
                {"limit": self._max_out},
            )
        if (
            self._compressed
            and self._max_ratio is not None
            and self.bytes_out > _RATIO_MIN_BYTES
            and self.bytes_out > self._max_ratio * read_in
        ):
            raise _ArchiveLimitError(
                gettext_noop(
                    "inflates more than %(ratio)s times its compressed size (%(out)s bytes "
                    "from %(in)s), which looks like a compression bomb, not model weights"
                ),
                {"ratio": round(self._max_ratio), "out": self.bytes_out, "in": read_in},
            )
        return data


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses PAX and GNU long-name headers over 1 MiB before tarfile reads them into memory."""

    def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _TAR_META_TYPES and self.size > _MAX_TAR_META:
            raise _ArchiveLimitError(
                gettext_noop(
                    "%(entry)s: an extended tar header of %(size)s bytes (at most %(limit)s)"
                ),
                {"entry": self.name, "size": self.size, "limit": _MAX_TAR_META},
            )
        return super()._proc_member(tarfile)  # type: ignore[misc]


def _iter_archive(f: BinaryIO, label: str, limits: _Limits) -> Generator[_Member, None, None]:
    """Yield the archive's members in order, reading headers only (tars as a bounded stream)."""
    f.seek(0)
    kind = _archive_kind(label)
    if kind == "zip":
        with zipfile.ZipFile(f) as zf:
            for info in zf.infolist():
                mode = info.external_attr >> 16
                ftype: Literal["file", "dir", "symlink", "hardlink", "special"]
                if stat.S_ISLNK(mode):
                    ftype = "symlink"
                elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                    ftype = "special"
                elif info.is_dir():
                    ftype = "dir"
                else:
                    ftype = "file"
                yield _Member(
                    raw=info.filename,
                    ftype=ftype,
                    size=info.file_size,
                    compress_size=info.compress_size,
                    open=functools.partial(zf.open, info),
                    encrypted=bool(info.flag_bits & 0x1),
                    method_ok=info.compress_type in _ZIP_METHODS,
                )
    elif kind == "tar":
        # Headers and padding: 1 KiB per entry at most, and a little end-of-archive slack.
        stream = _TarStream(
            f,
            max_out=limits.max_total_bytes + 1024 * (limits.max_entries + 64),
            max_ratio=limits.max_ratio,
        )
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo) as tf:  # type: ignore[call-overload]
            for member in tf:
                if member.isreg():
                    ftype = "file"
                elif member.isdir():
                    ftype = "dir"
                elif member.issym():
                    ftype = "symlink"
                elif member.islnk():
                    ftype = "hardlink"
                else:
                    ftype = "special"
                yield _Member(
                    raw=member.name,
                    ftype=ftype,
                    size=member.size,
                    compress_size=None,
                    open=functools.partial(_tar_open, tf, member),
                )
    else:
        raise ModelFileError(
            gettext_noop(
                "%(name)s: not a supported archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)"
            ),
            {"name": label},
        )


def _tar_open(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tf.extractfile(member)
    if handle is None:
        raise ModelFileError(
            gettext_noop("%(entry)s: cannot be read from the archive"), {"entry": member.name}
        )
    return handle


def _member_parts(raw: str, label: str) -> tuple[str, ...]:
    """Normalize an archive member name, refusing anything that could escape the folder."""
    if "\x00" in raw:
        raise ModelFileError(
            gettext_noop("%(where)s: entry name contains a NUL byte"),
            {"where": _in_archive(repr(raw), label)},
        )
    where = _in_archive(raw, label)
    if raw.startswith(("/", "\\")):
        raise ModelFileError(
            gettext_noop("%(where)s: absolute path in the archive is not allowed"),
            {"where": where},
        )
    if _DRIVE_RE.match(raw):
        raise ModelFileError(
            gettext_noop("%(where)s: drive-letter path in the archive is not allowed"),
            {"where": where},
        )
    parts = tuple(p for p in re.split(r"[/\\]", raw) if p not in ("", "."))
    if ".." in parts:
        raise ModelFileError(
            gettext_noop("%(where)s: '..' in an archive path could write outside the model folder"),
            {"where": where},
        )
    return parts


def _is_ignorable(parts: tuple[str, ...]) -> bool:
    """macOS archive noise that is neither checked for layout nor extracted."""
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def _plan_archive(f: BinaryIO, label: str, limits: _Limits) -> _ArchivePlan:
    """Check every entry (nothing is written) and decide which members to extract."""
    names: list[str] = []
    seen: set[str] = set()
    dirs: set[str] = set()
    files: dict[tuple[str, ...], int] = {}
    total = 0
    try:
        with closing(_iter_archive(f, label, limits)) as members:
            for count, member in enumerate(members, start=1):
                if count > limits.max_entries:
                    raise ModelFileError(
                        gettext_noop(
                            "%(name)s: has more than %(n)s entries; a model archive should "
                            "only hold the model files"
                        ),
                        {"name": label, "n": limits.max_entries},
                    )
                parts = _member_parts(member.raw, label)
                where = _in_archive(member.raw, label)
                if member.ftype == "symlink":
                    raise ModelFileError(
                        gettext_noop("%(where)s: symlinks are not allowed in model archives"),
                        {"where": where},
                    )
                if member.ftype == "hardlink":
                    raise ModelFileError(
                        gettext_noop("%(where)s: hardlinks are not allowed in model archives"),
                        {"where": where},
                    )
                if member.ftype == "special":
                    raise ModelFileError(
                        gettext_noop(
                            "%(where)s: devices, FIFOs and other special files are not allowed"
                        ),
                        {"where": where},
                    )
                if not parts:
                    continue
                name = "/".join(parts)
                if member.ftype == "dir" and name in dirs:
                    continue
                if name in seen:
                    raise ModelFileError(
                        gettext_noop("%(where)s: the archive holds this path more than once"),
                        {"where": where},
                    )
                seen.add(name)
                names.append(name)
                if member.ftype == "dir":
                    dirs.add(name)
                    continue
                reason = _forbidden_reason(parts[-1])
                if reason:
                    raise _refused_file(where, reason)
                if member.encrypted:
                    raise ModelFileError(
                        gettext_noop("%(where)s: encrypted archive entries are not supported"),
                        {"where": where},
                    )
                if not member.method_ok:
                    raise ModelFileError(
                        gettext_noop("%(where)s: unsupported zip compression method"),
                        {"where": where},
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise ModelFileError(
                        gettext_noop(
                            "%(where)s: the archive unpacks to more than the %(limit)s-byte "
                            "limit for a model"
                        ),
                        {"where": where, "limit": limits.max_total_bytes},
                    )
                ratio = limits.max_ratio
                if (
                    ratio is not None
                    and member.compress_size is not None
                    and member.size >= _RATIO_MIN_BYTES
                    and member.size > ratio * max(member.compress_size, 1)
                ):
                    raise ModelFileError(
                        gettext_noop(
                            "%(where)s: compresses %(ratio)s:1, which looks like a zip bomb, "
                            "not model weights"
                        ),
                        {
                            "where": where,
                            "ratio": round(member.size / max(member.compress_size, 1)),
                        },
                    )
                files[parts] = member.size
    except ModelFileError:
        raise
    except _ArchiveLimitError as exc:
        raise ModelFileError(
            gettext_noop("%(name)s: %(reason)s"), {"name": label, "reason": exc.message}
        ) from None
    except RecursionError:
        raise ModelFileError(
            gettext_noop("%(name)s: cannot read the archive (nested too deeply)"), {"name": label}
        ) from None
    except _ARCHIVE_READ_ERRORS as exc:
        raise ModelFileError(
            gettext_noop("%(name)s: cannot read the archive (%(error)s)"),
            {"name": label, "error": str(exc)},
        ) from exc

    return _ArchivePlan(names=names, wanted=_archive_layout(files, label))


def _archive_layout(files: dict[tuple[str, ...], int], label: str) -> dict[str, tuple[str, int]]:
    """Find the model root (top level or a single top folder) and the members to extract."""
    files = {parts: size for parts, size in files.items() if not _is_ignorable(parts)}
    if not files:
        raise ModelFileError(gettext_noop("%(name)s: the archive holds no files"), {"name": label})
    prefix: tuple[str, ...] = ()
    tops = {parts[0] for parts in files}
    if len(tops) == 1 and all(len(parts) > 1 for parts in files):
        prefix = (next(iter(tops)),)
    root_files = {
        parts[-1]: ("/".join(parts), size)
        for parts, size in files.items()
        if len(parts) == len(prefix) + 1
    }
    names = set(root_files)
    where = _in_archive_root(label, prefix)
    if "config.json" not in names:
        ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
        if len(ggufs) > 1:
            raise ModelFileError(
                gettext_noop("%(names)s: several .gguf files in %(where)s; upload one per model"),
                {"names": ", ".join(ggufs), "where": where},
            )
        if len(ggufs) == 1:
            member, size = root_files[ggufs[0]]
            return {member: (ggufs[0], size)}
    _check_hf_names(names, where)
    return {
        member: (name, size)
        for name, (member, size) in root_files.items()
        if _is_allowed_hf_file(name)
    }


def _extract_archive(src: _Source, plan: _ArchivePlan, dest: Path, limits: _Limits) -> None:
    """Extract only the planned members into ``dest`` (an empty folder), re-checking each."""
    label = src.name
    written: set[str] = set()
    try:
        with _reader(src) as f, closing(_iter_archive(f, label, limits)) as members:
            for member in members:
                parts = _member_parts(member.raw, label)
                name = "/".join(parts)
                if name not in plan.wanted:
                    continue
                target, size = plan.wanted[name]
                if member.ftype != "file" or member.size != size or name in written:
                    raise ModelFileError(
                        gettext_noop("%(where)s: the archive changed while reading"),
                        {"where": _in_archive(member.raw, label)},
                    )
                with member.open() as fin:
                    _write_new_file(fin, dest / target, size, _in_archive(member.raw, label))
                written.add(name)
    except ModelFileError:
        raise
    except _ArchiveLimitError as exc:
        raise ModelFileError(
            gettext_noop("%(name)s: %(reason)s"), {"name": label, "reason": exc.message}
        ) from None
    except _ARCHIVE_READ_ERRORS as exc:
        raise ModelFileError(
            gettext_noop("%(name)s: extraction failed (%(error)s)"),
            {"name": label, "error": str(exc)},
        ) from exc
    missing = set(plan.wanted) - written
    if missing:
        raise ModelFileError(
            gettext_noop("%(name)s: entries vanished while extracting: %(entries)s"),
            {"name": label, "entries": str(sorted(missing))},
        )


# --------------------------------------------------------------------------- copying


def _write_new_file(fin: IO[bytes], target: Path, limit: int, label: Param) -> None:
    """Stream ``fin`` into a new file (never through a symlink), exactly ``limit`` bytes."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise ModelFileError(
                    gettext_noop("%(where)s: holds more bytes than its declared size"),
                    {"where": label},
                )
            fout.write(chunk)
    if written != limit:
        raise ModelFileError(
            gettext_noop("%(where)s: holds fewer bytes than its declared size"), {"where": label}
        )


def _member_sizes(folder: _Folder, max_total_bytes: int) -> dict[str, int]:
    sizes = {}
    for name in folder.copy_names:
        with _open_member(folder, name) as (_, st):
            sizes[name] = st.st_size
    total = sum(sizes.values())
    if total > max_total_bytes:
        raise ModelFileError(
            gettext_noop(
                "%(name)s: the model files take %(size)s bytes, over the %(limit)s-byte limit"
            ),
            {"name": folder.path.name, "size": total, "limit": max_total_bytes},
        )
    return sizes


def _copy_members(folder: _Folder, sizes: dict[str, int], dest: Path, max_total: int) -> None:
    """Copy the allowed top-level files through descriptors opened without following links."""
    total = 0
    for name in folder.copy_names:
        with _open_member(folder, name) as (fin, st):
            total += st.st_size
            if total > max_total or st.st_size != sizes[name]:
                raise ModelFileError(
                    gettext_noop("%(name)s: changed while the model was being copied"),
                    {"name": name},
                )
            _write_new_file(fin, dest / name, st.st_size, name)


def _copy_source_file(src: _Source, dest: Path) -> None:
    with _reader(src) as fin:
        fin.seek(0)
        _write_new_file(fin, dest / src.name, src.size, src.name)


def _hash_into(digest: Any, f: BinaryIO) -> None:
    f.seek(0)
    while chunk := f.read(_CHUNK):
        digest.update(chunk)
