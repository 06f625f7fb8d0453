import json

from adaptation.corpus import (
    CorpusConfig,
    is_heldout,
    read_text_file,
    split_lines,
    strip_wiki,
    wordnet_lines,
    write_corpus,
)


def test_strip_wiki_moves_examples_out_and_removes_markup():
    markup = (
        "{{помета|цвет:}} [[очень]] [[чёрный|чёрного]] цвета {{итп}} "
        "{{пример|У неё были две шиншиллы: одна {{выдел|эбонитовая}}, а другая\xa0— бежевая."
        "|автор=Кто-то|дата=2008}}"
    )
    definition, examples = strip_wiki(markup)
    assert definition == "очень чёрного цвета и т. п."
    assert examples == ["У неё были две шиншиллы: одна эбонитовая, а другая — бежевая."]


def test_wordnet_lines_are_plain_distinct_russian():
    lines = list(wordnet_lines(CorpusConfig(max_lines=300)))
    assert len(lines) == 300
    assert len(set(lines)) == 300
    assert not any(ch in line for line in lines for ch in "{}[]|")
    assert all(len(line) >= 20 for line in lines)


def test_user_files_txt_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("первая строка\n\n  вторая строка \n", encoding="utf-8")
    rows = [{"text": "из json"}, {"text": "ещё"}]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert list(read_text_file(tmp_path / "a.txt")) == ["первая строка", "вторая строка"]
    assert list(read_text_file(tmp_path / "b.jsonl")) == ["из json", "ещё"]


def test_split_is_deterministic_and_disjoint(tmp_path):
    lines = [f"строка номер {i}" for i in range(2000)]
    train, held = split_lines(lines, 0.1, seed=3)
    assert set(train).isdisjoint(held) and len(train) + len(held) == 2000
    assert 120 < len(held) < 280
    # membership depends only on the line itself, not on the order
    assert split_lines(list(reversed(lines)), 0.1, seed=3)[1] == list(reversed(held))
    assert all(is_heldout(line, 0.1, 3) for line in held)
    (tmp_path / "u.txt").write_text("\n".join(lines), encoding="utf-8")
    stats = write_corpus(
        tmp_path / "out",
        CorpusConfig(heldout_fraction=0.1, seed=3),
        files=[tmp_path / "u.txt"],
        use_wordnet=False,
    )
    assert stats.heldout_path.read_text(encoding="utf-8").splitlines() == held
    assert stats.train_lines == len(train)
