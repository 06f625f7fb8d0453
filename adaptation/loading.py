"""Load any model the tool makes or registers, for inference: a model folder or GGUF file
(:func:`adaptation.modelio.load_model`) or a saved ensemble of task adapters
(:func:`adaptation.ensemble.load_ensemble`, a folder holding ``ensemble.json``)."""

from __future__ import annotations

from pathlib import Path

from adaptation.ensemble import MANIFEST, load_ensemble
from adaptation.modelio import LoadedModel, left_padded, load_model, pick_device


def load_any(
    path: Path, *, cache_dir: Path, device: str = "auto", base_path: Path | None = None
) -> LoadedModel:
    """The model at ``path`` in eval mode with a left-padding tokenizer. An ensemble loads as
    its peft model with the gate attached, so every forward call and ``generate`` is routed;
    its base is ``base_path`` when given, else the one its manifest names."""
    if not (Path(path) / MANIFEST).is_file():
        return load_model(Path(path), cache_dir=Path(cache_dir), device=device)
    device = pick_device(device)
    routed, tokenizer = load_ensemble(
        Path(path), base_path=base_path, cache_dir=Path(cache_dir), device=device
    )
    return LoadedModel(
        model=routed, tokenizer=left_padded(tokenizer), device=device, folder=Path(path)
    )
