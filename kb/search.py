"""Rank knowledge-base articles for a Japanese question.

Three stages, each cheap:

1. FTS5 BM25 over the analysed terms, with field weights (title and example
   questions above body) and kana-reading bigrams as a low-weight fallback, gives up
   to `CANDIDATES` candidates;
2. a re-rank mixes the BM25 score with two signals FTS5 cannot see: how much of the
   question (weighted by term rarity) the article covers, and how close the question
   is to the article's title or one of its example questions (rapidfuzz, which also
   forgives a wrong kanji or a missing character);
3. a calibrated confidence in 0..1 from those signals, which the conversation core
   compares with the single threshold `CONFIDENCE_THRESHOLD` to answer, offer
   choices or hand over to a person.

Any input is safe: every term is quoted before MATCH, the input is capped, and a
query that still fails returns no results rather than raising.
"""
from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

from kb.analysis import Analysis, Analyzer, bigrams

#: At or above this the core answers; below it offers choices or the operations desk.
CONFIDENCE_THRESHOLD = 0.5
CANDIDATES = 40
MAX_QUERY_TERMS = 48
MAX_QUERY_GRAMS = 48
# bm25() column weights: title, questions, body, grams.
FIELD_WEIGHTS = (4.0, 3.0, 1.0, 0.6)


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

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "title": self.title,
            "kind": self.kind,
            "updated": self.updated,
            "event_date": self.event_date,
            "passage": self.passage,
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
        }


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


def quote(term: str) -> str:
    """An FTS5 string literal: the term can never be read as syntax (AND, NEAR(, *, :)."""
    return '"' + term.replace('"', '""') + '"'


def match_expression(analysis: Analysis) -> str:
    """The MATCH string for an analysed question: every term and gram quoted, OR-ed."""
    terms = analysis.unique_terms()[:MAX_QUERY_TERMS]
    grams = list(dict.fromkeys(bigrams(analysis.reading)))[:MAX_QUERY_GRAMS]
    return " OR ".join(quote(t) for t in dict.fromkeys(terms + grams))


CANDIDATES_SQL = """
SELECT fts.rowid AS id, bm25(fts, :w_title, :w_questions, :w_body, :w_grams) AS rank
FROM fts WHERE fts MATCH :match ORDER BY rank LIMIT :limit
"""

DOCUMENTS_SQL = """
SELECT id, slug, title, kind, audience, updated, event_date, terms, match_texts
FROM documents WHERE id IN (SELECT value FROM json_each(:ids))
"""

DOC_FREQ_SQL = """
SELECT term, doc FROM fts_vocab WHERE term IN (SELECT value FROM json_each(:terms))
"""

SECTIONS_SQL = "SELECT ord, heading, body, terms FROM sections WHERE doc_id = :id ORDER BY ord"


