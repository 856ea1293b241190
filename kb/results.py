"""What a search gives back: results (with what the search learnt about the question), suggestions and articles.

Plain values, so that whoever shows them (the conversation core, the pages, the CLI) needs nothing of
how they were ranked (kb.search).
"""
from __future__ import annotations

from dataclasses import dataclass

from kb.confidence import CONFIDENCE_THRESHOLD, OUT_OF_DOMAIN_COVERAGE

@dataclass(frozen=True)
class SearchResult:
    slug: str
    title: str
    kind: str
    audience: str
    updated: str | None
    event_date: str | None
    passage: str
    section: str | None
    score: float
    confidence: float
    # With search(..., explain=True): the signals behind score, confidence and section (see _judge).
    explanation: dict | None = None

    def as_dict(self) -> dict:
        explained = {"explain": self.explanation} if self.explanation is not None else {}
        return {
            "slug": self.slug,
            "title": self.title,
            "kind": self.kind,
            "updated": self.updated,
            "event_date": self.event_date,
            "passage": self.passage,
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
            **explained,
        }


class SearchResults(list):
    """The results, best first (a plain list), plus what the search learnt about the question.

    `out_of_domain` is true when the question is not about what the knowledge base covers at
    all (weather, shopping, stock prices; or symbols alone): no article holds even a third of
    it and none is confident. The core then says what the help desk answers instead of
    offering unrelated articles as choices. A question about MAMIS that the articles simply do
    not answer is *not* out of domain: it gets choices and the desk.
    """

    out_of_domain: bool = True

    @classmethod
    def of(cls, results: list[SearchResult], best_coverage: float, asks: bool, names_topic: bool) -> "SearchResults":
        found = cls(results)
        found.out_of_domain = not asks or not results or (
            best_coverage < OUT_OF_DOMAIN_COVERAGE and results[0].confidence < CONFIDENCE_THRESHOLD
            and not names_topic
        )
        return found


@dataclass(frozen=True)
class Suggestion:
    slug: str
    title: str
    question: str


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    kind: str
    audience: str
    tags: tuple[str, ...]
    questions: tuple[str, ...]
    updated: str | None
    event_date: str | None
    source: str | None
    body: str
