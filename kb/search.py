"""Rank knowledge-base articles for a Japanese question.

Three stages, each cheap:

1. FTS5 BM25 over the analysed terms, one row per article, with field weights (title
   and example questions above body) and kana-reading bigrams as a low-weight fallback,
   gives up to `CANDIDATES` candidates (kb.candidates);
2. a re-rank mixes the BM25 score with three signals FTS5 cannot see: how much of the
   question (weighted by term rarity) the article's title, tags and example questions
   cover, how close the question is to one of those (rapidfuzz, which also forgives
   a wrong kanji or a missing character), and how close its meaning is to the article's
   (word vectors, kb.vectors: 「仕事をやめた」 and 退職 share no word);
3. for the results returned, kb.judging chooses the answering `##` section (kb.passages, helped by
   the section's own example questions) and gives a calibrated confidence in 0..1 that judges the passage shown:
   the share of the question the article *and* that passage meet, that closeness, and a hold
   when a key word of the question is missing (kb.confidence). The conversation core compares
   it with the single threshold `CONFIDENCE_THRESHOLD` to answer, offer choices or hand over
   to a person.

A question about what is new (最新の情報, 今回のアップデート, 新機能 …) lifts the release notes,
newest first, and is answered from the newest one's opening, which lists what changed.

Any input is safe: every term is quoted before MATCH, the input is capped, and a
query that still fails returns no results rather than raising. What it returns is in kb.results.
"""
from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz

from kb import vectors as word_vectors
from kb.analysis import Analysis, Analyzer, bigrams
from kb.candidates import fts_candidates, uses_lists
from kb.confidence import CONFIDENCE_THRESHOLD, asks_something, unmet_unknown
from kb.judging import judge, similarities
from kb.passages import kind_words, question_kinds, whats_new_cues
from kb.results import Article, SearchResult, SearchResults, Suggestion
from storage.sqlite import connect

RERANK = 30
MAX_QUERY_TERMS = 48
MAX_QUERY_GRAMS = 48
# The rarest this many terms (and as many bigrams) go into MATCH: they decide BM25, while
# every further, commoner term mostly adds rows to score. The re-rank still sees them all.
MATCH_TERMS = 8
# A term asked more than once counts up to this many times.
QUERY_TF_CAP = 2
# In a large index, a term in at least this share of the articles and more than
# COMMON_ROWS of them stays out of MATCH as well (see `_useful`).
COMMON_SHARE = 0.3
COMMON_ROWS = 1000
# Re-rank mix: BM25 relative to the best candidate, idf-weighted share of the question found
# in the article's title/example questions/tags, fuzzy similarity to one of those.
RANK_MIX = (0.6, 0.2, 0.2)
# ... plus this much of the question's cosine to the article's meaning (kb.vectors): it lifts
# the article that says the same in other words (仕事をやめた → 退職) among the candidates.
MEANING_WEIGHT = 1.0
# A question of one or two words says too little for its meaning to outweigh the words
# themselves (「医療機関マスタ」 typed in the box): the weight reaches full at this many words.
MEANING_FULL_AT = 4
# A question with at most this many words also searches by reading bigrams...
SHORT_QUESTION_TERMS = 2
# ... and so does one where this share of the words is unknown to the index (kana, typos).
UNKNOWN_SHARE_FOR_FALLBACK = 0.5
# A question about what is new lifts the newest release note by this much (the next by half, …),
# the weight of the meaning signal: it leads unless another article matches the rest plainly.
WHATS_NEW_LIFT = 1.0
RELEASES_LIFTED = 3

@lru_cache(maxsize=1024)
def _kinds(stored: str) -> dict[str, float]:
    """A section's kinds (kb.passages.section_kinds) from their JSON. Sections share a few dozen distinct
    values, so each is parsed once; the dict is shared: read it, never change it."""
    return json.loads(stored)


TERMS_SQL = "SELECT id, terms FROM documents WHERE id IN (SELECT value FROM json_each(:ids))"

SECTIONS_SQL = """
SELECT id, doc_id, heading, terms, heading_terms, kinds, said_terms, said_rows, questions FROM sections
WHERE doc_id IN (SELECT value FROM json_each(:ids)) ORDER BY doc_id, ord
"""

