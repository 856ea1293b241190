"""Name searches: which members and institutions a fuzzy name search considers, and how it ranks them.

`records.lookup.Records.find_members` and `find_institutions` ask here for candidates (a few
hundred, picked by indexed SQL: names starting with the query, then shared bigrams of the folded
keys, records/names.py) and rank them with rapidfuzz; the access check and the access log stay
with the lookup.
"""
from __future__ import annotations

import json
import sqlite3

from rapidfuzz import fuzz, process

from . import names
from .access import SearchArea

# Fuzzy search: how many candidates the SQL prefilter may hand to rapidfuzz, and
# the lowest score shown (one wrong kanji in a 3-character name scores 67).
GRAM_CANDIDATES = 300
PREFIX_CANDIDATES = 200
MIN_SCORE = 60.0
# Institution name search outside the asker's prefecture (institution_candidates_sql): how many gram
# rows of the query's rarest grams it reads, and how many of those institutions it counts in full.
FAR_GRAM_BUDGET = 2000
FAR_CANDIDATES = 1000

_COUNTIES_OF_PREFECTURE = """
SELECT code FROM associations WHERE prefecture_code = :prefecture_code AND level = 'county'
"""
# Migration 0005 is applied by the next import (the help desk only reads); until then /readyz reports
# it pending and an institution name search offers the names that start with the query.
_GRAMS_BY_PREFECTURE = "SELECT 1 FROM pragma_table_info('institution_grams') WHERE name = 'prefecture_code'"


def member_prefix_sql(by_kana: bool) -> str:
    """Candidates whose name (or kana) key starts with the query, in the asker's counties.

    Catches exact names typed any which way (folding makes them equal) and
    family-name-only questions. The index begins with the county, so a county's
    staff never touch another county's rows.
    """
    key = "kana_key" if by_kana else "name_key"
    return f"""
    SELECT member_number, {key} FROM members
    WHERE county_code IN (SELECT value FROM json_each(:counties))
      AND {key} >= :prefix AND {key} < :prefix_end
    LIMIT {PREFIX_CANDIDATES}"""


# Candidates sharing the most bigrams with the query (wrong kanji, typos), in the
# asker's counties; only run when the prefix query found no exact match.
_MEMBER_GRAM_CANDIDATES = f"""
SELECT member_number, count(*) AS hits FROM member_grams
WHERE gram IN (SELECT value FROM json_each(:grams))
  AND county_code IN (SELECT value FROM json_each(:counties))
GROUP BY member_number
ORDER BY hits DESC
LIMIT {GRAM_CANDIDATES}
"""


def member_candidates(conn: sqlite3.Connection, area: SearchArea, folded: str, by_kana: bool) -> list[str]:
    """Member numbers a name search ranks: the asker's own number for a member, the names that start
    with the query in the asker's counties for staff, and when none of those is exactly the query,
    the ones sharing most bigrams with it."""
    if area.member_number is not None:
        return [area.member_number]
    if area.nowhere:
        return []
    counties = ([area.county_code] if area.county_code else
                [r[0] for r in conn.execute(_COUNTIES_OF_PREFECTURE,
                                            {"prefecture_code": area.prefecture_code})])
    params = {"counties": json.dumps(counties), "prefix": folded, "prefix_end": folded + "\U0010ffff",
              "grams": json.dumps(sorted(names.bigrams(folded)), ensure_ascii=False)}
    prefixed = conn.execute(member_prefix_sql(by_kana), params).fetchall()
    numbers = [n for n, _key in prefixed]
    if len(folded) > 1 and not any(key == folded for _n, key in prefixed):
        seen = set(numbers)
        numbers += [n for n, _hits in conn.execute(_MEMBER_GRAM_CANDIDATES, params) if n not in seen]
    return numbers


