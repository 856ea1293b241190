"""Folding, synonyms and readings: different spellings of one word meet in one term."""
import pytest

from kb.analysis import Analyzer, bigrams, fold_kana, nfkc


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.mark.parametrize(
    "a, b",
    [
        ("ﾏｽﾀ", "マスタ"),
        ("マスタ", "マスター"),
        ("ますた", "マスタ"),
        ("Ａｐｉ", "API"),
        ("ニュ-ス", "ニュース"),
        ("差戻し", "差し戻し"),
        ("日医", "日本医師会"),
        ("送り先", "送付先"),
        ("郡市区", "郡市区等"),
    ],
)
def test_spellings_fold_to_the_same_terms(analyzer, a, b):
    assert analyzer.analyze(a).terms == analyzer.analyze(b).terms


def test_nfkc_and_kana_folding():
    assert nfkc("ＡＰＩ連携ﾃｽﾄ") == "api連携テスト"
    assert nfkc("ニュ‐ス") == "ニュース"
    assert fold_kana("ますたー") == "マスタ"


def test_particles_are_not_terms(analyzer):
    a = analyzer.analyze("日医ニュースの送付先を自宅に変更したい")
    assert "ノ" not in a.terms and "ヲ" not in a.terms
    assert {"日本医師会", "ニュス", "送付先", "自宅", "変更"} <= set(a.terms)


def test_compounds_also_give_their_parts(analyzer):
    assert {"医療機関", "医療", "機関"} <= set(analyzer.analyze("医療機関").terms)


def test_kana_question_has_the_kanji_reading(analyzer):
    assert analyzer.analyze("にちいニュース").reading == analyzer.analyze("日医ニュース").reading


def test_bigrams():
    assert bigrams("マスタ") == ["マス", "スタ"]
    assert bigrams("a") == ["a"]
    assert bigrams("") == []


def test_long_input_is_capped(analyzer):
    a = analyzer.analyze("医師会" * 10000)
    assert 0 < len(a.terms) <= 2000


def test_many_texts_in_one_pass_keep_each_texts_words_apart(analyzer):
    texts = ["会費の納入方法", "", "パスワードを忘れた", "ﾏｽﾀの差戻し"]
    many = analyzer.analyze_many(texts)
    assert len(many) == 4
    assert "会費" in many[0].terms and "パスワド" not in many[0].terms
    assert many[1].terms == () and many[1].reading == ""
    assert "パスワド" in many[2].terms and "会費" not in many[2].terms
    assert many[3].terms == analyzer.analyze("マスターの差し戻し").terms
    assert many[2].reading == analyzer.analyze("パスワードを忘れた").reading


def test_text_longer_than_the_segmenter_takes_is_analysed_whole(analyzer):
    # Sudachi refuses more than 49,149 bytes in one call; a long section must still be indexed.
    text = "会費" * 30_000  # 180,000 bytes
    analysis = analyzer.analyze_many([text, "パスワード"], limit=None, reading=False)
    assert analysis[0].terms.count("会費") == 30_000
    assert analysis[1].terms == ("パスワド",)
