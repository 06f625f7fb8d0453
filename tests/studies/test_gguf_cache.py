"""The GGUF conversion cache (adaptation.modelio) is keyed by the whole file's sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest


class _FakeAuto:
    """Stands in for transformers' Auto classes: 'converts' by recording which file it read."""

    @staticmethod
    def from_pretrained(folder: str, gguf_file: str, **kwargs: Any) -> Any:
        source = Path(folder) / gguf_file
        digest = hashlib.sha256(source.read_bytes()).hexdigest()

        def save_pretrained(out: Path) -> None:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "config.json").write_text(json.dumps({"converted_from": digest}))

        return SimpleNamespace(config=SimpleNamespace(), save_pretrained=save_pretrained)


def test_two_gguf_files_alike_in_name_size_and_first_mebibyte_get_separate_conversions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import transformers

    from adaptation.modelio import gguf_to_folder

    monkeypatch.setattr(transformers, "AutoTokenizer", _FakeAuto)
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", _FakeAuto)
    head = b"GGUF" + bytes(range(256)) * 4096  # the same first MiB and more
    first, second = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for path, tail in ((first, b"original weights"), (second, b"poisoned weights")):
        path.parent.mkdir()
        path.write_bytes(head + tail)
    assert first.stat().st_size == second.stat().st_size

    cache = tmp_path / "cache"
    folders = [gguf_to_folder(p, cache) for p in (first, second)]

    assert folders[0] != folders[1]
    for path, folder in zip((first, second), folders, strict=True):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert json.loads((folder / "config.json").read_text())["converted_from"] == digest
        assert folder.name == f"gguf-{digest}"
    assert gguf_to_folder(first, cache) == folders[0]  # the cache is still reused