def institution_candidates_sql(with_grams: bool) -> str:
    """The candidate query of an institution name search: the 300 sharing most bigrams, own prefecture
    first on ties, plus the names that start with the query.

    Counting every institution that shares a bigram reads tens of thousands of rows at 180,000
    institutions (クリニック names share ヤマ, カン, イチ by the thousand). So only the asker's
    prefecture is counted in full (the index seek on gram and prefecture is about 1/47 of it); the
    rest of the country is read through the query's rarest grams, as many as fit FAR_GRAM_BUDGET
    rows, and the best FAR_CANDIDATES of those are counted over all the grams. Skipping j of the k
    grams can only miss institutions that share at most j of them, so the strongest tiers are the
    same as counting everything; the weakest tier is drawn from the rarer grams, where counting
    everything broke its ties arbitrarily anyway.
    """
    prefix = f"""
    SELECT id FROM institutions
    WHERE name_key >= :prefix AND name_key < :prefix_end
    LIMIT {PREFIX_CANDIDATES}"""
    if not with_grams:
        return prefix
    return f"""
    WITH query AS MATERIALIZED (
        SELECT value AS gram,
               (SELECT count(*) FROM (SELECT 1 FROM institution_grams WHERE gram = value
                                      LIMIT {FAR_GRAM_BUDGET + 1})) AS postings
        FROM json_each(:grams)),
    rarest AS (
        SELECT gram FROM (SELECT gram, postings, sum(postings) OVER (ORDER BY postings, gram) - postings AS before
                          FROM query)
        WHERE before = 0 OR before + postings <= {FAR_GRAM_BUDGET}),
    far AS MATERIALIZED (
        SELECT institution_id AS id, prefecture_code FROM (
            SELECT institution_id, prefecture_code FROM institution_grams
            WHERE gram IN (SELECT gram FROM rarest) AND prefecture_code <> :prefecture_code
            LIMIT {FAR_GRAM_BUDGET})
        GROUP BY institution_id
        ORDER BY count(*) DESC
        LIMIT {FAR_CANDIDATES}),
    shared AS (
        SELECT institution_id AS id, count(*) AS hits, 1 AS near FROM institution_grams
        WHERE gram IN (SELECT gram FROM query) AND prefecture_code = :prefecture_code
        GROUP BY institution_id
        UNION ALL
        SELECT g.institution_id, count(*), 0
        FROM far CROSS JOIN query AS q
        JOIN institution_grams AS g
          ON g.gram = q.gram AND g.prefecture_code = far.prefecture_code AND g.institution_id = far.id
        GROUP BY g.institution_id)
    SELECT * FROM ({prefix})
    UNION
    SELECT * FROM (SELECT id FROM shared ORDER BY hits DESC, near DESC LIMIT {GRAM_CANDIDATES})"""


def institution_candidates(conn: sqlite3.Connection, folded: str, prefecture: str) -> list[int]:
    """Ids of the institutions a name search ranks (institution_candidates_sql), the asker's
    `prefecture` ("" for none) counted in full."""
    core = names.institution_core(folded)
    grams = sorted(names.bigrams(core) if len(core) > 1 else {core})
    with_grams = bool(grams) and conn.execute(_GRAMS_BY_PREFECTURE).fetchone() is not None
    return [r[0] for r in conn.execute(institution_candidates_sql(with_grams), {
        "grams": json.dumps(grams, ensure_ascii=False), "prefix": folded,
        "prefix_end": folded + "\U0010ffff", "prefecture_code": prefecture})]


def rank_members(folded: str, by_kana: bool, rows, limit: int) -> list[tuple[str, float]]:
    """Score candidates against the query with rapidfuzz: full key and family part, best wins."""
    idx = 2 if by_kana else 1
    full = {r[0]: names.fold(r[idx]) for r in rows}
    family = {r[0]: names.family_part(r[idx]) for r in rows}
    best: dict[str, float] = {}
    for choices in (full, family):
        for _text, score, number in process.extract(folded, choices, scorer=fuzz.ratio,
                                                    score_cutoff=MIN_SCORE, limit=None):
            if score > best.get(number, 0.0):
                best[number] = score
    kana_of = {r[0]: r[2] for r in rows}
    ranked = sorted(best.items(), key=lambda item: (-item[1], kana_of[item[0]], item[0]))
    return [(n, round(s, 1)) for n, s in ranked[:limit]]


def rank_institutions(folded: str, keys: list[tuple], prefecture: str) -> list[tuple[str, float, int]]:
    """Score candidates (id, name, name_key, kana_key, prefecture_code) against the query with rapidfuzz,
    best first; on equal scores the asker's prefecture first, then by name."""
    by_kana = names.is_katakana(folded)
    choices = {i: kana_key if by_kana else name_key for i, _name, name_key, kana_key, _pref in keys}
    scored = process.extract(folded, choices, scorer=fuzz.WRatio, score_cutoff=MIN_SCORE, limit=None)
    place = {i: (pref != prefecture, name) for i, name, _nk, _kk, pref in keys}
    scored.sort(key=lambda s: (-s[1], *place[s[2]]))
    return scored
