"""Importing the member CSV of the MAMIS API: the only writer of member data.

The file format is `records/member_csv.py`; the transaction every import shares (full or
difference, all or nothing, idempotent, rejected rows reported) is `records/importer.py`.
This module is what is particular to members: writing their rows, delivery settings and
search grams (`write_members`, also used by the demo generator) and reading them back
for exports.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TextIO

from storage.sqlite import connect

from . import names
from .importer import ImportKind, SyncSummary, run_import
from .member_csv import MEMBERS, MemberRow, Mode, write_members_csv
from .vocab import PUBLICATIONS


# ---------------------------------------------------------------- writing the database

_UPSERT_COUNTY = """
INSERT INTO associations (code, level, name, prefecture_code)
VALUES (:code, 'county', :name, :prefecture_code)
ON CONFLICT (code) DO UPDATE SET name = excluded.name
WHERE associations.name IS NOT excluded.name AND associations.level = 'county'
"""

_EXISTING_ALL = "SELECT member_number, row_hash, name, kana, county_code FROM members"
_EXISTING_SOME = """
SELECT member_number, row_hash, name, kana, county_code FROM members
WHERE member_number IN (SELECT value FROM json_each(:numbers))
"""

_UPSERT_MEMBER = """
INSERT INTO members (member_number, name, kana, name_key, kana_key, county_code, status,
                     workplace_code, workplace_name, joined_on, withdrawn_on, updated_on, row_hash)
VALUES (:member_number, :name, :kana, :name_key, :kana_key, :county_code, :status,
        :workplace_code, :workplace_name, :joined_on, :withdrawn_on, :updated_on, :row_hash)
ON CONFLICT (member_number) DO UPDATE SET
    name = excluded.name, kana = excluded.kana, name_key = excluded.name_key,
    kana_key = excluded.kana_key, county_code = excluded.county_code, status = excluded.status,
    workplace_code = excluded.workplace_code, workplace_name = excluded.workplace_name,
    joined_on = excluded.joined_on, withdrawn_on = excluded.withdrawn_on,
    updated_on = excluded.updated_on, row_hash = excluded.row_hash
"""
_DELETE_MEMBER = "DELETE FROM members WHERE member_number = :member_number"
_DELETE_DELIVERY = "DELETE FROM delivery_settings WHERE member_number = :member_number"
_INSERT_DELIVERY = """
INSERT INTO delivery_settings (member_number, publication, send, destination)
VALUES (:member_number, :publication, :send, :destination)
"""
# Search grams are derived in SQL from the stored keys (name_key, kana_key): every
# character bigram of each key, for the members listed in :numbers. Deriving them
# from what is stored means removal always matches what was added, and SQLite
# builds 1.5 million grams of a national file far faster than Python could bind them.
_GRAM_POSITIONS = "CREATE TEMP TABLE IF NOT EXISTS gram_positions (i INTEGER PRIMARY KEY)"
_FILL_GRAM_POSITIONS = """
INSERT OR IGNORE INTO temp.gram_positions (i)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n
"""
_GRAMS_OF = """
SELECT substr(k.key, p.i, 2) AS gram, k.county_code, k.member_number
FROM (SELECT name_key AS key, county_code, member_number FROM members
      WHERE member_number IN (SELECT value FROM json_each(:numbers))
      UNION ALL
      SELECT kana_key, county_code, member_number FROM members
      WHERE member_number IN (SELECT value FROM json_each(:numbers))) AS k
