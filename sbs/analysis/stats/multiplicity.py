"""Multiple-testing corrections: Holm (family-wise error) and Benjamini–Hochberg (false discoveries).

Both take a list of p-values where None marks a test that was not run (no data); the
None entries are left out of the family and stay None. Both call statsmodels
``multipletests`` (``method="holm"`` / ``method="fdr_bh"``).

* Holm–Bonferroni (step-down): sort p ascending, p_(k) · (m − k + 1), made monotone
  non-decreasing, capped at 1. Controls the family-wise error rate (the chance of even one
  false flag) under any dependence. The report uses it where a flag is a conclusion about
  the models (a category where the adapted model loses).
* Benjamini–Hochberg (step-up): p_(k) · m / k, made monotone from the largest down, capped
  at 1. Controls the false discovery rate (the expected share of false flags among the
  flagged) for independent or positively dependent tests. The report uses it where a
  flag is a prompt to look (an annotator), see :func:`sbs.analysis.stats.agreement.annotator_stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from statsmodels.stats.multitest import multipletests

Method = Literal["holm", "fdr_bh"]


def adjust(pvalues: Sequence[float | None], method: Method) -> list[float | None]:
    """Adjusted p-values by ``method`` (``holm`` or ``fdr_bh``); None entries stay None."""
    present = [k for k, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if not present:
        return out
    raw = np.array([pvalues[k] for k in present], dtype=float)
    adjusted = multipletests(raw, method=method)[1]
    for k, p in zip(present, adjusted, strict=True):
        out[k] = min(1.0, float(p))
    return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (None entries are skipped and stay None)."""
    return adjust(pvalues, "holm")


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (q-values; None entries skipped and stay None)."""
    return adjust(pvalues, "fdr_bh")
