"""Templates capped and the held-out split made by template."""

from __future__ import annotations

import random

from adaptation.dedup import DedupConfig, dedup_and_split, heldout_overlap, line_templates, shingles

RIVERS = [
    f"Река{n} — одна из многочисленных рек, протекающих по территории России." for n in range(300)
]
WORDS = [
    "дом",
    "кот",
    "лес",
    "мир",
    "сад",
    "сон",
    "чай",
    "луч",
    "пар",
    "рой",
    "век",
    "год",
    "час",
    "бор",
    "зал",
]


def distinct_lines(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(9)) + f" {i}" for i in range(count)]


def test_shingles_are_lower_cased_word_six_grams():
    assert shingles("А б, В г д е ж!") == ["а б в г д е", "б в г д е ж"]
    assert shingles("пять слов всего и тут") == []


def test_a_template_is_found_capped_and_kept_on_one_side():
    lines = distinct_lines(400) + RIVERS
    random.Random(1).shuffle(lines)
    config = DedupConfig(min_lines=50, per_template=20, heldout_fraction=0.5, seed=3)
    train, heldout, report = dedup_and_split(lines, config)
    rivers_kept = [x for x in train + heldout if "многочисленных рек" in x]
    assert len(rivers_kept) == 20 and report.dropped == 280
    assert report.templates == 1 and report.templated_lines == 300
    assert "многочисленных рек протекающих" in report.largest_template
    assert report.largest_share_before == 300 / 700
    # every kept line of the template on the same side, whichever it is
    sides = {("train" if x in train else "heldout") for x in rivers_kept}
    assert len(sides) == 1
    # deterministic and independent of reading order
    again = dedup_and_split(list(reversed(lines)), config)
    assert sorted(again[0]) == sorted(train) and sorted(again[1]) == sorted(heldout)


def test_lines_without_a_template_are_split_line_by_line():
    lines = distinct_lines(2000)
    assert set(line_templates(lines, 50)) == {None}
    train, heldout, report = dedup_and_split(lines, DedupConfig(heldout_fraction=0.1))
    assert report.dropped == 0 and len(train) + len(heldout) == 2000
    assert 120 < len(heldout) < 280  # about 10 %


def test_overlap_counts_heldout_lines_with_half_their_shingles_in_training():
    train = ["а б в г д е ж з"]  # 3 six-grams
    heldout = [
        "а б в г д е ж з",  # all in training
        "а б в г д е х ц",  # 1 of 3 in training
        "б в г д е ж ы",  # 1 of 2: half, counted
        "коротко",  # no six-gram: not measured
    ]
    assert heldout_overlap(train, heldout) == 2 / 3
