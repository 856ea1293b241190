"""Importing the member CSV of the MAMIS API: the only writer of member data.

The file format (encodings, columns, per-row validation) is `records/member_csv.py`;
this module is the transaction that applies a parsed file to the records database.

`--full` replaces the whole set with the file; `--diff` applies the rows of a
difference file (column `operation`: added / changed / deleted). Both run in one
transaction on a WAL database, so a failure anywhere, or the process being killed,
leaves the previous copy exactly as it was, and readers keep seeing it meanwhile.
`BEGIN IMMEDIATE` takes the write lock before anything is read, so two imports
never interleave: the second waits, then reports SyncBusy. Rejected rows are
reported (line and Japanese reason) and the others are still imported. Rows whose
content did not change are not written at all (a hash of the canonical row is
stored), which makes a repeated import a no-op and keeps a 1,000-row difference
well under a second.
"""
from __future__ import annotations

import gc
import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence, TextIO

from storage.sqlite import connect

from . import names
from .errors import CsvFormatError, SyncBusy
from .member_csv import MemberRow, Mode, ParsedFile, Rejection, parse_members_csv, write_members_csv
from .schema import connect_writer, set_meta
from .vocab import PUBLICATIONS


@dataclass
class SyncSummary:
    """What an import did, counted by effect (see `plan_changes`), plus the rejected rows."""
    mode: Mode
    added: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    encoding: str = ""

    def to_json(self) -> dict:
        """The summary `helpdesk sync-members --json` prints."""
        return {"mode": self.mode, "added": self.added, "changed": self.changed,
                "deleted": self.deleted,
                "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected]}


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


def plan_changes(mode: Mode, parsed: ParsedFile, old: dict[str, tuple],
                 summary: SyncSummary) -> tuple[list[MemberRow], list[str]]:
    """Decide what to write: rows to upsert and numbers to delete, counting by effect.

    Counts say what actually changed, not what the file claimed: an `added` row
    that is already there with the same content counts as unchanged, a `changed`
    row for an unknown member is added, a `deleted` row for an unknown member is
    unchanged. That is what makes the same difference file harmless twice.
    """
    upserts, deletes, in_file = [], [], set()
    for item in parsed.rows:
        in_file.add(item.member_number)
        row = item.row
        if row is None:  # deleted
            if item.member_number in old:
                deletes.append(item.member_number)
                summary.deleted += 1
            else:
                summary.unchanged += 1
            continue
        prev = old.get(row.member_number)
        if prev is None:
            summary.added += 1
            upserts.append(row)
        elif prev[0] != row.row_hash():
            summary.changed += 1
            upserts.append(row)
        else:
            summary.unchanged += 1
    if mode == "full":
        keep = in_file | parsed.rejected_numbers
        gone = [n for n in old if n not in keep]
        deletes.extend(gone)
        summary.deleted += len(gone)
    return upserts, deletes


def import_members(db_path: Path | str, csv_path: Path | str, mode: Mode, *,
                   progress_file: TextIO | None = None,
                   on_phase: Callable[[str], None] | None = None,
                   busy_timeout_ms: int = 10_000) -> SyncSummary:
    """Import a member CSV into the records database, all or nothing.

    `on_phase` is called with "parsed", "written" (inside the open transaction,
    just before COMMIT) and "committed"; tests use it to kill the process at the
    worst moment. Raises CsvFormatError when the file as a whole is unusable and
    SyncBusy when another import still holds the lock after `busy_timeout_ms`;
    rejected rows do not raise.
    """
    if mode not in ("full", "diff"):
        raise ValueError(mode)
    with gc_paused():
        return _import(db_path, csv_path, mode, progress_file, on_phase, busy_timeout_ms)


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector during a bulk import.

    An import allocates millions of short-lived objects but creates no cycles;
    left on, the collector re-scans the growing heap again and again, which costs
    seconds on a national-scale file.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import(db_path, csv_path, mode: Mode, progress_file, on_phase, busy_timeout_ms) -> SyncSummary:
    data = Path(csv_path).read_bytes()
    parsed = parse_members_csv(data, mode, progress_file=progress_file)
    summary = SyncSummary(mode=mode, rejected=list(parsed.rejected), encoding=parsed.encoding)
    if mode == "full" and not parsed.rows:
        raise CsvFormatError("取り込める行が1行もありません。全件取り込みでは全会員が削除されてしまうため中止しました。")
    if on_phase:
        on_phase("parsed")

    try:
        conn = connect_writer(db_path, busy_timeout_ms=busy_timeout_ms)
    except sqlite3.OperationalError as exc:
        raise SyncBusy(str(exc)) from exc
    try:
        conn.execute("PRAGMA cache_size = -65536")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise SyncBusy(str(exc)) from exc
        try:
            old = _existing(conn, mode, [item.member_number for item in parsed.rows])
            upserts, deletes = plan_changes(mode, parsed, old, summary)
            write_members(conn, upserts, deletes, old)
            set_meta(conn, "last_sync", json.dumps({
                "mode": mode, "file": Path(csv_path).name,
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "added": summary.added, "changed": summary.changed, "deleted": summary.deleted,
                "rejected": len(summary.rejected)}, ensure_ascii=False))
            if on_phase:
                on_phase("written")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if on_phase:
            on_phase("committed")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()
    return summary


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
