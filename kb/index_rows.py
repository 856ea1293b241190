"""What the index stores for one document: its row, its sections' rows and its FTS row.

Kept apart from the writing (kb.indexer, which owns the database): this is where a build spends its
time, and it runs in worker processes for a large build. Each text is segmented once (kb.analysis);
the section rows, the article's terms and the FTS body all reuse that one analysis.
"""
from __future__ import annotations

import json
import re
from itertools import chain

from kb import vectors as word_vectors
from kb.analysis import Analyzer, bigrams
from kb.loader import Document
from kb.passages import section_kinds

# A sentence saying the source does not tell (この資料には記載がありません, 分かりません …).
NOT_STATED = re.compile(r"記載(が|は)(ありません|ない)|(分か|わか)りません|説明されていません|触れられていません|明らかではありません")
SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")


def split_unstated(text: str) -> tuple[str, str]:
    """(sentences that say something, sentences that say the source does not tell)."""
    if not NOT_STATED.search(text):
        return text, ""  # nearly every section: one scan instead of one per sentence
    said, unsaid = [], []
    for sentence in SENTENCE_END.split(text):
        (unsaid if NOT_STATED.search(sentence) else said).append(sentence)
    return "".join(said), "".join(unsaid)


def analyse_document(analyzer: Analyzer, doc: Document,
                     vectors: word_vectors.WordVectors | None = None) -> tuple[dict, list[dict], dict]:
    """Everything the index stores for one document: its row, its sections' rows and its FTS row."""
    title = analyzer.analyze(doc.title)
    # The article's own example questions first, then each section's in order.
    questions = [analyzer.analyze(q) for q in doc.all_questions]
    asked = iter(questions[len(doc.questions):])
    tags = [analyzer.analyze(t) for t in doc.tags]
    sections, hedged, stated = [], set(), set()
    # Every section's heading, stated and "not stated" sentences in one segmenter pass.
    parts = [text for s in doc.sections for text in (s.heading or "", *split_unstated(s.body))]
    analysed = analyzer.analyze_many(parts, limit=None, reading=False)
    for i, s in enumerate(doc.sections):
        h, a, b = analysed[3 * i:3 * i + 3]
        own = [next(asked) for _ in s.questions]
        sections.append((s, h, h.terms + a.terms + b.terms, [h, a, *own], own))
        stated.update(a.terms)  # a heading names a topic; it says nothing about it
        hedged.update(b.terms)
    head_terms = set(title.terms)
    for a in questions + tags:
        head_terms.update(a.terms)
    bags = {"head_bag": b"", "body_bag": b""}
    if vectors is not None:
        bags["head_bag"] = vectors.bag(chain.from_iterable(a.lemmas for a in [title, *questions, *tags])).to_bytes()
        bags["body_bag"] = vectors.bag(chain.from_iterable(a.lemmas for a in analysed)).to_bytes()
    all_terms = set(head_terms)
    for _, _, terms, _, _ in sections:
        all_terms.update(terms)
    # Words the article mentions only to say it does not know (「録画が提供されるかは
    # この資料からは分かりません」): the search must not count them as answered.
    hedged -= stated | head_terms
    # Readings and character pairs of the short fields only: enough for kana questions and
    # fragments, without multiplying the size of long bodies.
    grams, seen = [], set()
    for a in [title, *questions, *tags]:
        grams.extend(bigrams(a.reading))
        seen.update(grams)
        grams.extend(g for g in dict.fromkeys(bigrams(a.surface)) if g not in seen)
    document = {
        "slug": doc.slug,
        "title": doc.title,
        "kind": doc.kind,
        "audience": doc.audience,
        "tags": json.dumps(doc.tags, ensure_ascii=False),
        "questions": json.dumps(doc.all_questions, ensure_ascii=False),
        "updated": doc.updated,
        "event_date": doc.event_date,
        "source": doc.source,
        "body": doc.body,
        "terms": " ".join(sorted(all_terms)),
        "head_terms": " ".join(sorted(head_terms)),
        "title_terms": " ".join(sorted(set(title.terms))),
        "hedged_terms": " ".join(sorted(hedged)),
        "match_texts": json.dumps([[a.surface, a.reading] for a in [title, *questions]], ensure_ascii=False),
        "release": int(doc.release),
        **bags,
    }
    section_rows = [
        {"ord": i, "heading": section.heading, "body": section.body,
         "terms": " ".join(sorted(set(terms).union(*(q.terms for q in own)))),
         "heading_terms": " ".join(sorted(set(h.terms))),
         "kinds": json.dumps(section_kinds(section.heading, section.body)),
         "said_terms": " ".join(sorted(set().union(*(a.terms for a in said)))),
         "said_rows": vectors.bag(chain.from_iterable(a.lemmas for a in said)).rows.tobytes() if vectors else b"",
         "questions": json.dumps([[q.surface, q.reading] for q in own], ensure_ascii=False)}
        for i, (section, h, terms, said, own) in enumerate(sections)
    ]
    # One FTS row per article: BM25 has to score every matching row, so rows are kept
    # few; which section answers is decided by the re-rank from `sections.terms`.
    fts = {
        "title": " ".join(title.terms + tuple(t for a in tags for t in a.terms)),
        "questions": " ".join(t for a in questions for t in a.terms),
        "body": " ".join(chain.from_iterable(terms for _, _, terms, _, _ in sections)),
        "grams": " ".join(grams),
    }
    return document, section_rows, fts
