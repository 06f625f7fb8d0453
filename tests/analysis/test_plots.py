from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET

import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from sbs.analysis.plots import (
    position_bias_svg,
    ranking_forest_svg,
    speed_vs_win_rate_svg,
    win_rate_by_category_svg,
)


def _glyph_ids(text: str) -> set[str]:
    font = FT2Font(font_manager.findfont("DejaVu Sans"))
    return {f"DejaVuSans-{font.get_char_index(ord(ch)):x}" for ch in text if not ch.isspace()}


def _check(svg: str, *texts: str) -> None:
    """Well-formed, self-contained SVG whose glyph defs include every character of ``texts``."""
    ET.fromstring(svg.encode())
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<image" not in svg and "@import" not in svg and 'xlink:href="http' not in svg
    assert 'id="DejaVuSans-0"' not in svg  # no .notdef (missing glyph) box
    for glyph in _glyph_ids("".join(texts)):
        assert f'id="{glyph}"' in svg, glyph


@pytest.fixture(autouse=True)
def _no_missing_glyph_warnings():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Gg]lyph.*missing.*")
        yield


def test_win_rate_by_category() -> None:
    svg = win_rate_by_category_svg(
        ["Математика", "Код", "Пусто"],
        [0.62, 0.41, None],
        [0.55, 0.30, None],
        [0.70, 0.52, None],
        title="Доля побед по категориям",
        axis_label="доля побед",
    )
    _check(svg, "Математика", "Код", "Пусто", "Доля побед по категориям", "доля побед")
    assert svg == win_rate_by_category_svg(
        ["Математика", "Код", "Пусто"], [0.62, 0.41, None], [0.55, 0.30, None], [0.70, 0.52, None],
        title="Доля побед по категориям", axis_label="доля побед",
    )  # fmt: skip
    assert "<dc:title>Доля побед по категориям</dc:title>" in svg


def test_ranking_forest_and_position_bias() -> None:
    _check(ranking_forest_svg(["базовая", "адаптированная"], [990.0, 1010.0], [980.0, 1001.0], [1000.0, 1020.0], title="Рейтинг"), "базовая", "адаптированная", "Рейтинг")  # fmt: skip
    _check(position_bias_svg(["аня", "боря"], [0.5, 0.8], [0.3, 0.6], [0.7, 0.9], axis_label="слева"), "аня", "боря", "слева")  # fmt: skip
    with pytest.raises(ValueError):
        ranking_forest_svg(["a"], [1.0, 2.0], [0.0], [3.0])


def test_speed_vs_win_rate() -> None:
    svg = speed_vs_win_rate_svg(
        ["словарь 32k", "словарь 64k"], [1.25, 1.4], [0.48, 0.55], [0.4, 0.5], [0.56, 0.6],
        title="Скорость и качество", x_label="токенов в секунду (отношение)", y_label="доля побед",
    )  # fmt: skip
    _check(svg, "словарь 32k", "Скорость и качество", "токенов в секунду (отношение)")
    assert speed_vs_win_rate_svg([], [], []).startswith("<?xml")
