"""Decide whether a model on disk or an uploaded archive is safe to register, and install it.

Accepted forms:

* a Hugging Face folder: ``config.json``, tokenizer files and ``*.safetensors`` weights;
* a single ``.gguf`` file;
* a ``.zip`` / ``.tar`` / ``.tar.gz`` (``.tgz``, ``.tar.bz2``, ``.tar.xz``) archive holding either
  of those, at its top level or inside a single top folder.

Anything that could run code when the model is loaded is refused: pickled weights, Python code
or native libraries, and ``auto_map`` entries (which make ``transformers`` import code shipped
with the model). Nothing here ever unpickles, imports or executes a model file: safetensors and
GGUF headers are parsed by hand, without loading tensors.

Archives are checked entry by entry *before* anything is written; only the allowed model files
are then extracted into a temporary folder beside the destination, validated with the same rules
as a folder, and renamed into place. Any failure removes the partial copy.

The module is pure Python (no Django) so it can run in a web process, a Celery worker or a CLI.
"""

from __future__ import annotations

import dataclasses
import functools
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
from collections.abc import Callable, Generator, Iterable
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Literal

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "ModelFileError",
    "ModelInspection",
    "check_archive",
    "inspect_model_path",
    "install_model",
    "sha256_file",
]

GIB = 1024**3
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_TOTAL_BYTES = 64 * GIB
#: A zip entry that inflates more than this many times its compressed size is refused
#: (only checked for entries of at least ``_RATIO_MIN_BYTES``; real weights barely compress).
DEFAULT_MAX_RATIO = 250.0
_RATIO_MIN_BYTES = 1024**2

_CHUNK = 1024**2
_MAX_JSON_BYTES = 256 * 1024**2
_MAX_SAFETENSORS_HEADER = 100 * 1024**2  # the safetensors library's own limit

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
_TOKENIZER_FILES = frozenset({"tokenizer.json", "tokenizer.model"})
_VOCAB_FILES = frozenset(
    {"vocab.json", "vocab.txt", "merges.txt", "spiece.model", "sentencepiece.bpe.model"}
)
_LEGAL_PREFIXES = ("LICENSE", "LICENCE", "NOTICE", "COPYING")
_INDEX_SUFFIX = ".safetensors.index.json"

_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_ARCHIVE_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
)

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


class ModelFileError(ValueError):
    """A model file or archive was refused; the message names the file and the reason."""


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
    return _sha256_files([Path(path)])