JOIN temp.gram_positions AS p ON p.i < length(k.key)
"""
_ADD_GRAMS = f"""
INSERT OR IGNORE INTO member_grams (gram, county_code, member_number)
SELECT * FROM ({_GRAMS_OF}) ORDER BY 1, 2, 3
"""
_REMOVE_GRAMS = f"""
DELETE FROM member_grams WHERE (gram, county_code, member_number) IN ({_GRAMS_OF})
"""


def _member_params(row: MemberRow) -> dict:
    return {
        "member_number": row.member_number, "name": row.name, "kana": row.kana,
        "name_key": names.fold(row.name), "kana_key": names.fold(row.kana),
        "county_code": row.county_code, "status": row.status,
        "workplace_code": row.workplace_code, "workplace_name": row.workplace_name,
        "joined_on": row.joined_on, "withdrawn_on": row.withdrawn_on,
        "updated_on": row.updated_on, "row_hash": row.row_hash(),
    }


def _upsert_counties(conn: sqlite3.Connection, rows: Iterable[MemberRow]) -> None:
    counties = {}
    for row in rows:
        counties[row.county_code] = {"code": row.county_code, "name": row.county_name,
                                     "prefecture_code": row.prefecture_code}
    conn.executemany(_UPSERT_COUNTY, list(counties.values()))


def write_members(conn: sqlite3.Connection, upserts: Sequence[MemberRow],
                  deletes: Sequence[str], old: dict[str, tuple]) -> None:
    """Write member rows, their delivery settings and search grams; delete others.

    `old` maps member numbers already present to (row_hash, name, kana, county),
    which tells whose grams must be rebuilt. Runs inside the caller's transaction.
    The demo generator uses this too, so both produce identical rows.
    """
    upserts = sorted(upserts, key=lambda r: r.member_number)  # b-tree appends, not scatter
    _upsert_counties(conn, upserts)
    replaced = [r.member_number for r in upserts if r.member_number in old]
    stale = [n for n in deletes if n in old] + replaced
    # Grams only change with the name, kana or county; most changes (status,
    # delivery, workplace) leave them alone, and every gram touched is a random
    # page of a large b-tree.
    regram = [r for r in upserts if old.get(r.member_number, (None,) * 4)[1:] != (r.name, r.kana, r.county_code)]
    conn.execute(_GRAM_POSITIONS)
    conn.execute(_FILL_GRAM_POSITIONS)
    regram_old = [n for n in deletes if n in old] + [r.member_number for r in regram if r.member_number in old]
    if regram_old:
        conn.execute(_REMOVE_GRAMS, {"numbers": json.dumps(regram_old)})
    if stale:
        conn.executemany(_DELETE_DELIVERY, [{"member_number": n} for n in stale])
    conn.executemany(_DELETE_MEMBER, [{"member_number": n} for n in deletes if n in old])
    conn.executemany(_UPSERT_MEMBER, (_member_params(r) for r in upserts))
    conn.executemany(_INSERT_DELIVERY, (
        {"member_number": r.member_number, "publication": pub, "send": send, "destination": dest}
        for r in upserts for pub, (send, dest) in zip(PUBLICATIONS, r.delivery) if send is not None
    ))
    if regram:
        conn.execute(_ADD_GRAMS, {"numbers": json.dumps([r.member_number for r in regram])})


def _existing(conn: sqlite3.Connection, mode: Mode, numbers: list[str]) -> dict[str, tuple]:
    if mode == "full":
        cur = conn.execute(_EXISTING_ALL)
    else:
        cur = conn.execute(_EXISTING_SOME, {"numbers": json.dumps(numbers)})
    return {n: (h, name, kana, county) for n, h, name, kana, county in cur}


MEMBER_IMPORT = ImportKind("members", "会員", MEMBERS, "last_sync", _existing, write_members,
                           lambda conn: load_member_rows(conn), "members.csv")


def import_members(db_path: Path | str, csv_path: Path | str, mode: Mode, *,
                   column_map: Mapping[str, str] | None = None,
                   progress_file: TextIO | None = None,
                   on_phase: Callable[[str], None] | None = None,
                   busy_timeout_ms: int = 10_000) -> SyncSummary:
    """Import a member CSV into the records database, all or nothing (see `run_import`)."""
    return run_import(db_path, csv_path, mode, MEMBER_IMPORT, column_map=column_map,
                      progress_file=progress_file, on_phase=on_phase, busy_timeout_ms=busy_timeout_ms)


# ---------------------------------------------------------------- reading back (exports, round trips)

_ALL_MEMBERS = """
SELECT m.member_number, m.name, m.kana, c.prefecture_code, m.county_code, c.name, m.status,
       m.workplace_code, m.workplace_name, m.joined_on, m.withdrawn_on, m.updated_on
FROM members AS m JOIN associations AS c ON c.code = m.county_code
ORDER BY m.member_number
"""
_ALL_DELIVERY = "SELECT member_number, publication, send, destination FROM delivery_settings"


def load_member_rows(conn: sqlite3.Connection) -> list[MemberRow]:
    """Every member of a records database as MemberRows (for exports and round trips)."""
    delivery: dict[str, dict[str, tuple]] = {}
    for number, pub, send, dest in conn.execute(_ALL_DELIVERY):
        delivery.setdefault(number, {})[pub] = (send, dest)
    rows = []
    for (number, name, kana, pref, county, county_name, status, wcode, wname,
         joined, withdrawn, updated) in conn.execute(_ALL_MEMBERS):
        d = delivery.get(number, {})
        rows.append(MemberRow(number, name, kana, pref, county, county_name, status, wcode, wname,
                              joined, withdrawn, updated,
                              tuple(d.get(p, (None, None)) for p in PUBLICATIONS)))
    return rows


def export_members_csv(db_path: Path | str, csv_path: Path | str, *, encoding: str = "utf-8") -> int:
    """Write all members of a records database as a full member CSV; returns the row count."""
    conn = connect(db_path, readonly=True)
    try:
        rows = load_member_rows(conn)
    finally:
        conn.close()
    write_members_csv(csv_path, rows, encoding=encoding)
    return len(rows)
