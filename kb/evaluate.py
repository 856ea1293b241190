"""Retrieval metrics for an evaluation set of `{"query", "relevant": [ids], "grades"?: {id: g}, "phrases"?: [...]}` lines.

Kept apart from the search so the same numbers are computed for our knowledge base and
for an outside FAQ corpus. A query with an empty `relevant` list is out of domain: it
counts towards `abstained` (the search should stay below the confidence threshold),
never towards the ranking metrics. A query with `phrases` also judges the passage: the top
answer's passage is right when it comes from a relevant article and contains one of the
phrases (`passage@1`, over the questions that carry phrases), because the right article
with the wrong section still leaves the asker reading for the answer.

`answered_right` is what a user sees: the share of the judged questions whose top answer is from
a relevant article, shows a right passage (when the question carries `phrases`), and is
confident enough to be given as an answer (at or above `CONFIDENCE_THRESHOLD`). A right article
said without confidence, or a confident answer from the wrong section, does not count.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from kb.search import CONFIDENCE_THRESHOLD, Searcher


@dataclass(frozen=True)
class Question:
    query: str
    relevant: tuple[str, ...]
    grades: dict
    phrases: tuple[str, ...] = ()

    def gain(self, slug: str) -> float:
        if slug not in self.relevant:
            return 0.0
        return float(self.grades.get(slug, 1)) if self.grades else 1.0


class BadQuestionFile(Exception):
    def __init__(self, path, lineno, reason):
        super().__init__(f"{path}:{lineno}: {reason}")


def load_questions(path) -> list[Question]:
    questions = []
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                query, relevant = row["query"], row.get("relevant", [])
                phrases = row.get("phrases") or []
                if not isinstance(phrases, list) or not all(isinstance(p, str) and p for p in phrases):
                    raise TypeError
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise BadQuestionFile(path, lineno, "{\"query\", \"relevant\", \"phrases\"?} の JSON 行ではありません")
            questions.append(Question(str(query), tuple(map(str, relevant)), dict(row.get("grades") or {}),
                                      tuple(phrases)))
    return questions


def ndcg_at(q: Question, ranked: list[str], k: int = 10) -> float:
    dcg = sum(q.gain(s) / math.log2(i + 2) for i, s in enumerate(ranked[:k]))
    ideal = sorted((q.gain(s) for s in q.relevant), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def evaluate(searcher: Searcher, questions: list[Question], k: int = 10, explain: bool = False) -> dict:
    """Run every question and return the metrics dict (keys are a contract: see docs/search.md).

    With `explain`, each miss also carries `explain`: for its top 3 results, the signals behind
    score, confidence and section (kb.search), so an author can see why the question went there.
    """
    judged = [q for q in questions if q.relevant]
    unjudged = [q for q in questions if not q.relevant]
    sums = dict.fromkeys(("hit@1", "hit@3", "mrr@10", "recall@10", "ndcg@10", "answered", "answered_right"), 0.0)
    abstained = 0
    passages = [0, 0]  # right, judged
    misses = []
    for q in questions:
        results = searcher.search(q.query, k=k, explain=explain)
        ranked = [r.slug for r in results]
        top = results[0] if results else None
        miss = {"query": q.query, "expected": list(q.relevant), "got": ranked[:3],
                "confidence": round(top.confidence if top else 0.0, 3)}
        if explain:
            miss["explain"] = [{"slug": r.slug, **r.explanation} for r in results[:3]]
        if not q.relevant:
            if top is None or top.confidence < CONFIDENCE_THRESHOLD:
                abstained += 1
            else:
                misses.append(miss)
            continue
        rel = set(q.relevant)
        first = next((i for i, s in enumerate(ranked) if s in rel), None)
        sums["hit@1"] += first == 0
        sums["hit@3"] += first is not None and first < 3
        sums["mrr@10"] += 1.0 / (first + 1) if first is not None and first < 10 else 0.0
        sums["recall@10"] += len(rel & set(ranked[:10])) / len(rel)
        sums["ndcg@10"] += ndcg_at(q, ranked, 10)
        confident = top is not None and top.confidence >= CONFIDENCE_THRESHOLD
        sums["answered"] += confident
        passage_right = True
        if q.phrases:
            passages[1] += 1
            passage_right = first == 0 and any(p in top.passage for p in q.phrases)
            passages[0] += passage_right
        sums["answered_right"] += first == 0 and passage_right and confident
        if first != 0 or not passage_right:
            misses.append({**miss, "section": top.section if top else None} if q.phrases else miss)
    report = {"n": len(questions)}
    report.update({key: round(value / len(judged), 4) if judged else None for key, value in sums.items()})
    report["passage@1"] = round(passages[0] / passages[1], 4) if passages[1] else None
    report["abstained"] = round(abstained / len(unjudged), 4) if unjudged else None
    report["misses"] = misses
    return report
