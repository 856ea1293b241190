"""Say why a question lands where it does, in lines an article author can act on.

`Searcher.search(..., explain=True)` records, per result, the signals behind its score, its
confidence and the section it chose (kb.judging `judge`); this module only words them, for
`helpdesk search --explain` and `helpdesk eval --explain`. Fix the article (its example
questions, a section's `section_questions`, a word the passage lacks), not the code.
"""
from __future__ import annotations

SCORE_LABELS = (
    ("bm25", "BM25（最上位比）"), ("head_coverage", "タイトル・質問例の一致"), ("similarity", "質問例との近さ"),
    ("meaning", "意味の近さ（単語ベクトル）"), ("whats_new", "新着の加点（リリースノート）"),
)


def _words(words: list[str]) -> str:
    return "、".join(words) if words else "なし"


def explanation_lines(explain: dict | None) -> list[str]:
    """The explanation as short Japanese lines: score, confidence, section (nothing without one)."""
    if not explain:
        return []
    score, conf, section = explain["score"], explain["confidence"], explain["section"]
    parts = " + ".join(f"{label} {score[key]:.2f}" for key, label in SCORE_LABELS if score.get(key))
    lines = [f"順位の根拠: {parts or '一致なし'} → {score['total']:.2f}"]
    rescue = "（読みの一致で補正）" if conf["rescued_by_reading"] else ""
    lines.append(
        f"確信度の根拠: 記事の語の網羅 {conf['article_coverage']:.2f}{rescue}、表示する節の語の網羅 "
        f"{conf['passage_coverage']:.2f}、質問例との近さ {conf['similarity']:.2f} → {conf['before_hold']:.2f}"
    )
    lines.append(f"  節が満たした語: {_words(conf['words_met'])}（意味で満たした語: {_words(conf['words_met_by_meaning'])}）")
    if conf["key_words_not_in_passage"]:
        lines.append(f"  節にない重要語: {_words(conf['key_words_not_in_passage'])}（節の語の網羅が下がります）")
    if conf["key_words_not_in_article"]:
        where = "どの記事にもない" if conf["key_words_in_no_article"] else "この記事にない"
        lines.append(f"  {where}重要語: {_words(conf['key_words_not_in_article'])}（確信度を {conf['value']:.2f} に抑えました）")
    why = "新着の質問なのでリリースノートの冒頭" if section["why"] == "whats_new" else "節の得点が最も高い"
    lines.append(f"節の選択: 「{section['chosen'] or '冒頭（要約）'}」（{why}）")
    for s in sorted(section["candidates"], key=lambda s: -s["score"])[:3]:
        kinds = "・".join(s["kinds"]) or "なし"
        lines.append(f"  {s['score']:.2f} 「{s['heading'] or '冒頭（要約）'}」 質問例との近さ {s['asked_like']:.2f}、種類 {kinds}")
    return lines
