"""The answering section of one search result and the confidence in it.

The search (kb.search) ranks whole articles; for each result it returns, `judge` chooses the `##`
section that answers (kb.passages, helped by the section's own example questions) and judges that
passage against the question: the share of the question the article *and* the passage meet (by
spelling, by the words of its example questions and title, or by a word near in meaning), how close
the question is to one of its example questions, and a hold when a key word is missing
(kb.confidence). With `explain`, it also records why, for whoever writes the articles (kb.explain).
"""
from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz, process

from kb.analysis import Analysis
from kb.confidence import (RESCUE_BELOW, asks_something, calibrate, coverage, held_back, may_rescue, passage_coverage,
                           rescued_coverage)
from kb.passages import section_score

# A section whose example question reads like the question (rapidfuzz, 0..1) gains this much per
# point above the floor (where unrelated sentences of similar length already sit).
SECTION_QUESTION_WEIGHT = 2.0
SECTION_QUESTION_FLOOR = 0.5
# A question word whose vector has at least this cosine to one of the passage's words is met by it
# (kb.confidence.passage_coverage). High: words used alike are not always the same thing
# (パスワード and ログイン sit at 0.75, 休会 and 入会 at 0.72).
VECTOR_MET = 0.8


def judge(space, analysis: Analysis, terms: list[str], idf: dict[str, float], df: dict[str, int], wanted: tuple,
          cand: dict, doc_terms: set[str], sections: list[dict], explain: bool, unknown: list[int]) -> None:
    """Choose the candidate's answering section and judge it: sets section_id, coverage, confidence.

    `wanted` is (kinds of answer asked for, what-is-new cue terms, terms that ask for a kind of answer);
    `unknown` the question's unknown words no article has by spelling or reading (kb.confidence.unmet_unknown);
    `space` the search's (word vectors, row weights), or None for a lexical search only.
    """
    kinds, cues, kind_terms = wanted
    topic = set(cand["title_terms"].split())
    # A release note answers "what is new" (最新, 今回, アップデート …) by being the newest one.
    new_release = bool(cues) and cand["release"]
    has = doc_terms - set(cand["hedged_terms"].split()) | (cues if new_release else set())
    cand["coverage"] = signal = coverage(analysis, idf, has, kind_terms)
    rescued = (not terms or signal < RESCUE_BELOW) and may_rescue(analysis, has)
    # The section that best answers what is asked (kb.passages), helped by its own example
    # questions; the first on a tie, so a question matching nothing specific gets the summary.
    # A question about what is new is answered from a release note's opening, which lists what changed.
    for s, closest in zip(sections, similarities(analysis, [s["questions"] for s in sections])):
        asked_like = closest / 100.0
        s["asked_like"] = asked_like
        s["score"] = (section_score(terms, idf, kinds, s["terms"], s["heading_terms"] - topic, s["kinds"])
                      + SECTION_QUESTION_WEIGHT * max(0.0, asked_like - SECTION_QUESTION_FLOOR))
    chosen = sections[0] if new_release else max(sections, key=lambda s: s["score"])
    cand["section_id"] = chosen["id"]
    # The passage shown must meet the question's words: its own, its example questions', the
    # title's, a release note's "what is new" for such a question, or a word near in meaning.
    # The opening (summary) answers what the whole article is about, so the article's own example
    # questions and tags are its questions; a release note's opening sums up the whole note.
    said = has if new_release else set(chosen["said_terms"].split()) | topic
    if chosen["heading"] is None:
        said = said | set(cand["head_terms"].split())
    near = _near(space, analysis, np.frombuffer(chosen["said_rows"], dtype=np.int32), said)
    passage, missing = passage_coverage(analysis, idf, said, near, kind_terms)
    # A key word the passage lacks lowers the passage's share; one the whole article lacks
    # (or says only that it does not know) holds the answer back.
    # Meeting more words can only shrink the misses, so with none missing from the passage there is
    # nothing to look up in the rest of the article.
    unanswered = passage_coverage(analysis, idf, said | has, near, kind_terms)[1] if missing else []
    lifted = False  # whether the readings raised the share (what --explain reports)
    if rescued:
        by_reading = 0.9 * rescued_coverage(analysis, idf, has, cand["texts"], kind_terms)
        lifted, signal = by_reading > signal, max(signal, by_reading)
        passage = max(passage, signal)
    similarity = max(cand["similarity"], chosen["asked_like"])
    meaningful = asks_something(analysis) or not terms
    confidence = calibrate(min(signal, passage), similarity) if meaningful else 0.0
    nowhere = [i for i in unanswered if df.get(analysis.units[i][0][0], 0) == 0]
    nowhere += [i for i in unknown if i not in near]  # nor met by meaning here
    cand["confidence"] = held_back(confidence, bool(unanswered), bool(nowhere))
    if explain:
        unit_words = ["・".join(dict.fromkeys(u[0])) for u in analysis.units]
        cand["explain"] = {
            "score": {**{key: round(v, 4) for key, v in cand["signals"].items()}, "total": round(cand["score"], 4)},
            "confidence": {
                "article_coverage": round(cand["coverage"], 4), "rescued_by_reading": lifted,
                "passage_coverage": round(passage, 4), "similarity": round(similarity, 4),
                "before_hold": round(confidence, 4), "value": round(cand["confidence"], 4),
                "words_met": [w for i, w in enumerate(unit_words) if i not in missing and _met(analysis.units[i], said)],
                "words_met_by_meaning": [unit_words[i] for i in sorted(near)],
                "key_words_not_in_passage": [unit_words[i] for i in missing],
                "key_words_not_in_article": [unit_words[i] for i in unanswered],
                "key_words_in_no_article": [unit_words[i] for i in nowhere],
            },
            "section": {
                "chosen": chosen["heading"], "why": "whats_new" if new_release else "best_score",
                "candidates": [{"heading": s["heading"], "score": round(s["score"], 4),
                                "asked_like": round(s["asked_like"], 4), "kinds": s["kinds"]} for s in sections],
            },
        }


