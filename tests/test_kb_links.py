"""Issue 9 item 8: an FAQ id or an article link never points to another site or outside /kb/."""
import json

import pytest

from handlers.web.pages import render_markdown
from kb.indexer import build_index
from kb.search import Searcher


@pytest.mark.parametrize("href", ["//evil.example/phish", "  //evil.example", "/\\evil.example/phish",
                                  "///evil.example/phish"])
def test_scheme_relative_links_are_dropped(href):
    html = str(render_markdown(f"[ここ]({href}) と [関連](delivery-settings) と [外部](https://www.med.or.jp/)"))
    assert "evil.example" not in html
    assert html == ('<p><a rel="noopener noreferrer">ここ</a> と '
                    '<a href="/kb/delivery-settings" rel="noopener noreferrer">関連</a> と '
                    '<a href="https://www.med.or.jp/" rel="noopener noreferrer">外部</a></p>')


def test_bad_corpus_ids_are_reported_not_indexed(tmp_path):
    corpus = tmp_path / "faq.jsonl"
    lines = [{"id": i, "question": f"駐車場の質問{n}", "answer": "窓口へ"}
             for n, i in enumerate(["../../../etc/passwd", "//evil.example", "ok-1"])]
    corpus.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    db = tmp_path / "kb.sqlite"
    report = build_index([], db, extra=[corpus])
    assert report.indexed == 1
    assert [p for p, _ in report.broken] == [f"{corpus}:1", f"{corpus}:2"]
    s = Searcher(db)
    assert [a.slug for a in s.articles()] == ["ok-1"]
    assert {r.slug for r in s.search("駐車場の質問", k=10)} == {"ok-1"}
