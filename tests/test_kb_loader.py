"""The loader accepts good articles and names the path and reason of every broken one."""
import json
from pathlib import Path

import pytest

from kb.loader import BrokenArticle, iter_corpus, parse_article, split_sections

GOOD = """---
title: 送付区分の設定
kind: guide
audience: all
tags: [送付区分]
questions:
  - 送付先を変えたい
updated: 2026-01-15
source: テスト
---

概要の段落。

## 送付先

勤務先・自宅・その他から選べます。

## 送付物

日医ニュースなど。
"""


def parse(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return parse_article(path, path.read_bytes())


def test_good_article(tmp_path):
    doc = parse(tmp_path, "delivery.md", GOOD)
    assert (doc.slug, doc.title, doc.kind, doc.audience) == ("delivery", "送付区分の設定", "guide", "all")
    assert doc.tags == ("送付区分",)
    assert doc.questions == ("送付先を変えたい",)
    assert doc.updated == "2026-01-15" and doc.event_date is None
    assert [s.heading for s in doc.sections] == [None, "送付先", "送付物"]
    assert doc.sections[1].body == "勤務先・自宅・その他から選べます。"


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.md", "", "ファイルが空です"),
        ("latin1.md", "---\ntitle: caf\xe9\n---\nbody".encode("latin-1"), "UTF-8 ではありません"),
        ("nofront.md", "# 見出し\n本文", "フロントマターがありません"),
        ("badyaml.md", "---\ntitle: [unclosed\n---\n本文", "YAML が読めません"),
        ("notitle.md", "---\nkind: faq\n---\n本文", "title（タイトル）がありません"),
        ("badkind.md", "---\ntitle: t\nkind: blog\n---\n本文", "kind は"),
        ("baddate.md", "---\ntitle: t\nupdated: 昨日\n---\n本文", "updated は YYYY-MM-DD"),
        ("nobody.md", "---\ntitle: t\n---\n", "本文がありません"),
        ("Bad Name.md", GOOD, "スラッグ"),
        ("listq.md", "---\ntitle: t\nupdated: 2026-01-15\nquestions: {a: 1}\n---\n本文", "questions は文字列のリスト"),
        ("noupdated.md", "---\ntitle: t\n---\n本文", "updated（最終更新日）がありません"),
        ("emptyupdated.md", "---\ntitle: t\nupdated:\n---\n本文", "updated（最終更新日）がありません"),
    ],
)
def test_broken_article_names_reason(tmp_path, name, content, reason):
    with pytest.raises(BrokenArticle) as e:
        parse(tmp_path, name, content)
    assert reason in e.value.reason
    assert e.value.path == str(tmp_path / name)


def test_sections_without_headings_is_one_section():
    assert [(s.heading, s.body) for s in split_sections("ただの本文")] == [(None, "ただの本文")]


def test_corpus_lines(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(
        '{"id": "1", "question": "ごみの出し方", "answer": "月曜です"}\n'
        "\n"
        '{"id": 2, "title": "税金", "body": "窓口へ"}\n'
        "not json\n"
        '{"question": "idなし"}\n',
        encoding="utf-8",
    )
    items = list(iter_corpus(path))
    docs = [i for i in items if not isinstance(i, BrokenArticle)]
    broken = [i for i in items if isinstance(i, BrokenArticle)]
    assert [(d.slug, d.title, d.body) for d in docs] == [("1", "ごみの出し方", "月曜です"), ("2", "税金", "窓口へ")]
    assert [(b.path, b.reason) for b in broken] == [
        (f"{path}:4", "JSON として読めません（Expecting value）"),
        (f"{path}:5", "id がありません"),
    ]


@pytest.mark.parametrize("bad_id", ["../../../etc/passwd", "//evil.example", "a/b", "A", "-x", "x\n", "", "id 1", True, 1.5, None])
def test_corpus_ids_are_slugs(tmp_path, bad_id):
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps({"id": bad_id, "question": "q", "answer": "a"}) + "\n", encoding="utf-8")
    [item] = iter_corpus(path)
    assert isinstance(item, BrokenArticle)
    assert (item.path, item.reason) == (f"{path}:1", "id は半角英小文字・数字・ハイフンにしてください（先頭は英小文字か数字）")


def test_corpus_dates_are_optional(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(
        '{"id": "a-1", "question": "q", "answer": "a"}\n'
        '{"id": 7, "question": "q", "answer": "a", "updated": "2026-02-01"}\n'
        '{"id": "b", "question": "q", "answer": "a", "updated": "先週"}\n',
        encoding="utf-8",
    )
    first, second, third = iter_corpus(path)
    assert (first.slug, first.updated) == ("a-1", None)
    assert (second.slug, second.updated) == ("7", "2026-02-01")
    assert isinstance(third, BrokenArticle) and "updated は YYYY-MM-DD" in third.reason


SECTION_QUESTIONS = GOOD.replace("updated: 2026-01-15", """section_questions:
  送付先:
    - 自宅に送ってもらえますか
    - 送付先はどこから選べますか
  送付物: 日医ニュースは対象ですか
updated: 2026-01-15""")


def test_section_questions_are_attached_to_their_sections(tmp_path):
    doc = parse(tmp_path, "delivery.md", SECTION_QUESTIONS)
    assert [(s.heading, s.questions) for s in doc.sections] == [
        (None, ()),
        ("送付先", ("自宅に送ってもらえますか", "送付先はどこから選べますか")),
        ("送付物", ("日医ニュースは対象ですか",)),
    ]
    # Every way the article is asked: its own questions first, then its sections'.
    assert doc.all_questions == ("送付先を変えたい", "自宅に送ってもらえますか", "送付先はどこから選べますか",
                                 "日医ニュースは対象ですか")


@pytest.mark.parametrize(
    "block, reason",
    [
        ("section_questions: [自宅に送って]", "section_questions は「見出し: [質問, ...]」の形で書いてください"),
        ("section_questions:\n  送付方法:\n    - 自宅に送って", "section_questions の見出し「送付方法」が本文の ## 見出しにありません"),
        ("section_questions:\n  送付先: {a: 1}", "section_questions の「送付先」 は文字列のリストで書いてください"),
    ],
)
def test_broken_section_questions_say_what_to_fix(tmp_path, block, reason):
    with pytest.raises(BrokenArticle) as e:
        parse(tmp_path, "delivery.md", GOOD.replace("updated: 2026-01-15", block + "\nupdated: 2026-01-15"))
    assert e.value.reason == reason


def test_a_file_of_release_notes_is_a_release_note(tmp_path):
    (tmp_path / "release_notes").mkdir()
    assert parse(tmp_path / "release_notes", "2026-02-notes.md", GOOD).release
    assert not parse(tmp_path, "delivery.md", GOOD).release


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "kb" / "articles").glob("*.md")) + sorted((ROOT / "release_notes").glob("*.md"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_articles_carry_section_questions(path):
    """Each shipped article asks its sections in its own words (not its article questions again)."""
    doc = parse_article(path, path.read_bytes())
    asked = [s for s in doc.sections if s.questions]
    assert len(asked) >= 2, f"{path.name}: section_questions for at most one section"
    own = [q for s in doc.sections for q in s.questions]
    assert len(set(own)) == len(own) and not set(own) & set(doc.questions), f"{path.name}: repeated questions"