class Searcher:
    """Read-only access to a built index. Cheap to open; use one per thread."""

    def __init__(self, db_path, analyzer: Analyzer | None = None):
        path = Path(db_path)
        if not path.exists():
            raise FileNotFoundError(path)
        self.conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.analyzer = analyzer or Analyzer()
        self.total_docs = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]

    def close(self) -> None:
        self.conn.close()

    # -- public API ---------------------------------------------------------

    def search(self, query: str, k: int = 5) -> list[SearchResult]:
        """Best articles for `query`, best first; never raises for any text."""
        if not isinstance(query, str) or not query.strip() or k <= 0:
            return []
        analysis = self.analyzer.analyze(query)
        ranked = self._rank(analysis)
        results = []
        for cand in ranked[:k]:
            heading, passage = self._best_section(cand["id"], analysis)
            results.append(
                SearchResult(
                    slug=cand["slug"],
                    title=cand["title"],
                    kind=cand["kind"],
                    audience=cand["audience"],
                    updated=cand["updated"],
                    event_date=cand["event_date"],
                    passage=passage,
                    section=heading,
                    score=cand["score"],
                    confidence=cand["confidence"],
                )
            )
        return results

    def suggest(self, text: str, k: int = 3) -> list[Suggestion]:
        """Example questions matching what is being typed, for suggest-as-you-type."""
        if not isinstance(text, str) or len(text.strip()) < 2:
            return []
        analysis = self.analyzer.analyze(text)
        suggestions = []
        for cand in self._rank(analysis)[:k]:
            if cand["confidence"] < CONFIDENCE_THRESHOLD / 2:
                break
            questions = json.loads(self._document(cand["id"])["questions"]) or [cand["title"]]
            folded = [self.analyzer.analyze(q).surface for q in questions]
            best = max(range(len(questions)), key=lambda i: fuzz.partial_ratio(analysis.surface, folded[i]))
            suggestions.append(Suggestion(cand["slug"], cand["title"], questions[best]))
        return suggestions

    def article(self, slug: str) -> Article | None:
        row = self.conn.execute(
            "SELECT * FROM documents WHERE slug = :slug", {"slug": slug}
        ).fetchone()
        if row is None:
            return None
        return Article(
            slug=row["slug"],
            title=row["title"],
            kind=row["kind"],
            audience=row["audience"],
            tags=tuple(json.loads(row["tags"])),
            questions=tuple(json.loads(row["questions"])),
            updated=row["updated"],
            event_date=row["event_date"],
            source=row["source"],
            body=row["body"],
        )

    def articles(self) -> list[Article]:
        slugs = [r[0] for r in self.conn.execute("SELECT slug FROM documents ORDER BY updated DESC, slug")]
        return [self.article(s) for s in slugs]

    # -- ranking ------------------------------------------------------------

    def _document(self, doc_id: int) -> sqlite3.Row:
        return self.conn.execute("SELECT * FROM documents WHERE id = :id", {"id": doc_id}).fetchone()

    def _candidates(self, analysis: Analysis) -> list[tuple[int, float]]:
        match = match_expression(analysis)
        if not match:
            return []
        w = dict(zip(("w_title", "w_questions", "w_body", "w_grams"), FIELD_WEIGHTS))
        try:
            rows = self.conn.execute(CANDIDATES_SQL, {**w, "match": match, "limit": CANDIDATES}).fetchall()
        except sqlite3.Error:
            return []
        return [(r["id"], -r["rank"]) for r in rows]

    def _idf(self, terms: list[str]) -> dict[str, float]:
        """Inverse document frequency; a term the index has never seen gets the highest weight."""
        n = max(self.total_docs, 1)
        df = {r["term"]: r["doc"] for r in self.conn.execute(DOC_FREQ_SQL, {"terms": json.dumps(terms)})}
        return {t: math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in terms}

    def _rank(self, analysis: Analysis) -> list[dict]:
        candidates = self._candidates(analysis)
        if not candidates:
            return []
        terms = analysis.unique_terms()[:MAX_QUERY_TERMS]
        idf = self._idf(terms)
        total_idf = sum(idf.values()) or 1.0
        query_grams = set(bigrams(analysis.reading))
        bm25 = dict(candidates)
        top_bm25 = max(bm25.values()) or 1.0
        rows = self.conn.execute(DOCUMENTS_SQL, {"ids": json.dumps([c[0] for c in candidates])}).fetchall()
        ranked = []
        for row in rows:
            doc_terms = set(row["terms"].split())
            coverage = sum(idf[t] for t in terms if t in doc_terms) / total_idf
            texts = json.loads(row["match_texts"])
            similarity = max(self._similarity(analysis, t) for t in texts) / 100.0
            gram_cover = self._gram_coverage(query_grams, texts)
            relative = bm25[row["id"]] / top_bm25
            score = 0.45 * relative + 0.35 * coverage + 0.2 * similarity
            signal = max(coverage, 0.9 * gram_cover if not terms or coverage < 0.5 else 0.0)
            confidence = _calibrate(signal, similarity)
            ranked.append({**dict(row), "score": score, "confidence": confidence})
        ranked.sort(key=lambda c: (-c["score"], c["slug"]))
        return ranked

    @staticmethod
    def _similarity(analysis: Analysis, text: list[str]) -> float:
        """Closeness of the question to one title/example question, by spelling or by reading."""
        surface, reading = text
        return max(fuzz.ratio(analysis.surface, surface), fuzz.ratio(analysis.reading, reading))

    @staticmethod
    def _gram_coverage(query_grams: set[str], texts: list[list[str]]) -> float:
        """Share of the question's reading bigrams found in the reading of one title/example question."""
        if len(query_grams) < 2:
            return 0.0
        return max(len(query_grams & set(bigrams(reading))) / len(query_grams) for _, reading in texts)

    def _best_section(self, doc_id: int, analysis: Analysis) -> tuple[str | None, str]:
        """The section that shares the most (rarity-weighted) terms with the question; the first on a tie."""
        sections = self.conn.execute(SECTIONS_SQL, {"id": doc_id}).fetchall()
        if not sections:
            return None, ""
        terms = analysis.unique_terms()[:MAX_QUERY_TERMS]
        idf = self._idf(terms) if terms else {}
        best, best_score = sections[0], 0.0
        for s in sections:
            s_terms = set(s["terms"].split())
            heading_terms = set(self.analyzer.analyze(s["heading"] or "").terms)
            score = sum(idf[t] * (2.0 if t in heading_terms else 1.0) for t in terms if t in s_terms)
            if score > best_score:
                best, best_score = s, score
        return best["heading"], best["body"]


def _calibrate(coverage: float, similarity: float) -> float:
    """Map (coverage, title/question similarity) to 0..1 with a logistic curve.

    Coverage is the share of the question's information (idf-weighted terms) the article
    contains; similarity how closely the question matches one way the article is asked.
    The curve is centred so that an article covering about half of a question, or one
    whose example question reads almost the same, sits at the threshold.
    """
    x = 0.75 * coverage + 0.25 * similarity
    return 1.0 / (1.0 + math.exp(-12.0 * (x - 0.45)))