def inspect_model_path(path: Path | str) -> ModelInspection:
    """Validate a Hugging Face folder or a ``.gguf`` file in place and describe it.

    A folder holding a single ``.gguf`` (and no ``config.json``) is accepted as that GGUF.
    Raises :class:`ModelFileError` on anything unsafe or incomplete.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise ModelFileError(f"{path}: does not exist")
    if path.is_dir():
        survey = _survey_folder(path)
        if survey.kind == "gguf":
            return _inspect_gguf(survey.files[survey.weights[0]], compute_hash=True)
        return _inspect_hf(survey, compute_hash=True)
    if path.is_file() and path.name.lower().endswith(".gguf"):
        return _inspect_gguf(path, compute_hash=True)
    raise ModelFileError(
        f"{path.name}: not a model folder or a .gguf file; give a Hugging Face folder "
        "(config.json + tokenizer + *.safetensors) or a single .gguf file"
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
    return _plan_archive(
        Path(path), max_entries=max_entries, max_total_bytes=max_total_bytes, max_ratio=max_ratio
    ).names


def install_model(
    source: Path | str,
    store: Path | str,
    slug: str,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float | None = DEFAULT_MAX_RATIO,
) -> ModelInspection:
    """Copy or extract a model into ``store/slug`` and return the installed copy's inspection.

    ``source`` is a Hugging Face folder (only allowed files are copied, symlinks are never
    followed out of it), a ``.gguf`` file (installed as ``store/slug/<name>.gguf``) or an
    archive (checked first, then only the model files are extracted). The copy is built in a
    temporary folder inside ``store`` and renamed into place; on failure it is removed.
    """
    source, store = Path(source), Path(store)
    if not _SLUG_RE.match(slug):
        raise ModelFileError(
            f"{slug!r}: invalid model slug; use letters, digits, '.', '_' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    dest = store / slug
    if os.path.lexists(dest):
        raise ModelFileError(
            f"{slug}: a model with this slug already exists in the store; pick another slug"
        )
    if not os.path.lexists(source):
        raise ModelFileError(f"{source}: does not exist")

    fill: Callable[[Path], None]
    if source.is_dir():
        survey = _survey_folder(source)
        if survey.kind == "gguf":
            _inspect_gguf(survey.files[survey.weights[0]], compute_hash=False)
        else:
            _inspect_hf(survey, compute_hash=False)
        to_copy = {name: survey.files[name] for name in survey.copy_names}
        needed = _total_size(to_copy.values(), max_total_bytes, str(source.name))
        fill = lambda tmp: _copy_files(to_copy, tmp)  # noqa: E731
    elif _archive_kind(source) is not None:
        plan = _plan_archive(
            source, max_entries=max_entries, max_total_bytes=max_total_bytes, max_ratio=max_ratio
        )
        needed = sum(size for _, size in plan.wanted.values())
        fill = lambda tmp: _extract_archive(source, plan, tmp)  # noqa: E731
    elif source.is_file() and source.name.lower().endswith(".gguf"):
        _inspect_gguf(source, compute_hash=False)
        to_copy = {source.name: source}
        needed = _total_size(to_copy.values(), max_total_bytes, source.name)
        fill = lambda tmp: _copy_files(to_copy, tmp)  # noqa: E731
    else:
        raise ModelFileError(
            f"{source.name}: not a model folder, a .gguf file or a supported archive "
            "(.zip, .tar, .tar.gz, .tgz)"
        )

    store.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(store).free
    if needed > free:
        raise ModelFileError(
            f"{source.name}: needs {needed:,} bytes but the model store has only {free:,} free"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{slug}.partial-", dir=store))
    try:
        fill(tmp)
        inspection = inspect_model_path(tmp)
        os.chmod(tmp, 0o755)
        if os.path.lexists(dest):
            raise ModelFileError(f"{slug}: another model was installed under this slug meanwhile")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(inspection, root=dest / inspection.root.relative_to(tmp))


# --------------------------------------------------------------------------- file rules


def _forbidden_reason(name: str) -> str | None:
    """Why a file with this name may never be registered, or None."""
    lower = name.lower()
    suffix = PurePosixPath(lower).suffix
    if suffix in PICKLE_SUFFIXES:
        return (
            f"pickled weights ({suffix}) can run arbitrary code when loaded and are not "
            "accepted; convert the model to safetensors (save_pretrained(..., "
            "safe_serialization=True)) or GGUF and upload that instead"
        )
    if suffix in CODE_SUFFIXES or _VERSIONED_SO.search(lower):
        return (
            "custom code is not accepted; only models that run with the stock transformers "
            "or llama.cpp code can be registered, so remove this file"
        )
    return None


def _is_allowed_hf_file(name: str) -> bool:
    lower = name.lower()
    return (
        name in HF_METADATA_FILES
        or lower.endswith(".safetensors")
        or lower.endswith(_INDEX_SUFFIX)
        or name.upper().startswith(_LEGAL_PREFIXES)
    ) and _forbidden_reason(name) is None


def _check_hf_names(names: set[str], where: str) -> None:
    """Check that a folder (or archive root) has config, tokenizer and safetensors weights."""
    layout = "a Hugging Face model needs config.json, tokenizer files and *.safetensors weights"
    if "config.json" not in names:
        raise ModelFileError(f"config.json: missing from {where}; {layout}")
    has_tokenizer = bool(names & _TOKENIZER_FILES) or (
        "tokenizer_config.json" in names and bool(names & _VOCAB_FILES)
    )
    if not has_tokenizer:
        raise ModelFileError(
            f"tokenizer.json: missing from {where} (no tokenizer.json, tokenizer.model or "
            f"tokenizer_config.json with vocabulary files); {layout}"
        )
    if not any(n.lower().endswith(".safetensors") for n in names):
        raise ModelFileError(f"*.safetensors: no weight files in {where}; {layout}")


# --------------------------------------------------------------------------- folders


@dataclass
class _Survey:
    root: Path
    kind: Literal["hf_folder", "gguf"]
    files: dict[str, Path]  # top-level regular files (symlinks resolved inside root)
    weights: list[str]
    copy_names: list[str]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _survey_folder(root: Path) -> _Survey:
    """Walk a folder: refuse forbidden files and escaping symlinks, classify its layout."""
    real_root = os.path.realpath(root)

    def unreadable(exc: OSError) -> None:
        raise ModelFileError(f"{exc.filename}: cannot be listed ({exc.strerror})") from exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            is_link = os.path.islink(full)
            if name in filenames or is_link:
                reason = _forbidden_reason(name)
                if reason:
                    raise ModelFileError(f"{rel}: {reason}")
            if is_link:
                target = os.path.realpath(full)
                if not _within(target, real_root):
                    raise ModelFileError(
                        f"{rel}: symlink points outside the model folder (to {target}); "
                        "copy the real files into the folder (e.g. download with "
                        "--local-dir instead of using the Hugging Face cache)"
                    )
                reason = _forbidden_reason(os.path.basename(target))
                if reason:
                    raise ModelFileError(f"{rel}: {reason}")

    files: dict[str, Path] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                continue
            src = Path(os.path.realpath(entry.path)) if entry.is_symlink() else Path(entry.path)
            try:
                st = os.stat(src)
            except OSError as exc:
                if _is_allowed_hf_file(entry.name) or entry.name.lower().endswith(".gguf"):
                    raise ModelFileError(f"{entry.name}: cannot be read ({exc})") from exc
                continue
            if stat.S_ISREG(st.st_mode):
                files[entry.name] = src
            elif _is_allowed_hf_file(entry.name) or entry.name.lower().endswith(".gguf"):
                raise ModelFileError(f"{entry.name}: not a regular file")

    names = set(files)
    if "config.json" not in names:
        ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
        if len(ggufs) == 1:
            return _Survey(root, "gguf", files, ggufs, ggufs)
        if len(ggufs) > 1:
            raise ModelFileError(
                f"{', '.join(ggufs)}: several .gguf files in {root.name}; "
                "upload exactly one GGUF file per model"
            )
    _check_hf_names(names, f"the folder {root.name}")
    weights = sorted(n for n in names if n.lower().endswith(".safetensors"))
    copy_names = sorted(n for n in names if _is_allowed_hf_file(n))
    return _Survey(root, "hf_folder", files, weights, copy_names)


def _inspect_hf(survey: _Survey, *, compute_hash: bool) -> ModelInspection:
    files = survey.files
    config = _read_json_object(files["config.json"], "config.json")
    _refuse_auto_map(config, "config.json")
    architecture = None
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        architecture = archs[0]

    tokenizer_class = None
    if "tokenizer_config.json" in files:
        tok_config = _read_json_object(files["tokenizer_config.json"], "tokenizer_config.json")
        _refuse_auto_map(tok_config, "tokenizer_config.json")
        if isinstance(tok_config.get("tokenizer_class"), str):
            tokenizer_class = tok_config["tokenizer_class"]
    if "tokenizer.json" in files:
        _read_json_object(files["tokenizer.json"], "tokenizer.json")

    for name in survey.weights:
        _check_safetensors(files[name], name)
    for name in sorted(n for n in files if n.lower().endswith(_INDEX_SUFFIX)):
        _check_index(_read_json_object(files[name], name), name, set(survey.weights))

    paths = [files[n] for n in survey.weights]
    return ModelInspection(
        kind="hf_folder",
        root=survey.root,
        weight_files=tuple(survey.weights),
        total_bytes=sum(os.stat(p).st_size for p in paths),
        sha256=_sha256_files(paths) if compute_hash else "",
        architecture=architecture,
        tokenizer_class=tokenizer_class,
    )


def _read_json_object(path: Path, label: str) -> dict[str, Any]:
    size = os.stat(path).st_size
    if size > _MAX_JSON_BYTES:
        raise ModelFileError(f"{label}: {size:,} bytes is too large for a JSON metadata file")
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{label}: is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelFileError(f"{label}: must hold a JSON object, not {type(data).__name__}")
    return data


def _refuse_auto_map(data: dict[str, Any], label: str) -> None:
    """Refuse ``auto_map`` anywhere in a config: it makes transformers import shipped code."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "auto_map" in item:
                raise ModelFileError(
                    f"{label}: declares auto_map ({json.dumps(item['auto_map'])[:200]}), "
                    "i.e. custom code loaded with trust_remote_code; only models supported by "
                    "stock transformers can be registered"
                )
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_index(index: dict[str, Any], label: str, weights: set[str]) -> None:
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFileError(f"{label}: has no weight_map")
    for shard in sorted({str(v) for v in weight_map.values()}):
        if shard not in weights:
            raise ModelFileError(
                f"{label}: lists weight file {shard!r}, which is not in the folder "
                "(missing shard or not a top-level .safetensors file)"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_safetensors(path: Path, label: str) -> None:
    """Parse a safetensors header (u64 LE length + JSON) and check offsets; load no tensor."""

    def bad(reason: str) -> ModelFileError:
        return ModelFileError(
            f"{label}: not a valid safetensors file ({reason}); it may be truncated or not "
            "safetensors at all, re-export it with save_pretrained(..., safe_serialization=True)"
        )

    size = os.stat(path).st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise bad(f"only {size} bytes, shorter than the 8-byte header length")
        (header_len,) = struct.unpack("<Q", head)
        if header_len == 0 or header_len > _MAX_SAFETENSORS_HEADER:
            raise bad(f"header length {header_len:,} is out of range")
        if 8 + header_len > size:
            raise bad(f"header length {header_len:,} runs past the end of the file")
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise bad(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    data_size = size - 8 - header_len
    tensors = 0
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict):
                raise bad("__metadata__ is not an object")
            continue
        if not isinstance(info, dict):
            raise bad(f"entry {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise bad(f"tensor {name!r} has no dtype")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has an invalid shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise bad(f"tensor {name!r} has data offsets outside the file")
        itemsize = _SAFETENSORS_DTYPE_SIZES.get(dtype)
        if itemsize is not None:
            count = 1
            for d in shape:
                count *= d
            if count * itemsize != offsets[1] - offsets[0]:
                raise bad(f"tensor {name!r} size does not match its dtype and shape")
        tensors += 1
    if tensors == 0:
        raise bad("it holds no tensors")


# --------------------------------------------------------------------------- GGUF


class _GGUFParseError(Exception):
    pass


class _GGUFReader:
    """Sequential little-endian reader over a GGUF header, bounded by the file size."""

    _SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    _STRING, _ARRAY = 8, 9

    def __init__(self, f: BinaryIO, size: int, pos: int) -> None:
        self.f, self.size, self.pos = f, size, pos

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _GGUFParseError("runs past the end of the file")

    def read(self, n: int) -> bytes:
        self._need(n)
        data = self.f.read(n)
        if len(data) != n:
            raise _GGUFParseError("short read")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        self._need(n)
        self.pos += n
        self.f.seek(self.pos)

    def u32(self) -> int:
        return int(struct.unpack("<I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.read(8))[0])

    def string(self) -> str:
        return self.read(self.u64()).decode("utf-8", errors="replace")

    def skip_value(self, vtype: int, depth: int = 0) -> None:
        if vtype in self._SCALAR_SIZES:
            self.skip(self._SCALAR_SIZES[vtype])
        elif vtype == self._STRING:
            self.skip(self.u64())
        elif vtype == self._ARRAY and depth < 4:
            etype, count = self.u32(), self.u64()
            if etype in self._SCALAR_SIZES:
                self.skip(count * self._SCALAR_SIZES[etype])
            else:
                self._need(count * 8)  # every element takes at least 8 bytes
                for _ in range(count):
                    self.skip_value(etype, depth + 1)
        else:
            raise _GGUFParseError(f"unknown value type {vtype}")


def _read_gguf_header(path: Path, label: str) -> tuple[str | None, str | None]:
    """Check the magic and parse key/values; return (architecture, tokenizer model)."""
    size = os.stat(path).st_size
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != b"GGUF":
            raise ModelFileError(
                f"{label}: does not start with the GGUF magic bytes (found {magic!r}); "
                "it is not a GGUF file"
            )
        reader = _GGUFReader(f, size, 4)
        wanted: dict[str, str | None] = {"general.architecture": None, "tokenizer.ggml.model": None}
        try:
            version = reader.u32()
            if version not in (2, 3):
                raise ModelFileError(
                    f"{label}: GGUF version {version} is not supported (only 2 and 3); "
                    "re-convert it with a recent llama.cpp"
                )
            reader.u64()  # tensor count
            kv_count = reader.u64()
            reader._need(kv_count * 12)  # key length + value type, at least
            for _ in range(kv_count):
                key = reader.string()
                vtype = reader.u32()
                if key in wanted and vtype == _GGUFReader._STRING:
                    wanted[key] = reader.string()
                    if all(v is not None for v in wanted.values()):
                        break
                else:
                    reader.skip_value(vtype)
        except _GGUFParseError as exc:
            raise ModelFileError(
                f"{label}: GGUF header does not parse ({exc}); the file is truncated or corrupt"
            ) from exc
    return wanted["general.architecture"], wanted["tokenizer.ggml.model"]


def _inspect_gguf(path: Path, *, compute_hash: bool) -> ModelInspection:
    if not path.is_file():
        raise ModelFileError(f"{path.name}: not a regular file")
    architecture, tokenizer = _read_gguf_header(path, path.name)
    return ModelInspection(
        kind="gguf",
        root=path,
        weight_files=(path.name,),
        total_bytes=os.stat(path).st_size,
        sha256=_sha256_files([path]) if compute_hash else "",
        architecture=architecture,
        tokenizer_class=tokenizer,
    )


# --------------------------------------------------------------------------- archives


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


def _archive_kind(path: Path) -> Literal["zip", "tar"] | None:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    return None


def _iter_archive(path: Path) -> Generator[_Member, None, None]:
    """Yield the archive's members in order, reading headers only."""
    kind = _archive_kind(path)
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
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
        with tarfile.open(path, mode="r:*") as tf:
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
            f"{path.name}: not a supported archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)"
        )


def _tar_open(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tf.extractfile(member)
    if handle is None:
        raise ModelFileError(f"{member.name}: cannot be read from the archive")
    return handle


def _member_parts(raw: str, label: str) -> tuple[str, ...]:
    """Normalize an archive member name, refusing anything that could escape the folder."""
    if "\x00" in raw:
        raise ModelFileError(f"{raw!r} (in {label}): entry name contains a NUL byte")
    if raw.startswith(("/", "\\")):
        raise ModelFileError(f"{raw} (in {label}): absolute path in the archive is not allowed")
    if _DRIVE_RE.match(raw):
        raise ModelFileError(f"{raw} (in {label}): drive-letter path in the archive is not allowed")
    parts = tuple(p for p in re.split(r"[/\\]", raw) if p not in ("", "."))
    if ".." in parts:
        raise ModelFileError(
            f"{raw} (in {label}): '..' in an archive path could write outside the model folder"
        )
    return parts


def _is_ignorable(parts: tuple[str, ...]) -> bool:
    """macOS archive noise that is neither checked for layout nor extracted."""
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def _plan_archive(
    path: Path, *, max_entries: int, max_total_bytes: int, max_ratio: float | None
) -> _ArchivePlan:
    """Check every entry (nothing is written) and decide which members to extract."""
    label = path.name
    if not path.is_file():
        raise ModelFileError(f"{label}: archive does not exist or is not a file")
    names: list[str] = []
    seen: set[str] = set()
    dirs: set[str] = set()
    files: dict[tuple[str, ...], int] = {}
    total = 0
    try:
        with closing(_iter_archive(path)) as members:
            for count, member in enumerate(members, start=1):
                if count > max_entries:
                    raise ModelFileError(
                        f"{label}: has more than {max_entries:,} entries; a model archive should "
                        "only hold the model files"
                    )
                parts = _member_parts(member.raw, label)
                where = f"{member.raw} (in {label})"
                if member.ftype in ("symlink", "hardlink"):
                    raise ModelFileError(
                        f"{where}: {member.ftype}s are not allowed in model archives"
                    )
                if member.ftype == "special":
                    raise ModelFileError(
                        f"{where}: devices, FIFOs and other special files are not allowed"
                    )
                if not parts:
                    continue
                name = "/".join(parts)
                if member.ftype == "dir" and name in dirs:
                    continue
                if name in seen:
                    raise ModelFileError(f"{where}: the archive holds this path more than once")
                seen.add(name)
                names.append(name)
                if member.ftype == "dir":
                    dirs.add(name)
                    continue
                reason = _forbidden_reason(parts[-1])
                if reason:
                    raise ModelFileError(f"{where}: {reason}")
                if member.encrypted:
                    raise ModelFileError(f"{where}: encrypted archive entries are not supported")
                if not member.method_ok:
                    raise ModelFileError(f"{where}: unsupported zip compression method")
                total += member.size
                if total > max_total_bytes:
                    raise ModelFileError(
                        f"{where}: the archive unpacks to more than the {max_total_bytes:,}-byte "
                        "limit for a model"
                    )
                if (
                    max_ratio is not None
                    and member.compress_size is not None
                    and member.size >= _RATIO_MIN_BYTES
                    and member.size > max_ratio * max(member.compress_size, 1)
                ):
                    raise ModelFileError(
                        f"{where}: compresses {member.size / max(member.compress_size, 1):,.0f}:1, "
                        "which looks like a zip bomb, not model weights"
                    )
                files[parts] = member.size
    except ModelFileError:
        raise
    except _ARCHIVE_READ_ERRORS as exc:
        raise ModelFileError(f"{label}: cannot read the archive ({exc})") from exc

    return _ArchivePlan(names=names, wanted=_archive_layout(files, label))


def _archive_layout(files: dict[tuple[str, ...], int], label: str) -> dict[str, tuple[str, int]]:
    """Find the model root (top level or a single top folder) and the members to extract."""
    files = {parts: size for parts, size in files.items() if not _is_ignorable(parts)}
    if not files:
        raise ModelFileError(f"{label}: the archive holds no files")
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
    where = f"the archive {label}" + (f" (folder {prefix[0]}/)" if prefix else "")
    if "config.json" not in names:
        ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
        if len(ggufs) > 1:
            raise ModelFileError(
                f"{', '.join(ggufs)}: several .gguf files in {where}; upload one per model"
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


def _extract_archive(path: Path, plan: _ArchivePlan, dest: Path) -> None:
    """Extract only the planned members into ``dest`` (an empty folder), re-checking each."""
    label = path.name
    written: set[str] = set()
    try:
        with closing(_iter_archive(path)) as members:
            for member in members:
                parts = _member_parts(member.raw, label)
                name = "/".join(parts)
                if name not in plan.wanted:
                    continue
                target, size = plan.wanted[name]
                if member.ftype != "file" or member.size != size or name in written:
                    raise ModelFileError(
                        f"{member.raw} (in {label}): the archive changed while reading"
                    )
                with member.open() as fin:
                    _write_new_file(fin, dest / target, size, f"{member.raw} (in {label})")
                written.add(name)
    except ModelFileError:
        raise
    except _ARCHIVE_READ_ERRORS as exc:
        raise ModelFileError(f"{label}: extraction failed ({exc})") from exc
    missing = set(plan.wanted) - written
    if missing:
        raise ModelFileError(f"{label}: entries vanished while extracting: {sorted(missing)}")


# --------------------------------------------------------------------------- copying


def _write_new_file(fin: IO[bytes], target: Path, limit: int, label: str) -> None:
    """Stream ``fin`` into a new file (never through a symlink), at most ``limit`` bytes."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    written = 0
    with os.fdopen(fd, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise ModelFileError(f"{label}: holds more bytes than its declared size")
            fout.write(chunk)
    if written != limit:
        raise ModelFileError(f"{label}: holds fewer bytes than its declared size")


def _copy_files(files: dict[str, Path], dest: Path) -> None:
    """Copy regular files (symlinks already resolved inside the source) into ``dest``."""
    for name, src in files.items():
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fin:
            st = os.fstat(fin.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ModelFileError(f"{name}: not a regular file")
            _write_new_file(fin, dest / name, st.st_size, name)


def _total_size(paths: Iterable[Path], max_total_bytes: int, label: str) -> int:
    total = sum(os.stat(p).st_size for p in paths)
    if total > max_total_bytes:
        raise ModelFileError(
            f"{label}: the model files take {total:,} bytes, over the {max_total_bytes:,}-byte limit"
        )
    return total


def _sha256_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
