"""The answering section: chosen by what the question asks, and judged by `phrases` in the evaluation."""
import json
from pathlib import Path

import pytest

from kb.evaluate import BadQuestionFile, evaluate, load_questions
from kb.indexer import build_index
from kb.passages import question_kinds, section_kinds
from kb.search import CONFIDENCE_THRESHOLD, Searcher
from tests.quality import EVAL, eval_data

ROOT = Path(__file__).resolve().parent.parent
PASSAGES_DEV = EVAL / "mamis_passages_dev.jsonl"

# Every section shares the same words (駐車場, 利用); only what each one is for differs.
ARTICLE = """---
title: 駐車場の利用
updated: 2026-01-10
---

駐車場の利用についてまとめます。駐車場は会館の地下にあり、利用には事前の登録が必要です。

## 利用できる時間

駐車場は平日 8:00～20:00 に利用できます。年末年始（12月29日～1月3日）は利用できません。

## 登録の方法

駐車場の利用登録は、受付で申請書を出してください。

## 場所

駐車場の入口は会館の北側、住所は本町1-2-3です。

## 有料になった理由

駐車場の利用が増え、維持費をまかなうため有料にしました。
"""


def searcher_over(folder: Path, articles: dict[str, str]) -> Searcher:
    """A real index over the given Markdown articles (slug → text), none of them broken."""
    for slug, text in articles.items():
        (folder / f"{slug}.md").write_text(text, encoding="utf-8")
    assert build_index([folder], folder / "kb.sqlite").broken == []
    return Searcher(folder / "kb.sqlite")


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    s = searcher_over(tmp_path_factory.mktemp("articles"), {"parking": ARTICLE})
    yield s
    s.close()


@pytest.mark.parametrize(
    "question, kinds",
    [
        ("駐車場はどうすれば使えますか", {"how"}),
        ("駐車場を使いたい", {"how"}),
        ("駐車場はいつ使えますか", {"when"}),
        ("駐車場はどこですか", {"where"}),
        ("駐車場の問い合わせ先", {"contact"}),
        ("駐車場は誰が使えますか", {"who"}),
        ("駐車場はなぜ有料なの", {"why"}),
        ("駐車場とは", {"what"}),
        ("駐車場", set()),
        ("駐車場について知りたい", set()),
    ],
)
def test_question_kinds(question, kinds):
    assert question_kinds(question) == kinds


def test_section_kinds_heading_beats_body():
    assert section_kinds("登録の方法", "受付で申請書を出してください。") == {"how": 1.0}
    assert section_kinds("料金", "値上げは 4月1日 からです。") == {"when": 0.4}
    assert section_kinds(None, "なにもない本文") == {}


@pytest.mark.parametrize(
    "question, heading",
    [
        ("駐車場の利用はどうすればいいですか", "登録の方法"),
        ("駐車場を利用したい", "登録の方法"),
        ("駐車場はいつ利用できますか", "利用できる時間"),
        ("駐車場はどこにありますか", "場所"),
        ("駐車場の利用はなぜ有料になったのですか", "有料になった理由"),
        ("駐車場の利用", None),  # asks nothing in particular: the summary
    ],
)
def test_section_answers_what_is_asked(searcher, question, heading):
    [result] = searcher.search(question, k=1)
    assert (result.slug, result.section) == ("parking", heading)


def test_phrases_judge_the_passage(searcher, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"query": "駐車場はいつ利用できますか", "relevant": ["parking"], "phrases": ["8:00～20:00"]}\n'
        '{"query": "駐車場の利用", "relevant": ["parking"], "phrases": ["維持費"]}\n'
        '{"query": "駐車場の場所", "relevant": ["parking"]}\n',
        encoding="utf-8",
    )
    report = evaluate(searcher, load_questions(questions))
    assert (report["hit@1"], report["passage@1"]) == (1.0, 0.5)
    # What a user sees: right article, right passage, said with confidence (the wrong passage does not count).
    confident = [r[0].confidence >= CONFIDENCE_THRESHOLD for r in
                 (searcher.search(q, k=1) for q in ("駐車場はいつ利用できますか", "駐車場の場所"))]
    assert report["answered_right"] == round(sum(confident) / 3, 4)
    assert report["answered_right"] > 0
    assert report["misses"] == [
        {"query": "駐車場の利用", "expected": ["parking"], "got": ["parking"],
         "confidence": report["misses"][0]["confidence"], "section": None}
    ]


def test_no_phrases_no_passage_figure(searcher, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"query": "駐車場の場所", "relevant": ["parking"]}\n', encoding="utf-8")
    assert evaluate(searcher, load_questions(questions))["passage@1"] is None


@pytest.mark.parametrize("phrases", ['"8:00"', "[1]", '[""]', '{"a": 1}'])
def test_bad_phrases_are_refused(tmp_path, phrases):
    questions = tmp_path / "q.jsonl"
    questions.write_text(f'{{"query": "q", "relevant": ["a"], "phrases": {phrases}}}\n', encoding="utf-8")
    with pytest.raises(BadQuestionFile):
        load_questions(questions)


def test_passages_dev_set_reaches_its_bar(tmp_path):
    eval_data(PASSAGES_DEV.name)
    db = tmp_path / "kb.sqlite"
    build_index([ROOT / "kb" / "articles", ROOT / "release_notes"], db)
    report = evaluate(Searcher(db), load_questions(PASSAGES_DEV))
    assert report["hit@1"] == 1.0
    assert report["passage@1"] >= 0.9, json.dumps(report["misses"], ensure_ascii=False)