DOCUMENTS_SQL = """
SELECT id, slug, title, kind, audience, updated, event_date, head_terms, title_terms, hedged_terms, match_texts, release
FROM documents WHERE id IN (SELECT value FROM json_each(:ids))
"""

RELEASES_SQL = "SELECT id FROM documents WHERE release = 1 ORDER BY updated DESC, slug DESC LIMIT :limit"

DOC_FREQ_SQL = """
SELECT term, doc FROM term_df WHERE term IN (SELECT value FROM json_each(:terms))
"""

SECTION_SQL = "SELECT heading, body FROM sections WHERE id = :id"

DOC_VECTORS_SQL = "SELECT id, head, body FROM doc_vectors WHERE id IN (SELECT value FROM json_each(:ids))"

VERSION_SQL = "SELECT value FROM meta WHERE key = 'version'"

VECTOR_WEIGHTS_SQL = "SELECT value FROM vector_space WHERE key = 'weights'"


class Searcher:
    """Read-only access to a built index. Cheap to open; use one per thread."""

    def __init__(self, db_path, analyzer: Analyzer | None = None):
        path = Path(db_path)
        if not path.exists():
            raise FileNotFoundError(path)
        self.conn = connect(path, readonly=True)
        self.conn.row_factory = sqlite3.Row
        self.analyzer = analyzer or Analyzer()
        # Document frequencies count FTS rows: one per article.
        self.total_rows = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        self._space = self._vector_space()
        self._lists = uses_lists(self.conn)  # the common words' stored candidates (kb.candidates)

    @cached_property
    def _title_words(self) -> frozenset[str]:
        """Every word of every article title: what the knowledge base is about."""
        return frozenset(t for (terms,) in self.conn.execute("SELECT title_terms FROM documents") for t in terms.split())

    def close(self) -> None:
        self.conn.close()

    def _vector_space(self):
        """(word vectors, row weights) when the index was built with the vectors this process has;
        otherwise None, and the ranking is lexical only."""
        vectors = word_vectors.load()
        if vectors is None or not self.conn.execute(VERSION_SQL).fetchone()[0].endswith("/" + vectors.source):
            return None
        row = self.conn.execute(VECTOR_WEIGHTS_SQL).fetchone()
        weights = np.frombuffer(row["value"], dtype=np.float32) if row else np.empty(0, dtype=np.float32)
        return (vectors, weights) if len(weights) == vectors.size else None

    # -- public API ---------------------------------------------------------

    def search(self, query: str, k: int = 5, explain: bool = False) -> SearchResults:
        """Best articles for `query`, best first; never raises for any text.

        With `explain`, each result carries the signals behind its score, its confidence and its
        section (`SearchResult.explanation`), for whoever writes the articles.
        """
        if not isinstance(query, str) or not query.strip() or k <= 0:
            return SearchResults()
        analysis = self.analyzer.analyze(query)
        results = []
        ranked = self._rank(analysis, k, question_kinds(query), self._terms_of(whats_new_cues(query)),
                            self._terms_of(kind_words(query)), explain)
        for cand in ranked:
            heading, passage = self.conn.execute(SECTION_SQL, {"id": cand["section_id"]}).fetchone()
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
                    explanation=cand.get("explain"),
                )
            )
        best = max((c["coverage"] for c in ranked), default=0.0)
        names_topic = any(u[0][0] in self._title_words for u in analysis.units)
        return SearchResults.of(results, best, asks_something(analysis) or not analysis.units, names_topic)

    def _terms_of(self, words: list[str]) -> frozenset[str]:
        """The analysed terms of some words of the question (cue words), to compare with its units."""
        return frozenset(self.analyzer.analyze(" ".join(words)).terms) if words else frozenset()

    def suggest(self, text: str, k: int = 3) -> list[Suggestion]:
        """Example questions matching what is being typed, for suggest-as-you-type."""
        if not isinstance(text, str) or len(text.strip()) < 2:
            return []
        analysis = self.analyzer.analyze(text)
        suggestions = []
        for cand in self._rank(analysis, k):
            if cand["confidence"] < CONFIDENCE_THRESHOLD / 2:
                break
            questions = json.loads(self._document(cand["id"])["questions"]) or [cand["title"]]
            # The folded spellings were stored at index time (title first, then the questions).
            folded = [surface for surface, _reading in cand["texts"][1:]] or [cand["texts"][0][0]]
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

    def _useful(self, df: dict[str, int], tf: Counter | None = None, keep_rarest: bool = True) -> list[str]:
        """The terms worth matching, most informative first, a term asked twice given twice.

        FTS5's BM25 gives a term in half the rows or more an idf of (almost) zero, so leaving
        it out of MATCH changes no score; it only spares scoring every row that contains
        nothing but such words. In a large index the same holds nearly for a term in a third
        of the rows (idf ≈ 0.8 against ≈ 9 for a rare word) while it would cost thousands of
        rows to score; a small index keeps them, since there every candidate counts. Of the
        rest, the MATCH_TERMS with the highest idf × times asked go in; FTS5 adds a phrase's
        score once per occurrence in the query, so repeating a term is how a question that
        says 生活保護 twice weighs it double (capped at QUERY_TF_CAP). If every term is that
        common, the rarest one stays; without `keep_rarest`, only if it has an idf at all (in
        under half the rows).
        """
        n = self.total_rows
        tf = tf or Counter()

        def common(d: int) -> bool:
            return 2 * d >= n or (d >= COMMON_SHARE * n and d > COMMON_ROWS)

        known = [(t, d) for t, d in df.items() if d > 0]
        chosen = sorted(
            (x for x in known if not common(x[1])),
            key=lambda x: -max(tf[x[0]], 1) * math.log(n / x[1]),
        )[:MATCH_TERMS]
        if not chosen and known:
            rarest = min(known, key=lambda x: x[1])
            chosen = [rarest] if keep_rarest or 2 * rarest[1] < n else []
        return [t for t, _ in chosen for _ in range(min(max(tf[t], 1), QUERY_TF_CAP))]

    def _terms(self, doc_ids) -> dict[int, set[str]]:
        rows = self.conn.execute(TERMS_SQL, {"ids": json.dumps(list(doc_ids))})
        return {r["id"]: set(r["terms"].split()) for r in rows}

    def _sections(self, doc_ids) -> dict[int, list[dict]]:
        """Per document, its sections in order: id, heading, term sets, kinds, what it says and its example questions.

        What a section says (`said_terms`, `said_rows`) stays as stored: only the chosen one is read (kb.judging).
        """
        found: dict[int, list] = {}
        for row in self.conn.execute(SECTIONS_SQL, {"ids": json.dumps(list(doc_ids))}):
            found.setdefault(row["doc_id"], []).append({
                "id": row["id"], "heading": row["heading"], "terms": set(row["terms"].split()),
                "heading_terms": set(row["heading_terms"].split()), "kinds": _kinds(row["kinds"]),
                "said_terms": row["said_terms"], "said_rows": row["said_rows"],
                "questions": json.loads(row["questions"]) if row["questions"] != "[]" else [],
            })
        return found

    def _doc_freq(self, terms: list[str]) -> dict[str, int]:
        rows = self.conn.execute(DOC_FREQ_SQL, {"terms": json.dumps(terms)})
        found = {r["term"]: r["doc"] for r in rows}
        return {t: found.get(t, 0) for t in terms}

    def _idf(self, df: dict[str, int]) -> dict[str, float]:
        """Inverse document frequency; a term the index has never seen gets the highest weight."""
        n = max(self.total_rows, 1)
        return {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def _rank(self, analysis: Analysis, k: int, kinds: set[str] = frozenset(), cues: frozenset[str] = frozenset(),
              kind_terms: frozenset[str] = frozenset(), explain: bool = False) -> list[dict]:
        """The best `k` candidates, re-ranked, each with its confidence and answering section.

        `cues` are the terms of a question about what is new (kb.passages.whats_new_cues): release
        notes then join the candidates, the newest lifted most. Everything that needs an article's
        full term list (coverage, section choice, the passage's judgement) is done for the `k`
        returned only: it is the costliest part and nobody looks further down. With `explain`, each
        candidate carries the signals behind its score, confidence and section (`cand["explain"]`).
        """
        terms = analysis.unique_terms()[:MAX_QUERY_TERMS]
        df = self._doc_freq(terms)
        # Reading bigrams rescue short questions, kana spellings and typos (a word the index
        # has never seen); for a long, well-spelled question they only add noise.
        unknown = sum(1 for d in df.values() if d == 0)
        fallback = len(terms) <= SHORT_QUESTION_TERMS or unknown >= UNKNOWN_SHARE_FOR_FALLBACK * len(terms)
        grams = list(dict.fromkeys(bigrams(analysis.reading)))[:MAX_QUERY_GRAMS] if fallback else []
        asked = Counter(analysis.terms)
        gram_df = self._doc_freq(grams) if grams else {}
        phrases = self._useful(df, asked)
        # Beside the question's own words, a reading bigram in half the rows or more (イイ of カイイン) has no
        # idf and only adds thousands of rows to score (and keeps kb.candidates from its stored lists).
        phrases += self._useful(gram_df, keep_rarest=not phrases)
        candidates = fts_candidates(self.conn, phrases, {**df, **gram_df}, self.total_rows, self._lists)
        lift = {}
        if cues:
            # "What is new" is answered by the newest release note, whatever words it shares.
            releases = [r["id"] for r in self.conn.execute(RELEASES_SQL, {"limit": RELEASES_LIFTED})]
            lift = {d: WHATS_NEW_LIFT / (1 + i) for i, d in enumerate(releases)}
            for d in releases:
                candidates.setdefault(d, 0.0)
        if not candidates:
            return []
        idf = self._idf(df)
        total_idf = sum(idf.values()) or 1.0
        top_bm25 = max(candidates.values()) or 1.0
        meaning = self._meaning(analysis, candidates)
        if len(candidates) > RERANK:
            # Only the most promising by the cheap signals go on to the costly ones.
            cheap = {d: RANK_MIX[0] * b / top_bm25 + MEANING_WEIGHT * meaning.get(d, 0.0) + lift.get(d, 0.0)
                     for d, b in candidates.items()}
            candidates = {d: candidates[d] for d in sorted(cheap, key=cheap.get, reverse=True)[:RERANK]}
        ranked = []
        rows = self.conn.execute(DOCUMENTS_SQL, {"ids": json.dumps(list(candidates))}).fetchall()
        all_texts = [json.loads(row["match_texts"]) for row in rows]
        for row, texts, closest in zip(rows, all_texts, similarities(analysis, all_texts)):
            head_terms = set(row["head_terms"].split())
            head_coverage = sum(idf[t] for t in terms if t in head_terms) / total_idf
            similarity = closest / 100.0
            relative = candidates[row["id"]] / top_bm25
            signals = {"bm25": relative, "head_coverage": head_coverage, "similarity": similarity,
                       "meaning": meaning.get(row["id"], 0.0), "whats_new": lift.get(row["id"], 0.0)}
            score = (RANK_MIX[0] * relative + RANK_MIX[1] * head_coverage + RANK_MIX[2] * similarity
                     + MEANING_WEIGHT * signals["meaning"] + signals["whats_new"])
            ranked.append({**dict(row), "score": score, "similarity": similarity, "texts": texts, "signals": signals})
        ranked.sort(key=lambda c: (-c["score"], c["slug"]))
        ranked = ranked[:k]
        doc_terms = self._terms([c["id"] for c in ranked])
        sections = self._sections([c["id"] for c in ranked])
        wanted = (kinds, cues, kind_terms)
        unknown = unmet_unknown(analysis, df, kind_terms, self._doc_freq)
        for cand in ranked:
            judge(self._space, analysis, terms, idf, df, wanted, cand, doc_terms[cand["id"]], sections[cand["id"]],
                  explain, unknown)
        return ranked


    def _meaning(self, analysis: Analysis, doc_ids) -> dict[int, float]:
        """Document id → cosine of the question's vector to the article's (kb.vectors), {} without vectors."""
        if self._space is None:
            return {}
        vectors, weights = self._space
        bag = vectors.bag(analysis.lemmas)
        if not len(bag.rows):
            return {}
        question = vectors.meaning(bag, weights)
        rows = self.conn.execute(DOC_VECTORS_SQL, {"ids": json.dumps(list(doc_ids))}).fetchall()
        if not rows:
            return {}
        head, body = (np.frombuffer(b"".join(r[part] for r in rows), dtype=np.float16)
                      .reshape(len(rows), word_vectors.WIDTH).astype(np.float32) for part in word_vectors.FIELDS)
        mix = word_vectors.FIELD_MIX[0] * (head @ question) + word_vectors.FIELD_MIX[1] * (body @ question)
        mix *= min(1.0, len(bag.rows) / MEANING_FULL_AT)
        return {r["id"]: float(m) for r, m in zip(rows, mix)}
