"""Choose the section of an article that answers the question.

The right article with the wrong section still leaves the asker reading for the answer:
「送付先を変更するにはどうすれば」 shares as many words with 「設定できる内容」 as with
「設定の方法」, and a summary at the top shares words with everything. Shared words alone
cannot tell them apart; what the question *asks* can. So each section is scored by

* the rarity-weighted share of the question's terms it contains (heading and body),
* the same share counted again for its heading, since a heading says what the section
  is about in a few words (words of the article's title left out: they say what the
  whole article is about, not one section), and
* whether it answers the *kind* of question asked: how / when / where / who / why / what (and whom to contact),
  read from cue words in the question and in the section's heading (strongly) or body
  (weakly, e.g. a date for "when", 「ため」 for "why").

Section kinds are computed at index time (`section_kinds`) and stored with the section.
"""
from __future__ import annotations

import re

from kb.analysis import hash_text, nfkc

# Question cues per kind, matched on the NFKC-folded question.
QUESTION_CUES = {
    "how": re.compile(r"どう(すれ|やっ|したら|すると|すれば)|どのように|どのよう|方法|やり方|仕方|使い方|手順|手続|申し?込"
                      r"|(?<!知り)たい|ほしい|欲しい"),
    "when": re.compile(r"いつ|時期|何時|何日|何曜|日時|日程|タイミング|時点|期限|頃"),
    "where": re.compile(r"どこ|どちら|場所|会場"),
    "contact": re.compile(r"問い?合わ?せ|連絡先|電話|窓口|相談先"),
    "who": re.compile(r"誰|だれ|どなた|どの人|担当者"),
    "why": re.compile(r"なぜ|何故|どうして|なんで|理由|原因"),
    "what": re.compile(r"とは|何が|何を|なに|どんな|どのような|内容|教えて|一覧"),
}
# Section cues per kind: in a heading they say what the section is for.
HEADING_CUES = {
    "how": re.compile(r"方法|手順|やり方|操作|申込|申し込|手続"),
    "when": re.compile(r"日時|時期|タイミング|日程|いつ|期限|時点"),
    "where": re.compile(r"場所|会場"),
    "contact": re.compile(r"問い?合わ?せ|連絡先|窓口"),
    "who": re.compile(r"誰|対象|担当|回答する"),
    "why": re.compile(r"理由|目的|背景|なぜ|原因"),
    "what": re.compile(r"内容|できること|とは|概要|対象"),
}
# Weaker cues in a section's body.
BODY_CUES = {
    "how": re.compile(r"ご相談ください|お問い合わせください|お申し込みください|手順|方法"),
    "when": re.compile(r"\d+月\d+日|\d+:\d+|毎月|毎週|週末|夜間|時点|前後に"),
    "where": re.compile(r"会議室|会館|住所|サイト|ページ"),
    "contact": re.compile(r"フリーダイヤル|電話|\d{2,4}-\d{2,4}-\d{3,4}"),
    "who": re.compile(r"ご本人|担当|事務局が|医師会が"),
    "why": re.compile(r"ため[、。にで]|理由|背景"),
    "what": re.compile(r"次の(内容|とおり|\d+種類)"),
}
# A question about what is new (kb.search answers it from the newest release note's opening).
# 最新 and 今回 only with what they qualify (最新の更新日 asks about one article's subject).
WHATS_NEW = re.compile(r"(?:最新|今回)の?(?:情報|お知らせ|変更|更新内容|機能|版|アップデート|リリース(?!ノート)|バージョン)|新機能|新しい機能|アップデート"
                       r"|リリース(?!ノート)|バージョンアップ|変更点|何が(?:変わ|追加|新し)|追加され")
HEADING_KIND = 1.0
BODY_KIND = 0.4
# Section score: shared question terms, the heading's share again, and the asked kind.
SECTION_MIX = (1.0, 0.15, 0.6)


#: Part of the index version: editing a cue above rebuilds the stored section kinds.
CUES_VERSION = hash_text(repr([(k, c.pattern) for t in (HEADING_CUES, BODY_CUES) for k, c in t.items()]))


def question_kinds(text: str) -> set[str]:
    """What the question asks: a subset of how/when/where/contact/who/why/what (empty when it does not say)."""
    folded = nfkc(text)
    return {kind for kind, cue in QUESTION_CUES.items() if cue.search(folded)}


def kind_words(text: str) -> list[str]:
    """The words of the question that say what kind of answer it wants (方法, 日程, 窓口, 理由 …).

    They are answered by a section of that kind (section_kinds), not by the section spelling them,
    so the confidence does not hold them as key words (kb.confidence.passage_coverage).
    """
    folded = nfkc(text)
    return [m.group(0) for cue in QUESTION_CUES.values() for m in cue.finditer(folded)]


def whats_new_cues(text: str) -> list[str]:
    """The words that ask what is new (最新, 今回, 新機能, アップデート, リリース …), [] for any other question.

    A question about the release notes themselves (リリースノートはどこ) is not one of them.
    """
    return WHATS_NEW.findall(nfkc(text))


def section_kinds(heading: str | None, body: str) -> dict[str, float]:
    """Which kinds of question a section answers, and how plainly (heading 1.0, body only 0.4)."""
    kinds = {}
    heading = nfkc(heading or "")
    body = nfkc(body)
    for kind in QUESTION_CUES:
        if heading and HEADING_CUES[kind].search(heading):
            kinds[kind] = HEADING_KIND
        elif BODY_CUES[kind].search(body):
            kinds[kind] = BODY_KIND
    return kinds


def section_score(terms: list[str], idf: dict[str, float], asked: set[str],
                  section_terms: set[str], heading_terms: set[str], kinds: dict[str, float]) -> float:
    """How well one section answers; see the module docstring for the three parts."""
    total = sum(idf[t] for t in terms) or 1.0
    shared = sum(idf[t] for t in terms if t in section_terms) / total
    heading = sum(idf[t] for t in terms if t in heading_terms) / total
    kind = max((kinds.get(k, 0.0) for k in asked), default=0.0)
    return SECTION_MIX[0] * shared + SECTION_MIX[1] * heading + SECTION_MIX[2] * kind
