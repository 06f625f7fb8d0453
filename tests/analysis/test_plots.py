from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET

import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from sbs.analysis.plots import (
    position_bias_summary_svg,
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


def _height_pt(svg: str) -> float:
    root = ET.fromstring(svg.encode())
    return float(root.attrib["height"].removesuffix("pt"))


def test_whiskers_a_hair_inside_their_point_do_not_break_the_plot() -> None:
    # 10 of 10 left: the Wilson upper bound came out 0.9999999999999999, below the point.
    svg = position_bias_svg(["аня", "боря"], [1.0, 0.0], [0.7575, 2.8e-17], [0.9999999999999999, 0.35])  # fmt: skip
    _check(svg, "аня", "боря")
    _check(win_rate_by_category_svg(["x"], [float("nan")], [0.2], [float("inf")]), "x")


def test_names_that_look_like_mathtext_or_hold_control_characters_are_drawn_as_typed() -> None:
    svg = position_bias_svg(["$x^$", "a\tb", "c\x01d"], [0.5, 0.4, 0.6], [0.3, 0.2, 0.4], [0.7, 0.6, 0.8], title="$5 \x02")  # fmt: skip
    _check(svg, "$x^", "ab", "cd")


def test_position_bias_of_hundreds_of_annotators_is_a_histogram_and_the_extremes() -> None:
    rates = [k / 299 for k in range(300)]
    names = [f"аннотатор-{k}" for k in range(15)]
    svg = position_bias_summary_svg(
        rates, names, rates[:15], [max(0.0, r - 0.1) for r in rates[:15]], rates[:15],
        title="Смещение", axis_label="слева", count_label="аннотаторы", extreme_title="крайние",
    )  # fmt: skip
    _check(svg, "Смещение", "аннотатор-14", "аннотаторы", "крайние")
    # One row per annotator would be 0.9 + 0.32 * 300 inches (about 7,000 pt) high.
    assert _height_pt(svg) < 12 * 72


def test_tick_labels_use_the_decimal_mark_they_are_given() -> None:
    """Ratios 0.8-1.3 on the x axis need decimals: a point in English, a comma in Russian
    (glyphs are paths, so the glyph defs say which marks were drawn)."""
    from sbs.analysis.plots import decimal_mark

    def draw() -> str:
        return speed_vs_win_rate_svg(["A", "B"], [0.83, 1.27], [0.4, 0.7], title="Speed")

    comma, point = _glyph_ids(","), _glyph_ids(".")
    english = draw()
    assert all(f'id="{g}"' in english for g in point)
    assert not any(f'id="{g}"' in english for g in comma)
    with decimal_mark(","):
        russian = draw()
    assert all(f'id="{g}"' in russian for g in comma)
    assert not any(f'id="{g}"' in russian for g in point)
    assert draw() == english  # the mark does not leak out of its block
