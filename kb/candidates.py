"""The first stage of a search: the articles FTS5's BM25 ranks highest for the question's words.

FTS5 gives a word in half the rows or more an idf of 1e-6 (its floor), so kb.search leaves such
words out of MATCH, unless every word of the question is that common (「会員」 or 「画面」 typed
alone): then the rarest stays, and FTS5 scores every row that contains it (8,000 of 10,000) only
to order them by how often and how prominently they use it. That was the slowest part of the
slowest searches. The order depends on the index alone, so the build stores it
(`write_common_top`): for every word in half the rows or more and in more than `LISTED_FROM` rows,
its best `CANDIDATES` rows with their BM25. `fts_candidates` reads those lists instead of matching the
word, matches only the question's other phrases, and adds the stored scores.

BM25 is a sum over the query's phrases, each share depending on that phrase and the row alone, so
a stored score is exactly the word's share in any query (twice for a word asked twice). A row
missing from the list lacks only that word's share, at most the list's lowest score (idf 1e-6
× (k1 + 1): under 2.2e-6), which next to the share of any word with a real idf changes no order that
matters. So a list is used only for a question's one such word: two of them (会員 and the reading
bigram イイ) are matched as before, since there every score is of that size.
"""
from __future__ import annotations

import json
import sqlite3

CANDIDATES = 100
# bm25() column weights: title, questions, body, grams. Measured on both evaluation sets:
# title and example questions count double; the reading bigrams only help as a fallback
# (long questions drown in their noise), see kb.search.
FIELD_WEIGHTS = (2.0, 2.0, 1.0, 0.3)
# Words in at most this many rows are matched by FTS5 even when common: it scores them in a
# millisecond or two, and a small index (the shipped articles, localgovFAQ) needs no lists.
LISTED_FROM = 1000


def quote(term: str) -> str:
    """An FTS5 string literal: the term can never be read as syntax (AND, NEAR(, *, :)."""
    return '"' + term.replace('"', '""') + '"'


def match_expression(phrases: list[str]) -> str:
    """The MATCH string: every term and reading bigram quoted, OR-ed (repeats kept: they weigh)."""
    return " OR ".join(quote(p) for p in phrases)


CANDIDATES_SQL = """
SELECT rowid AS id, bm25(fts, :w_title, :w_questions, :w_body, :w_grams) AS rank
FROM fts WHERE fts MATCH :match ORDER BY rank LIMIT :limit
"""

LIST_SQL = "SELECT id, score FROM common_top WHERE term = :term"

LISTED_WORDS_SQL = """
SELECT term FROM term_df WHERE 2 * doc >= (SELECT count(*) FROM documents) AND doc > :listed_from
"""

WRITE_LIST_SQL = f"INSERT INTO common_top (term, id, score) SELECT :term, id, -rank FROM ({CANDIDATES_SQL})"

SETTINGS_SQL = "SELECT value FROM meta WHERE key = 'common_top'"

WRITE_SETTINGS_SQL = "INSERT OR REPLACE INTO meta (key, value) VALUES ('common_top', :value)"


def _settings() -> str:
    """What the stored lists depend on besides the index: a list made with other weights is not used."""
    return json.dumps([FIELD_WEIGHTS, CANDIDATES, LISTED_FROM])


def _params(match: str) -> dict:
    return {**dict(zip(("w_title", "w_questions", "w_body", "w_grams"), FIELD_WEIGHTS)),
            "match": match, "limit": CANDIDATES}


def write_common_top(conn: sqlite3.Connection) -> None:
    """Store, per common word (see the module's docstring), its best rows by BM25. Run after the
    FTS rows and `term_df` are final: every score depends on the whole index (the average row length)."""
    conn.execute("DELETE FROM common_top")
    words = [w for (w,) in conn.execute(LISTED_WORDS_SQL, {"listed_from": LISTED_FROM})]
    for word in words:
        conn.execute(WRITE_LIST_SQL, {**_params(quote(word)), "term": word})
    conn.execute(WRITE_SETTINGS_SQL, {"value": _settings()})


def uses_lists(conn: sqlite3.Connection) -> bool:
    """Whether the index's stored lists were made with this code's weights and limits."""
    row = conn.execute(SETTINGS_SQL).fetchone()
    return row is not None and row[0] == _settings()


def fts_candidates(conn: sqlite3.Connection, phrases: list[str], df: dict[str, int], rows: int,
                   lists: bool = True) -> dict[int, float]:
    """Document id → BM25 (higher is better) of the best `CANDIDATES` rows for the OR of `phrases`
    (a phrase given twice weighs twice). `df` holds each phrase's row count and `rows` the index's;
    with `lists` (`uses_lists`), a common word's stored list stands in for matching it.

    A list is used only when it is the question's one common word (the others, if any, have a real
    idf): only then can no row outside the list come close enough to matter (the module's docstring).
    """
    if not phrases:
        return {}
    common = {p for p in phrases if 2 * df.get(p, 0) >= rows}
    listed: list[tuple[int, float]] = []
    if lists and len(common) == 1:
        listed = conn.execute(LIST_SQL, {"term": next(iter(common))}).fetchall()
    rest = [p for p in phrases if not listed or p not in common]
    found: dict[int, float] = {}
    if rest:
        try:
            found = {doc: -rank for doc, rank in conn.execute(CANDIDATES_SQL, _params(match_expression(rest)))}
        except sqlite3.Error:
            return {}
    if not listed:
        return found
    times = len(phrases) - len(rest)  # a word asked twice weighs twice
    for doc, score in listed:
        found[doc] = found.get(doc, 0.0) + times * score
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0]))[:CANDIDATES])