def _met(unit, said: set[str]) -> bool:
    return any(t in said for t in unit[0])


def _near(space, analysis: Analysis, said_rows: np.ndarray, said: set[str]) -> set[int]:
    """Indices of the question's words not in `said` whose vector is close to one of the passage's words."""
    if space is None or not len(said_rows):
        return set()
    vectors = space[0]
    todo = [(i, vectors.rows(analysis.lemmas[i])) for i, u in enumerate(analysis.units)
            if u[0][0] not in said and i < len(analysis.lemmas)]
    todo = [(i, rows) for i, rows in todo if rows]
    if not todo:
        return set()
    # Each distinct word once (a question may repeat one), all in one product with the passage's words.
    distinct = list(dict.fromkeys(rows for _, rows in todo))
    closest = (vectors.unit([r for rows in distinct for r in rows]) @ vectors.unit(said_rows).T).max(axis=1)
    near_words, at = set(), 0
    for rows in distinct:
        # every part of a compound the table lacks (動作環境: 動作, 環境) must be near something
        if float(closest[at:at + len(rows)].min()) >= VECTOR_MET:
            near_words.add(rows)
        at += len(rows)
    return {i for i, rows in todo if rows in near_words}


def similarities(analysis: Analysis, groups: list[list[list[str]]]) -> list[float]:
    """Per group of [folded surface, reading] texts (an article's title and example questions, a
    section's questions), the closeness (0..100) of the question to the closest one, by spelling or
    by reading; 0 for an empty group.

    All groups are scored in one `process.cdist` call per side: the same `fuzz.ratio` values as one
    call per text, without a Python call for each of the ~200 texts of a search.
    """
    flat = [text for group in groups for text in group]
    if not flat:
        return [0.0] * len(groups)
    best = np.maximum(
        process.cdist([analysis.surface], [surface for surface, _ in flat], scorer=fuzz.ratio, dtype=np.float64)[0],
        process.cdist([analysis.reading], [reading for _, reading in flat], scorer=fuzz.ratio, dtype=np.float64)[0])
    found, at = [], 0
    for group in groups:
        found.append(float(best[at:at + len(group)].max()) if group else 0.0)
        at += len(group)
    return found
