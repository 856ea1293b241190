"""Confidence: no confident answer to what the knowledge base does not cover."""
import json

import pytest

from kb.evaluate import evaluate, load_questions
from kb.search import CONFIDENCE_THRESHOLD
from tests.quality import eval_data
from tests.test_kb_passages import searcher_over

PARKING = """---
title: 会館駐車場の利用時間
updated: 2026-01-10
questions:
  - 駐車場は何時まで使えますか
---

会館の駐車場は平日 8:00～20:00 に利用できます。料金は無料です。

## 予約

駐車場を予約できるかどうかは、この資料には記載がありません。
"""
LIBRARY = """---
title: 図書室の蔵書検索
updated: 2026-01-10
---

図書室の蔵書は受付の端末で検索できます。貸出は一人3冊までです。
"""

ACCESS = """---
title: 会館へのアクセス
updated: 2026-01-10
---

会館は駅から徒歩5分です。お車の方は会館の駐車場をご利用ください。
"""


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    s = searcher_over(tmp_path_factory.mktemp("articles"), {"parking": PARKING, "library": LIBRARY, "access": ACCESS})
    yield s
    s.close()


def confident(searcher, query):
    results = searcher.search(query, k=1)
    return results[0].slug if results and results[0].confidence >= CONFIDENCE_THRESHOLD else None


def test_what_the_article_says_is_answered(searcher):
    assert confident(searcher, "駐車場の利用時間を知りたい") == "parking"
    assert confident(searcher, "図書室の蔵書を検索したい") == "library"


def test_a_word_the_article_only_says_it_does_not_know(searcher):
    # 予約 is in the article, but only in 「…記載がありません」.
    assert confident(searcher, "駐車場の予約をしたい") is None
    assert searcher.search("駐車場の予約をしたい", k=1)[0].slug == "parking"  # still offered as a choice


def test_a_dictionary_word_no_article_uses(searcher):
    # 洗車 is a plain dictionary word the index has never seen: no reading-bigram rescue.
    assert confident(searcher, "駐車場で洗車したい") is None


def test_a_word_found_only_in_an_article_matching_nothing_else(searcher):
    # 貸出 is only in the library article, 駐車場 only in the parking one.
    assert confident(searcher, "駐車場の貸出券") is None


def test_kana_spelling_is_still_rescued(searcher):
    assert confident(searcher, "ちゅうしゃじょうのりようじかん") == "parking"


@pytest.mark.parametrize("query", ["OR 1 = 1", "123 456", "* AND *", "!!!"])
def test_operators_symbols_digits_alone(searcher, query):
    results = searcher.search(query)
    assert results.out_of_domain
    assert [r.confidence for r in results if r.confidence > 0.0] == []


def test_out_of_domain_signal(searcher):
    assert searcher.search("明後日の天気を教えて").out_of_domain
    assert searcher.search("株価の予想を教えて").out_of_domain
    # About something the articles' titles name, though unanswered: the desk, not "out of scope".
    assert not searcher.search("駐車場で洗車したい").out_of_domain
    assert not searcher.search("駐車場の利用時間").out_of_domain
    assert searcher.search("").out_of_domain and searcher.search("") == []


def test_unanswerable_dev_set_reaches_its_bar(shipped_searcher):
    path = eval_data("mamis_unanswerable_dev.jsonl")
    report = evaluate(shipped_searcher, load_questions(path))
    assert report["abstained"] >= 0.95, json.dumps(report["misses"], ensure_ascii=False)


def test_mamis_dev_out_of_domain_lines_abstain_and_hit_stays(shipped_searcher):
    path = eval_data("mamis_dev.jsonl")
    report = evaluate(shipped_searcher, load_questions(path))
    assert (report["hit@1"], report["abstained"]) == (1.0, 1.0), json.dumps(report["misses"], ensure_ascii=False)
