"""Tests for adaptation.modelfiles: what may be registered as a model, and safe installation."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import stat
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from adaptation.modelfiles import (
    ModelFileError,
    ModelInspection,
    check_archive,
    inspect_model_path,
    install_model,
    sha256_file,
)

TOKENIZER_JSON = {
    "version": "1.0",
    "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hi": 1}, "unk_token": "<unk>"},
}


# --------------------------------------------------------------------------- builders


def make_hf_folder(folder: Path, *, shards: int = 1) -> Path:
    """A tiny but complete Hugging Face folder with real safetensors weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    (folder / "tokenizer.json").write_text(json.dumps(TOKENIZER_JSON))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"})
    )
    if shards == 1:
        save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, folder / "model.safetensors")
    else:
        weight_map = {}
        for i in range(shards):
            name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            save_file({f"w{i}": np.full((3,), i, dtype=np.float32)}, folder / name)
            weight_map[f"w{i}"] = name
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )
    return folder


def make_gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_tokenizer_model("llama")
    writer.add_tensor("w", np.ones((4,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class _Canary:
    """Unpickling this creates (truncates) the file at ``path``: a real code-execution payload."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def malicious_pickle(canary: Path) -> bytes:
    return pickle.dumps(_Canary(canary))


def folder_members(folder: Path, prefix: str = "") -> list[tuple[str, bytes]]:
    return [(prefix + p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def write_tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_archive(kind: str, path_stem: Path, members: list[tuple[str, bytes]]) -> Path:
    if kind == "zip":
        return write_zip(path_stem.with_suffix(".zip"), members)
    if kind == "tar":
        return write_tar(path_stem.with_suffix(".tar"), members)
    return write_tar(path_stem.with_suffix(".tar.gz"), members, "w:gz")


def assert_nothing_installed(store: Path) -> None:
    """The store is absent or empty: no model, no leftover partial extraction."""
    assert not store.exists() or list(store.iterdir()) == []


@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    return make_hf_folder(tmp_path / "src" / "tiny-llama")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


# --------------------------------------------------------------------------- accepted models


def test_hf_folder_inspection_reports_architecture_tokenizer_and_weight_hash(hf_folder: Path):
    result = inspect_model_path(hf_folder)
    weights = hf_folder / "model.safetensors"
    assert result == ModelInspection(
        kind="hf_folder",
        root=hf_folder,
        weight_files=("model.safetensors",),
        total_bytes=weights.stat().st_size,
        sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
        architecture="LlamaForCausalLM",
        tokenizer_class="PreTrainedTokenizerFast",
    )


def test_install_hf_folder_copies_only_allowed_files(hf_folder: Path, store: Path):
    (hf_folder / "README.md").write_text("# tiny")
    (hf_folder / "LICENSE.txt").write_text("Apache-2.0")
    (hf_folder / "notes.txt").write_text("not a model file")
    (hf_folder / ".gitattributes").write_text("*.safetensors filter=lfs")
    (hf_folder / "images").mkdir()
    (hf_folder / "images" / "plot.png").write_bytes(b"\x89PNG")

    result = install_model(hf_folder, store, "tiny")

    dest = store / "tiny"
    assert result.root == dest
    assert result.kind == "hf_folder"
    assert result.sha256 == inspect_model_path(hf_folder).sha256
    assert sorted(p.name for p in dest.iterdir()) == [
        "LICENSE.txt",
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert (dest / "model.safetensors").read_bytes() == (
        hf_folder / "model.safetensors"
    ).read_bytes()
    assert [p.name for p in store.iterdir()] == ["tiny"]  # no temporary folder left behind
    assert (hf_folder / "notes.txt").exists()  # the source is left untouched


def test_sharded_weights_are_hashed_in_sorted_name_order(tmp_path: Path):
    folder = make_hf_folder(tmp_path / "sharded", shards=2)
    result = inspect_model_path(folder)
    names = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    assert result.weight_files == names
    joined = b"".join((folder / n).read_bytes() for n in names)
    assert result.sha256 == hashlib.sha256(joined).hexdigest()
    assert result.total_bytes == len(joined)


def test_index_listing_a_missing_shard_is_refused(tmp_path: Path):
    folder = make_hf_folder(tmp_path / "sharded", shards=2)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelFileError, match=r"model\.safetensors\.index\.json.*00002-of-00002"):
        inspect_model_path(folder)


def test_tokenizer_model_alone_satisfies_the_tokenizer_requirement(hf_folder: Path):
    (hf_folder / "tokenizer.json").unlink()
    (hf_folder / "tokenizer_config.json").unlink()
    (hf_folder / "tokenizer.model").write_bytes(b"\x0a\x03sentencepiece-proto")
    assert inspect_model_path(hf_folder).tokenizer_class is None


def test_gguf_file_is_accepted_and_installed_in_its_slug_folder(tmp_path: Path, store: Path):
    path = make_gguf(tmp_path / "src" / "tiny.Q8_0.gguf")
    inspected = inspect_model_path(path)
    assert inspected.kind == "gguf"
    assert inspected.architecture == "llama"
    assert inspected.tokenizer_class == "llama"
    assert inspected.weight_files == ("tiny.Q8_0.gguf",)
    assert inspected.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    installed = install_model(path, store, "tiny-gguf")
    assert installed.root == store / "tiny-gguf" / "tiny.Q8_0.gguf"
    assert installed.root.read_bytes() == path.read_bytes()
    assert installed.sha256 == inspected.sha256
    assert [p.name for p in store.iterdir()] == ["tiny-gguf"]


def test_gguf_without_magic_is_refused(tmp_path: Path, store: Path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGML" + b"\x00" * 64)
    with pytest.raises(ModelFileError, match=r"fake\.gguf.*magic"):
        inspect_model_path(path)
    with pytest.raises(ModelFileError, match="magic"):
        install_model(path, store, "fake")
    assert_nothing_installed(store)


def test_truncated_gguf_header_is_refused(tmp_path: Path):
    good = make_gguf(tmp_path / "good.gguf").read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(good[:40])  # magic and counts survive, the key/values do not
    with pytest.raises(ModelFileError, match=r"cut\.gguf.*does not parse"):
        inspect_model_path(path)


def test_sha256_file_matches_hashlib_across_chunks(tmp_path: Path):
    path = tmp_path / "blob"
    data = os.urandom(2 * 1024 * 1024 + 123)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- refused folders


@pytest.mark.parametrize(
    "name",
    [
        "pytorch_model.bin",
        "model.pt",
        "model.pth",
        "weights.pkl",
        "model.ckpt",
        "x.pickle",
        "MODEL.BIN",
    ],
)
def test_pickled_weights_are_refused(hf_folder: Path, store: Path, name: str):
    (hf_folder / name).write_bytes(b"\x80\x04N.")
    with pytest.raises(ModelFileError, match=rf"{name.replace('.', '[.]')}: pickled weights"):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match="pickled weights"):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


@pytest.mark.parametrize(
    "relpath", ["modeling_custom.py", "__pycache__/x.cpython-311.pyc", "kernels/ext.so"]
)
def test_custom_code_is_refused_anywhere_in_the_folder(hf_folder: Path, store: Path, relpath: str):
    target = hf_folder / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"print('hi')")
    with pytest.raises(ModelFileError, match=rf"{Path(relpath).name}: custom code"):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match="custom code"):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


@pytest.mark.parametrize("config_name", ["config.json", "tokenizer_config.json"])
def test_auto_map_is_refused_as_custom_code(hf_folder: Path, store: Path, config_name: str):
    data = json.loads((hf_folder / config_name).read_text())
    data["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (hf_folder / config_name).write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=rf"{config_name}: declares auto_map"):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match="auto_map"):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        (["config.json"], r"config\.json: missing"),
        (["tokenizer.json", "tokenizer_config.json"], r"tokenizer\.json: missing"),
        (["model.safetensors"], r"\*\.safetensors: no weight files"),
    ],
)
def test_missing_required_files_are_refused(
    hf_folder: Path, store: Path, remove: list[str], expected: str
):
    for name in remove:
        (hf_folder / name).unlink()
    with pytest.raises(ModelFileError, match=expected):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match=expected):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"abc", "shorter than the 8-byte header length"),
        ((10_000).to_bytes(8, "little") + b"{}", "runs past the end"),
        ((5).to_bytes(8, "little") + b"nope!", "not JSON"),
        (
            _safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b""),
            "outside the file",
        ),
        (
            _safetensors_bytes(
                {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\x00" * 8
            ),
            "does not match",
        ),
        (_safetensors_bytes({"__metadata__": {}}, b""), "no tensors"),
    ],
)
def test_broken_safetensors_header_is_refused(
    hf_folder: Path, store: Path, content: bytes, reason: str
):
    (hf_folder / "model.safetensors").write_bytes(content)
    with pytest.raises(
        ModelFileError, match=rf"model\.safetensors: not a valid safetensors.*{reason}"
    ):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match=reason):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


def test_symlink_pointing_outside_the_folder_is_refused(
    hf_folder: Path, tmp_path: Path, store: Path
):
    secret = tmp_path / "secret.txt"
    secret.write_text("ssh key")
    (hf_folder / "README.md").symlink_to(secret)
    with pytest.raises(ModelFileError, match=r"README\.md: symlink points outside"):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match="outside"):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


def test_symlink_inside_the_folder_is_installed_as_a_plain_copy(hf_folder: Path, store: Path):
    (hf_folder / "blobs").mkdir()
    (hf_folder / "model.safetensors").rename(hf_folder / "blobs" / "abc123")
    (hf_folder / "model.safetensors").symlink_to(Path("blobs") / "abc123")
    result = install_model(hf_folder, store, "m")
    installed = store / "m" / "model.safetensors"
    assert not installed.is_symlink()
    assert installed.read_bytes() == (hf_folder / "blobs" / "abc123").read_bytes()
    assert not (store / "m" / "blobs").exists()
    assert result.weight_files == ("model.safetensors",)


def test_install_refuses_an_existing_slug_and_an_unsafe_slug(hf_folder: Path, store: Path):
    install_model(hf_folder, store, "tiny")
    before = sorted(p.name for p in (store / "tiny").iterdir())
    with pytest.raises(ModelFileError, match="already exists"):
        install_model(hf_folder, store, "tiny")
    assert sorted(p.name for p in (store / "tiny").iterdir()) == before
    for slug in ["../escape", "a/b", "", ".hidden"]:
        with pytest.raises(ModelFileError, match="invalid model slug"):
            install_model(hf_folder, store, slug)
    assert [p.name for p in store.iterdir()] == ["tiny"]
    assert not (store.parent / "escape").exists()


# --------------------------------------------------------------------------- pickle canary


def test_canary_pickle_payload_really_executes_when_unpickled(tmp_path: Path):
    """Guards the canary tests below: the payload is live, so its absence there means something."""
    canary = tmp_path / "proof.txt"
    pickle.loads(malicious_pickle(canary))
    assert canary.exists()


def test_malicious_pickle_in_folder_is_refused_and_never_executed(
    hf_folder: Path, tmp_path: Path, store: Path
):
    canary = tmp_path / "canary.txt"
    (hf_folder / "pytorch_model.bin").write_bytes(malicious_pickle(canary))
    with pytest.raises(ModelFileError, match=r"pytorch_model\.bin: pickled weights"):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match=r"pytorch_model\.bin"):
        install_model(hf_folder, store, "m")
    assert not canary.exists()
    assert_nothing_installed(store)


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_malicious_pickle_in_archive_is_refused_before_extraction(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str
):
    canary = tmp_path / "canary.txt"
    members = folder_members(hf_folder, "tiny/")
    members.append(("tiny/pytorch_model.bin", malicious_pickle(canary)))
    archive = write_archive(kind, tmp_path / "upload", members)
    with pytest.raises(ModelFileError, match=r"tiny/pytorch_model\.bin.*pickled weights"):
        check_archive(archive)
    with pytest.raises(ModelFileError, match="pickled weights"):
        install_model(archive, store, "m")
    assert not canary.exists()
    assert_nothing_installed(store)


# --------------------------------------------------------------------------- archives


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_archive_with_model_in_a_top_folder_is_installed(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str
):
    members = folder_members(hf_folder, "tiny-llama/")
    members.append(("tiny-llama/notes/todo.txt", b"not extracted"))
    members.append(("__MACOSX/tiny-llama/._config.json", b"apple double"))
    archive = write_archive(kind, tmp_path / "upload", members)

    assert "tiny-llama/config.json" in check_archive(archive)
    result = install_model(archive, store, "tiny")

    assert result.root == store / "tiny"
    assert result.sha256 == inspect_model_path(hf_folder).sha256
    assert result.architecture == "LlamaForCausalLM"
    assert sorted(p.name for p in (store / "tiny").iterdir()) == sorted(
        p.name for p in hf_folder.iterdir()
    )
    assert [p.name for p in store.iterdir()] == ["tiny"]


def test_archive_with_a_gguf_at_top_level_is_installed(tmp_path: Path, store: Path):
    path = make_gguf(tmp_path / "m.gguf")
    archive = write_zip(tmp_path / "upload.zip", [("m.gguf", path.read_bytes())])
    result = install_model(archive, store, "g")
    assert result.kind == "gguf"
    assert result.root == store / "g" / "m.gguf"
    assert result.sha256 == sha256_file(path)


def test_check_archive_returns_normalized_names(hf_folder: Path, tmp_path: Path):
    archive = write_tar(tmp_path / "a.tar", folder_members(hf_folder, "./m/"))
    assert check_archive(archive) == [f"m/{p.name}" for p in sorted(hf_folder.iterdir())]


def test_archive_without_a_model_is_refused(tmp_path: Path, store: Path):
    archive = write_zip(tmp_path / "a.zip", [("README.md", b"hi")])
    with pytest.raises(ModelFileError, match=r"config\.json: missing from the archive a\.zip"):
        check_archive(archive)
    assert_nothing_installed(store)


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize(
    ("bad_name", "reason"),
    [
        ("../evil", r"'\.\.'"),
        ("tiny/../../evil", r"'\.\.'"),
        ("..\\evil", r"'\.\.'"),
        ("ABSOLUTE", "absolute path"),
        ("C:/evil", "drive-letter"),
    ],
)
def test_archive_path_escape_is_refused_and_nothing_is_written(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str, bad_name: str, reason: str
):
    outside = tmp_path / "evil"
    if bad_name == "ABSOLUTE":
        bad_name = str(outside)
    members = [*folder_members(hf_folder, "tiny/"), (bad_name, b"pwned")]
    archive = write_archive(kind, tmp_path / "upload", members)
    with pytest.raises(ModelFileError, match=reason):
        check_archive(archive)
    with pytest.raises(ModelFileError, match=reason):
        install_model(archive, store, "m")
    assert not outside.exists()
    assert not (tmp_path / "src" / "evil").exists()
    assert_nothing_installed(store)


def test_zip_symlink_member_is_refused(hf_folder: Path, tmp_path: Path, store: Path):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in folder_members(hf_folder, "tiny/"):
            zf.writestr(name, data)
        link = zipfile.ZipInfo("tiny/README.md")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ModelFileError, match=r"tiny/README\.md.*symlinks are not allowed"):
        check_archive(archive)
    with pytest.raises(ModelFileError, match="symlinks"):
        install_model(archive, store, "m")
    assert_nothing_installed(store)


@pytest.mark.parametrize(
    ("tar_type", "reason"),
    [
        (tarfile.SYMTYPE, "symlinks are not allowed"),
        (tarfile.LNKTYPE, "hardlinks are not allowed"),
        (tarfile.CHRTYPE, "special files"),
        (tarfile.FIFOTYPE, "special files"),
    ],
)
def test_tar_link_and_device_members_are_refused(
    hf_folder: Path, tmp_path: Path, store: Path, tar_type: bytes, reason: str
):
    archive = tmp_path / "upload.tar"
    with tarfile.open(archive, "w") as tf:
        for name, data in folder_members(hf_folder, "tiny/"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        special = tarfile.TarInfo("tiny/README.md")
        special.type = tar_type
        special.linkname = "/etc/passwd"
        tf.addfile(special)
    with pytest.raises(ModelFileError, match=rf"tiny/README\.md.*{reason}"):
        check_archive(archive)
    with pytest.raises(ModelFileError, match=reason):
        install_model(archive, store, "m")
    assert_nothing_installed(store)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_archive_with_too_many_entries_is_refused(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str
):
    archive = write_archive(kind, tmp_path / "upload", folder_members(hf_folder))
    assert len(check_archive(archive, max_entries=4)) == 4  # exactly at the cap is fine
    with pytest.raises(ModelFileError, match="more than 3 entries"):
        check_archive(archive, max_entries=3)
    with pytest.raises(ModelFileError, match="more than 3 entries"):
        install_model(archive, store, "m", max_entries=3)
    assert_nothing_installed(store)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_archive_over_the_size_cap_is_refused(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str
):
    members = folder_members(hf_folder)
    total = sum(len(data) for _, data in members)
    archive = write_archive(kind, tmp_path / "upload", members)
    check_archive(archive, max_total_bytes=total)
    with pytest.raises(ModelFileError, match=f"more than the {total - 1:,}-byte limit"):
        check_archive(archive, max_total_bytes=total - 1)
    with pytest.raises(ModelFileError, match="byte limit"):
        install_model(archive, store, "m", max_total_bytes=total - 1)
    assert_nothing_installed(store)


def test_folder_over_the_size_cap_is_refused(hf_folder: Path, store: Path):
    with pytest.raises(ModelFileError, match="over the 10-byte limit"):
        install_model(hf_folder, store, "m", max_total_bytes=10)
    assert_nothing_installed(store)


def test_zip_bomb_compression_ratio_is_refused(hf_folder: Path, tmp_path: Path, store: Path):
    members = [*folder_members(hf_folder), ("padding.safetensors", b"\x00" * (4 * 1024 * 1024))]
    archive = write_zip(tmp_path / "bomb.zip", members)
    with pytest.raises(ModelFileError, match=r"padding\.safetensors.*zip bomb"):
        check_archive(archive)
    with pytest.raises(ModelFileError, match="zip bomb"):
        install_model(archive, store, "m")
    assert_nothing_installed(store)


def test_duplicate_archive_entries_are_refused(hf_folder: Path, tmp_path: Path):
    members = folder_members(hf_folder)
    archive = write_tar(tmp_path / "dup.tar", [*members, ("config.json", b"{}")])
    with pytest.raises(ModelFileError, match=r"config\.json.*more than once"):
        check_archive(archive)


def test_failure_after_extraction_removes_the_partial_copy(
    hf_folder: Path, tmp_path: Path, store: Path
):
    (hf_folder / "model.safetensors").write_bytes((10).to_bytes(8, "little") + b"not json!!")
    archive = write_zip(tmp_path / "upload.zip", folder_members(hf_folder))
    check_archive(archive)  # names and sizes are fine; only the content is broken
    with pytest.raises(ModelFileError, match=r"model\.safetensors: not a valid safetensors"):
        install_model(archive, store, "m")
    assert store.exists()  # extraction did start...
    assert_nothing_installed(store)  # ...and its temporary folder is gone


def test_module_does_not_import_django():
    code = (
        "import sys, adaptation.modelfiles; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- metadata naming files


@pytest.mark.parametrize(
    ("config_name", "data", "where"),
    [
        ("tokenizer_config.json", {"vocab_file": "/etc/passwd"}, "vocab_file"),
        ("tokenizer_config.json", {"merges_file": "../../secrets/merges.txt"}, "merges_file"),
        ("tokenizer_config.json", {"tokenizer_file": "..\\..\\tokenizer.json"}, "tokenizer_file"),
        ("tokenizer_config.json", {"spm_file": "~/.ssh/id_rsa"}, "spm_file"),
        (
            "tokenizer_config.json",
            {"special_tokens_map_file": "C:\\Users\\x\\map.json"},
            "special_tokens_map_file",
        ),  # fmt: skip
        ("config.json", {"vocab_file": "file:///etc/shadow"}, "vocab_file"),
        (
            "config.json",
            {"text_config": {"some_weights": ["ok", "/var/lib/db.sqlite3"]}},
            r"text_config\.some_weights\[1\]",
        ),  # fmt: skip
        ("generation_config.json", {"assistant_model": "/srv/other-model"}, "assistant_model"),
    ],
)
def test_metadata_naming_a_file_outside_the_folder_is_refused(
    hf_folder: Path, store: Path, config_name: str, data: dict, where: str
):
    """Some transformers versions open vocab_file & co. verbatim: the answers would print it."""
    path = hf_folder / config_name
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(data)
    path.write_text(json.dumps(merged))
    expected = rf"{config_name.replace('.', '[.]')}: {where} names a file outside the model folder"
    with pytest.raises(ModelFileError, match=expected):
        inspect_model_path(hf_folder)
    with pytest.raises(ModelFileError, match="outside the model folder"):
        install_model(hf_folder, store, "m")
    assert_nothing_installed(store)


@pytest.mark.parametrize("templates", [{"default": "x", "../../evil": "y"}, [{"name": "a/b", "template": "x"}]])  # fmt: skip
def test_chat_template_names_that_are_paths_are_refused(hf_folder: Path, templates: object):
    """transformers writes each named template to <name>.jinja when saving (CVE-2026-9856)."""
    config = json.loads((hf_folder / "tokenizer_config.json").read_text())
    config["chat_template"] = templates
    (hf_folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="chat template name .* is not a plain name"):
        inspect_model_path(hf_folder)


def test_file_names_inside_the_folder_tokens_and_bookkeeping_paths_are_accepted(hf_folder: Path):
    config = json.loads((hf_folder / "tokenizer_config.json").read_text())
    config.update(
        {
            "vocab_file": "vocab.json",  # inside the folder
            "name_or_path": "/home/me/models/tiny",  # overwritten by transformers on load
            "eos_token": "</s>",
            "added_tokens_decoder": {"5": {"content": "/", "special": False}},
            "chat_template": "{{ '../' ~ messages[0]['content'] }}",
        }
    )
    (hf_folder / "tokenizer_config.json").write_text(json.dumps(config))
    model_config = json.loads((hf_folder / "config.json").read_text())
    model_config["_name_or_path"] = "/content/drive/MyDrive/tiny"
    (hf_folder / "config.json").write_text(json.dumps(model_config))
    assert inspect_model_path(hf_folder).kind == "hf_folder"


def test_symlink_out_of_the_folder_is_refused_without_naming_its_target(
    hf_folder: Path, tmp_path: Path
):
    secret = tmp_path / "private" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("key")
    (hf_folder / "README.md").symlink_to(secret)
    with pytest.raises(ModelFileError) as err:
        inspect_model_path(hf_folder)
    assert "README.md: symlink points outside" in str(err.value)
    assert "private" not in str(err.value) and "id_rsa" not in str(err.value)


# --------------------------------------------------------------------------- nesting and bombs


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_config_json_is_refused_with_a_message(hf_folder: Path, depth: int):
    (hf_folder / "config.json").write_text('{"a": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ModelFileError, match=r"config\.json: .*nested"):
        inspect_model_path(hf_folder)


def _compressed_zeros(kind: str, size: int) -> bytes:
    import bz2
    import gzip
    import lzma

    zeros = b"\0" * size
    if kind == "gz":
        return gzip.compress(zeros, 9)
    if kind == "bz2":
        return bz2.compress(zeros, 9)
    return lzma.compress(zeros, preset=0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_compressed_tar_bomb_is_stopped_after_a_bounded_read(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str
):
    """A complete, valid model archive whose weights are 1 GiB of zeros in a ~1 MB file."""
    chunk_size, chunks = 16 * 1024**2, 64  # 1 GiB of zeros, as concatenated compressed members
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in folder_members(hf_folder, "tiny/"):
            if name.endswith(".safetensors"):
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    head = raw.getvalue()[: -tarfile.RECORDSIZE]  # drop the end-of-archive blocks
    header = tarfile.TarInfo("tiny/model.safetensors")
    header.size = chunk_size * chunks
    bomb = tmp_path / f"bomb.tar.{kind}"
    member = _compressed_zeros(kind, chunk_size)
    with bomb.open("wb") as f:
        f.write(_compress(kind, head + header.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(chunks):
            f.write(member)
        f.write(_compress(kind, b"\0" * tarfile.RECORDSIZE))
    assert bomb.stat().st_size < 4 * 1024**2

    with pytest.raises(ModelFileError, match=r"bomb\.tar\..*compression bomb") as err:
        check_archive(bomb)
    read_in = int(re.search(r"bytes from ([\d,]+)\)", str(err.value))[1].replace(",", ""))
    assert read_in <= 1024**2  # stopped after at most 1 MiB of the file, not 1 GiB inflated
    with pytest.raises(ModelFileError, match="compression bomb"):
        install_model(bomb, store, "m")
    assert_nothing_installed(store)


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    if kind == "gz":
        return gzip.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    return lzma.compress(data)


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_concatenated_and_compressed_tars_still_install(
    hf_folder: Path, tmp_path: Path, store: Path, kind: str
):
    """Multi-member gzip (as pigz or cat a.gz b.gz writes) is read through to the end."""
    archive = write_archive(kind, tmp_path / "upload", folder_members(hf_folder, "tiny/"))
    if kind == "tar.gz":
        data = archive.read_bytes()
        import gzip

        plain = gzip.decompress(data)
        archive.write_bytes(gzip.compress(plain[:700]) + gzip.compress(plain[700:]))
    assert install_model(archive, store, "t").sha256 == inspect_model_path(hf_folder).sha256


@pytest.mark.timeout(30)
def test_tar_extended_header_claiming_gigabytes_is_refused_before_reading_it(
    hf_folder: Path, tmp_path: Path
):
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 8 * 1024**3
    archive = tmp_path / "pax.tar"
    archive.write_bytes(pax.tobuf(format=tarfile.GNU_FORMAT) + b"0" * 4096)
    with pytest.raises(ModelFileError, match=r"pax\.tar: .*extended tar header of 8,589,934,592"):
        check_archive(archive)


# --------------------------------------------------------------------------- GGUF header bounds


def _gguf_string(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


def _gguf_kv_string(key: str, value: str) -> bytes:
    return _gguf_string(key) + struct.pack("<I", 8) + _gguf_string(value)


def _gguf(n_tensors: int, kvs: bytes, n_kv: int, tail: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kvs + tail


_ARCH = _gguf_kv_string("general.architecture", "llama") + _gguf_kv_string(
    "tokenizer.ggml.model", "llama"
)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (_gguf(2**60, _ARCH, 2, b"\0" * 256), r"claims 1,152,921,504,606,846,976 tensors"),
        (_gguf(1, b"", 2**60, b"\0" * 256), r"claims 1,152,921,504,606,846,976 key/values"),
        (_gguf(1, struct.pack("<Q", 2**40) + b"k" * 64, 1), r"string of 1,099,511,627,776 bytes"),
        (
            _gguf(1, _gguf_string("general.architecture") + struct.pack("<IQ", 8, 2**40), 1),
            r"string of 1,099,511,627,776 bytes",
        ),
        (
            _gguf(1, _gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**60), 1),
            r"array of 1,152,921,504,606,846,976 items",
        ),
        (
            # one F32 tensor of 2^40 elements at offset 0 in a file of a few hundred bytes
            _gguf(1, _ARCH, 2, _gguf_string("w") + struct.pack("<IQIQ", 1, 2**40, 0, 0)),
            "tensor's data runs past the end of the file",
        ),
        (_gguf(0, _ARCH, 2), "holds no tensors"),
    ],
    ids=[
        "tensors-2^60",
        "kv-2^60",
        "key-2^40",
        "value-2^40",
        "array-2^60",
        "data-past-end",
        "no-tensors",
    ],  # fmt: skip
)
def test_gguf_header_claims_beyond_the_file_are_refused_quickly(
    tmp_path: Path, store: Path, content: bytes, reason: str
):
    path = tmp_path / "hostile.gguf"
    path.write_bytes(content)
    with pytest.raises(
        ModelFileError, match=rf"hostile\.gguf: GGUF header does not parse.*{reason}"
    ):
        inspect_model_path(path)
    with pytest.raises(ModelFileError, match="does not parse"):
        install_model(path, store, "g")
    assert_nothing_installed(store)
