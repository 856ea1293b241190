"""How sure the search is that an article answers the question, in 0..1.

A help desk that answers confidently with an unrelated article costs the asker more than
one that says it does not know and offers the desk. So the confidence is built from what
the question asks that the article does *not* have:

* coverage is counted per word of the question (a compound and its parts are one word,
  so 医療機関 does not weigh three times against 廃止), weighted by rarity; a word the index
  has never seen gets the highest weight, so a question about 論文 is not answered from an
  article that shares only 日医雑誌 with it;
* a word the article mentions only to say it does not know (kb.indexer `hedged_terms`)
  counts as missing;
* the reading-bigram rescue (for kana spellings and typos: ますた, 更親) applies only when
  every word the article lacks could be such a spelling — not when the question names a
  dictionary word the article does not use — and stands in only for the words whose own reading
  the article's title and example questions meet, never for one by the readings of the others
  (`rescued_coverage`);
* a word the dictionary does not know (ﾏﾓﾘｽ) that no article has, by spelling or by reading
  (nor the passage by word vector), counts like a key word no article has (`unmet_unknown`): the
  question asks about something the knowledge base never mentions, whatever else it shares with
  an article. A dictionary word written in hiragana is not held so (ちょっと, えっと, すみません
  and ぴよぴよ are alike to the dictionary): only the rescue above judges it;
* a question of operators, symbols or digits alone (`OR 1 = 1`) asks nothing.

The confidence then judges the passage that will be shown, not only the article
(`passage_coverage`): the question's words are looked for in that section, its example questions
and the article's title, by spelling (after the synonym table) or by word vector, and the
confidence is calibrated on the lower of the article's and the passage's share. A *key* word
(kb.analysis: a noun that makes the question this question, パスワード, 自宅, スマホアプリ) that
neither the passage nor the rest of the article meets holds the answer below the threshold (the
article may still be offered as a choice); one that no article has at all holds it below the
choices too, so the asker gets 「見つかりませんでした」 and the desk rather than an unrelated passage.

The search compares the result with the single threshold `CONFIDENCE_THRESHOLD`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable

from kb.analysis import Analysis, bigrams

#: At or above this the core answers; below it offers choices or the operations desk.
CONFIDENCE_THRESHOLD = 0.5
# A key word the article lacks keeps the answer just below the threshold (a choice, not an
# answer); a key word no article has keeps it below half the threshold, where the core offers
# no choices (bot.conversation.core: choices from half the threshold).
MISSING_HERE_CAP = 0.9 * CONFIDENCE_THRESHOLD
MISSING_EVERYWHERE_CAP = 0.4 * CONFIDENCE_THRESHOLD
# A compound key word counts as met when this share of its parts (by rarity) is.
KEY_PARTS_MET = 0.5
# Fewest distinct reading bigrams for reading overlap to count towards confidence.
MIN_READING_GRAMS = 4
# Below this coverage the reading bigrams may stand in for the words (kana, typos).
RESCUE_BELOW = 0.5
# A word's reading is met when more than this share of its reading bigrams is (half lets chance
# pairs through: ふがふが's ガフ is in 情報が古い).
READING_MET = 0.5
# Query-language and SQL words: a question made of these (and digits) asks nothing.
OPERATOR_WORDS = {
    "and", "or", "not", "near", "select", "from", "where", "drop", "table", "union", "insert",
    "delete", "update", "null", "true", "false", "like", "exec", "script",
}
ASCII_WORD = re.compile(r"[a-z]{2,}")
# Below this share of the question known to the best article, a question that names nothing
# of any article title is not about what the knowledge base covers (kb.results.SearchResults).
OUT_OF_DOMAIN_COVERAGE = 0.1


def asks_something(analysis: Analysis) -> bool:
    """False for a question of operators, symbols or digits alone."""
    for terms, _known, _key in analysis.units:
        head = terms[0]
        if not head.isascii():
            return True
        if ASCII_WORD.fullmatch(head) and head not in OPERATOR_WORDS:
            return True
    return False


def coverage(analysis: Analysis, idf: dict[str, float], has: set[str], kind_terms: frozenset[str] = frozenset()) -> float:
    """Rarity-weighted share of the question's words the article has (see module docstring).

    Words that only ask for a kind of answer (教えて, 方法: `kind_terms`) are left out: the
    section's kind answers them, not its spelling.
    """
    total = covered = 0.0
    for terms, _known, _key in analysis.units:
        head, parts = terms[0], terms[1:]
        if head not in idf or head in kind_terms:
            continue  # beyond the query-term cap, or asks only for a kind of answer
        weight = idf[head]
        total += weight
        if head in has:
            covered += weight
        elif parts:
            part_weights = [idf.get(p, 0.0) for p in parts]
            found = sum(w for p, w in zip(parts, part_weights) if p in has)
            covered += weight * found / (sum(part_weights) or 1.0)
    return covered / total if total else 0.0


def passage_coverage(analysis: Analysis, idf: dict[str, float], said: set[str],
                     near: set[int] = frozenset(), kind_terms: frozenset[str] = frozenset()) -> tuple[float, list[int]]:
    """(rarity-weighted share of the question's words the passage meets, indices of the key words it misses).

    `said` holds the passage's words (section, its example questions, the article's title);
    `near` the indices of `analysis.units` met by word vector instead (kb.search); `kind_terms`
    the words that only ask for a kind of answer (kb.passages.kind_words), never key words.
    """
    total = covered = 0.0
    missing = []
    for i, (terms, _known, key) in enumerate(analysis.units):
        head, parts = terms[0], terms[1:]
        if head not in idf or head in kind_terms:
            continue  # beyond the query-term cap, or asks only for a kind of answer (see `coverage`)
        weight = idf[head]
        total += weight
        if head in said or i in near:
            share = 1.0
        elif parts:
            part_weights = [idf.get(p, 0.0) for p in parts]
            share = sum(w for p, w in zip(parts, part_weights) if p in said) / (sum(part_weights) or 1.0)
        else:
            share = 0.0
        covered += weight * share
        if key and share < KEY_PARTS_MET and i not in missing:
            missing.append(i)
    return (covered / total if total else 0.0), missing


def held_back(confidence: float, missing_here: bool, missing_everywhere: bool) -> float:
    """The confidence, capped when a key word is missing from the passage (or from every article)."""
    if missing_everywhere:
        return min(confidence, MISSING_EVERYWHERE_CAP)
    if missing_here:
        return min(confidence, MISSING_HERE_CAP)
    return confidence


def reading_met(reading: str, grams: set[str]) -> bool:
    """Whether `grams` (reading and spelling bigrams) hold more than READING_MET of one word's reading.

    A reading of one character is never met: it says too little to be the same word (ゲ).
    """
    own = set(bigrams(reading)) if len(reading) > 1 else set()
    return bool(own) and len(own & grams) > READING_MET * len(own)


def may_rescue(analysis: Analysis, has: set[str]) -> bool:
    """True when every word the article lacks could be a kana spelling or a typo of one it has."""
    return not any(known and terms[0] not in has for terms, known, _key in analysis.units)


def rescued_coverage(analysis: Analysis, idf: dict[str, float], has: set[str], texts: list[list[str]],
                     kind_terms: frozenset[str] = frozenset()) -> float:
    """The article's share of the question when readings stand in for spellings (kana, typos).

    It is the share of the question's reading bigrams that one title or example question holds
    (`gram_coverage`, `texts` as [surface, reading]), but no more than the rarity-weighted share of
    its words (`coverage`) that the article has by spelling or whose *own* reading those texts meet:
    the readings of 申込方法 never stand in for もげもげ beside them. A question of words that only ask
    for a kind of answer (電話番号は？) has no such word, and the reading alone decides.
    """
    grams = {g for text in texts for field in text for g in bigrams(field)}
    met = {terms[0] for (terms, _known, _key), reading in zip(analysis.units, _readings(analysis))
           if reading_met(reading, grams)}
    counted = any(terms[0] in idf and terms[0] not in kind_terms for terms, _known, _key in analysis.units)
    words = coverage(analysis, idf, has | met, kind_terms) if counted else 1.0
    return min(gram_coverage(set(bigrams(analysis.reading)), texts), words)


def unmet_unknown(analysis: Analysis, df: dict[str, int], kind_terms: frozenset[str],
                  doc_freq: Callable[[list[str]], dict[str, int]]) -> list[int]:
    """Indices of the question's words unknown to the dictionary that no article has by spelling or by reading.

    `df` is the document frequency of the question's terms; `doc_freq` looks up that of reading
    bigrams (the index holds those of every title, example question and tag), called only when
    an unknown word is missing from every article by spelling.
    """
    first = {}  # a word said twice is one missing word
    for i, ((terms, _known, _key), oov) in enumerate(zip(analysis.units, analysis.oov)):  # oov: () without readings
        if oov and terms[0] in df and terms[0] not in kind_terms and not any(df.get(t, 0) for t in terms):
            first.setdefault(terms[0], i)
    absent = list(first.values())
    if not absent:
        return []
    readings = _readings(analysis)
    found = doc_freq(sorted({g for i in absent for g in bigrams(readings[i])}))
    grams = {g for g, d in found.items() if d}
    return [i for i in absent if not reading_met(readings[i], grams)]


def _readings(analysis: Analysis) -> tuple[str, ...]:
    """Each word's reading; "" (never met) for a text analysed without readings."""
    return analysis.readings or ("",) * len(analysis.units)


def gram_coverage(query_grams: set[str], texts: list[list[str]]) -> float:
    """Share of the question's reading bigrams found in the reading of one title/example question.

    Readings of one or two words are too ambiguous (テンキ is inside テンキョ), so a
    question needs a few distinct pairs before this counts.
    """
    if len(query_grams) < MIN_READING_GRAMS:
        return 0.0
    return max(len(query_grams & set(bigrams(reading))) / len(query_grams) for _, reading in texts)


def calibrate(coverage: float, similarity: float) -> float:
    """Map (coverage, title/question similarity) to 0..1 with a logistic curve.

    Coverage is the share of the question's information the article contains; similarity
    how closely the question matches one way the article is asked. The curve is centred so
    that an article covering about half of a question, or one whose example question reads
    almost the same, sits at the threshold.
    """
    x = 0.75 * coverage + 0.25 * similarity
    return 1.0 / (1.0 + math.exp(-12.0 * (x - 0.45)))
