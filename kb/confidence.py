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
  dictionary word the article does not use;
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

from kb.analysis import Analysis, bigrams

#: At or above this the core answers; below it offers choices or the operations desk.
CONFIDENCE_THRESHOLD = 0.5
# A key word the article lacks keeps the answer just below the threshold (a choice, not an
# answer); a key word no article has keeps it below half the threshold, where the core offers
# no choices (bot.core: choices from half the threshold).
MISSING_HERE_CAP = 0.9 * CONFIDENCE_THRESHOLD
MISSING_EVERYWHERE_CAP = 0.4 * CONFIDENCE_THRESHOLD
# A compound key word counts as met when this share of its parts (by rarity) is.
KEY_PARTS_MET = 0.5
# Fewest distinct reading bigrams for reading overlap to count towards confidence.
MIN_READING_GRAMS = 4
# Below this coverage the reading bigrams may stand in for the words (kana, typos).
RESCUE_BELOW = 0.5
# Query-language and SQL words: a question made of these (and digits) asks nothing.
OPERATOR_WORDS = {
    "and", "or", "not", "near", "select", "from", "where", "drop", "table", "union", "insert",
    "delete", "update", "null", "true", "false", "like", "exec", "script",
}
ASCII_WORD = re.compile(r"[a-z]{2,}")
# Below this share of the question known to the best article, a question that names nothing
# of any article title is not about what the knowledge base covers (kb.search.SearchResults).
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


def may_rescue(analysis: Analysis, has: set[str]) -> bool:
    """True when every word the article lacks could be a kana spelling or a typo of one it has."""
    return not any(known and terms[0] not in has for terms, known, _key in analysis.units)


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
