"""The import transaction every `helpdesk sync-*` command shares: all or nothing, idempotent.

A kind of import (`ImportKind`: members, institutions, applications, reports) brings its
file format and three small functions over its tables; this module runs them the same way
for all of them:

- `--full` replaces the whole set with the file; `--diff` applies the rows of a difference
  file (column `operation`: added / changed / deleted).
- One transaction on a WAL database, so a failure anywhere, or the process being killed,
  leaves the previous copy exactly as it was, and readers keep seeing it meanwhile.
  `BEGIN IMMEDIATE` takes the write lock before anything is read, so two imports never
  interleave: the second waits, then reports SyncBusy.
- Rejected rows are reported (line and Japanese reason) and the others are still imported;
  a row that refers to something the database does not hold (an unknown county, an
  institution not in the master) is rejected the same way (`ImportKind.check`).
- Rows whose content did not change are not written at all (a hash of the canonical row is
  stored), which makes a repeated import a no-op and keeps a 1,000-row difference fast.
- The summary of the last import of each kind is kept in `meta` (`ImportKind.meta_key`),
  which /readyz and /metrics read.
"""
from __future__ import annotations

import gc
import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

from storage.sqlite import begin, transaction

from .csv_format import CsvFormat, Mode, ParsedFile, Rejection, parse_csv
from .errors import CsvFormatError, SyncBusy
from .schema import connect_writer, set_meta


@dataclass(frozen=True)
class ImportKind:
    """One kind of import: its file, its label, and the three steps over its tables.

    - `existing(conn, mode, keys)` maps keys already stored to a tuple whose first item is
      the stored row hash (the rest is the kind's own, handed back to `write`);
    - `check(conn, rows)` returns {key: Japanese reason} for rows the database cannot take;
    - `write(conn, upserts, deletes, old)` writes inside the caller's transaction;
    - `load_rows(conn)` reads every stored row back as the file carries it (exports, the demo's files).
    """
    name: str
    label: str                 # 会員, 医療機関, 申請, かかりつけ医機能報告 (for messages)
    format: CsvFormat
    meta_key: str
    existing: Callable[[sqlite3.Connection, Mode, list[str]], dict[str, tuple]]
    write: Callable[[sqlite3.Connection, Sequence, Sequence[str], dict[str, tuple]], None]
    load_rows: Callable[[sqlite3.Connection], list]
    file_name: str             # the file's name in docs/examples and in a demo export
    check: Callable[[sqlite3.Connection, list], dict[str, str]] = lambda conn, rows: {}


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
        """The summary `helpdesk sync-* --json` prints."""
        return {"mode": self.mode, "added": self.added, "changed": self.changed,
                "deleted": self.deleted,
                "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected]}


def plan_changes(mode: Mode, parsed: ParsedFile, old: dict[str, tuple],
                 summary: SyncSummary) -> tuple[list, list[str]]:
    """Decide what to write: rows to upsert and keys to delete, counting by effect.

    Counts say what actually changed, not what the file claimed: an `added` row that is
    already there with the same content counts as unchanged, a `changed` row for an unknown
    key is added, a `deleted` row for an unknown key is unchanged. That is what makes the
    same difference file harmless twice.
    """
    upserts, deletes, in_file = [], [], set()
    for item in parsed.rows:
        in_file.add(item.key)
        row = item.row
        if row is None:  # deleted
            if item.key in old:
                deletes.append(item.key)
                summary.deleted += 1
            else:
                summary.unchanged += 1
            continue
        prev = old.get(item.key)
        if prev is None:
            summary.added += 1
            upserts.append(row)
        elif prev[0] != row.row_hash():
            summary.changed += 1
            upserts.append(row)
        else:
            summary.unchanged += 1
    if mode == "full":
        keep = in_file | parsed.rejected_keys
        gone = [k for k in old if k not in keep]
        deletes.extend(gone)
        summary.deleted += len(gone)
    return upserts, deletes


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector during a bulk import.

    An import allocates millions of short-lived objects but creates no cycles; left on,
    the collector re-scans the growing heap again and again, which costs seconds on a
    national-scale file.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _begin_or_busy(conn: sqlite3.Connection) -> None:
    """storage.sqlite.begin, with a database still locked after the import's busy timeout said as
    SyncBusy (another import or a backup is writing; the command says to try again later)."""
    try:
        begin(conn)
    except sqlite3.OperationalError as exc:
        raise SyncBusy(str(exc)) from exc


def run_import(db_path: Path | str, csv_path: Path | str, mode: Mode, kind: ImportKind, *,
               column_map: Mapping[str, str] | None = None,
               progress_file: TextIO | None = None,
               on_phase: Callable[[str], None] | None = None,
               busy_timeout_ms: int = 10_000) -> SyncSummary:
    """Import a file of `kind` into the records database, all or nothing.

    `column_map` renames the file's headers to ours (setting IMPORT_COLUMNS). `on_phase` is
    called with "parsed", "written" (inside the open transaction, just before COMMIT) and
    "committed"; tests use it to kill the process at the worst moment. Raises CsvFormatError
    when the file as a whole is unusable and SyncBusy when another import still holds the
    lock after `busy_timeout_ms`; rejected rows do not raise.
    """
    if mode not in ("full", "diff"):
        raise ValueError(mode)
    with gc_paused():
        return _import(db_path, csv_path, mode, kind, column_map, progress_file, on_phase, busy_timeout_ms)


def _no_valid_row(kind: ImportKind) -> CsvFormatError:
    return CsvFormatError(f"取り込める行が1行もありません。全件取り込みでは全{kind.label}が"
                          "削除されてしまうため中止しました。")


def _import(db_path, csv_path, mode: Mode, kind: ImportKind, column_map, progress_file, on_phase,
            busy_timeout_ms) -> SyncSummary:
    data = Path(csv_path).read_bytes()
    parsed = parse_csv(data, mode, kind.format, column_map=column_map, progress_file=progress_file)
    if mode == "full" and not parsed.rows:
        raise _no_valid_row(kind)
    if on_phase:
        on_phase("parsed")

    try:
        conn = connect_writer(db_path, busy_timeout_ms=busy_timeout_ms)
    except sqlite3.OperationalError as exc:
        raise SyncBusy(str(exc)) from exc
    try:
        conn.execute("PRAGMA cache_size = -65536")
        with transaction(conn, start=_begin_or_busy):
            parsed.reject(kind.check(conn, [item for item in parsed.rows if item.row is not None]))
            if mode == "full" and not parsed.rows:
                raise _no_valid_row(kind)
            summary = SyncSummary(mode=mode, rejected=list(parsed.rejected), encoding=parsed.encoding)
            old = kind.existing(conn, mode, [item.key for item in parsed.rows])
            upserts, deletes = plan_changes(mode, parsed, old, summary)
            kind.write(conn, upserts, deletes, old)
            set_meta(conn, kind.meta_key, json.dumps({
                "mode": mode, "file": Path(csv_path).name,
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "added": summary.added, "changed": summary.changed, "deleted": summary.deleted,
                "rejected": len(summary.rejected)}, ensure_ascii=False))
            if on_phase:
                on_phase("written")
        if on_phase:
            on_phase("committed")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()
    return summary


# ---------------------------------------------------------------- bulk loads

#: From how many new rows into an empty table the table's indexes are built after the rows, not row by row.
BULK_ROWS = 10_000

_INDEXES_OF = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"


@contextmanager
def indexes_built_after(conn: sqlite3.Connection, table: str, bulk: bool):
    """With `bulk`, drop `table`'s own indexes (CREATE INDEX, not its keys) for the block and create them
    again after it, inside the caller's transaction: sorting 180,000 keys once is cheaper than placing
    them one by one in each index. A failure or a kill rolls the drop back with everything else. Only
    for loading an empty table: on a full one, rebuilding whole indexes costs more than the rows."""
    indexes = conn.execute(_INDEXES_OF, {"table": table}).fetchall() if bulk else []
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')  # names from sqlite_master, never from a file
    yield
    for _name, sql in indexes:
        conn.execute(sql)


# ---------------------------------------------------------------- county associations, shared by the kinds

_COUNTIES = "SELECT code FROM associations WHERE level = 'county'"
_ADD_COUNTY = """
INSERT OR IGNORE INTO associations (code, level, name, prefecture_code)
VALUES (:code, 'county', :name, substr(:code, 1, 2))
"""


def unknown_counties(conn: sqlite3.Connection, rows: list, columns: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """{key: reason} for rows naming a county association that is neither stored nor named in the row.

    `columns` pairs each code attribute of a row with its name attribute. County associations
    come from the member CSV; another file may add one only by giving its name too.
    """
    counties = {c for (c,) in conn.execute(_COUNTIES)}
    out = {}
    for item in rows:
        for code_attr, name_attr in columns:
            county = getattr(item.row, code_attr)
            if county and county not in counties and not getattr(item.row, name_attr):
                out[item.key] = (f"郡市区等医師会コード「{county}」は登録されていません（会員CSVの取り込みで"
                                 "登録されます。この行で登録するには郡市区等医師会名も記入してください）。")
    return out


def add_counties(conn: sqlite3.Connection, rows, columns: tuple[tuple[str, str], ...]) -> None:
    """Register the county associations rows name that are not stored yet (never renames one:
    the member CSV is where their names come from)."""
    conn.executemany(_ADD_COUNTY, list({getattr(r, c): {"code": getattr(r, c), "name": getattr(r, n)}
                                        for r in rows for c, n in columns if getattr(r, c) and getattr(r, n)}.values()))


def existing_rows(conn: sqlite3.Connection, mode: Mode, keys: list[str], all_sql: str, some_sql: str
                  ) -> dict[str, tuple]:
    """{key: (row hash, id)} of the stored rows a file may touch: all of them for a full import, the
    file's keys for a diff. `all_sql` and `some_sql` (with `:keys`, a JSON list) select key, hash, id."""
    cur = conn.execute(all_sql) if mode == "full" else conn.execute(some_sql, {"keys": json.dumps(keys)})
    return {key: (row_hash, id_) for key, row_hash, id_ in cur}


def numbered(upserts: Sequence, old: dict[str, tuple], next_id: int, values: Callable[[object, int], dict]
             ) -> tuple[list[dict], list[dict]]:
    """The parameters (`values(row, id)`) of the new rows, numbered from `next_id` in file order, and of
    the changed ones, which keep their stored id (`old[key][1]`): what others point at stays put."""
    inserts, updates = [], []
    for row in upserts:
        prev = old.get(row.key)
        if prev is None:
            inserts.append(values(row, next_id))
            next_id += 1
        else:
            updates.append(values(row, prev[1]))
    return inserts, updates


@dataclass(frozen=True)
class RowTables:
    """The statements of a kind whose rows the import numbers itself (applications, reports): insert,
    update (statements run in turn for each changed row), delete by ids, and the highest id."""

    max_id: str
    insert: str
    update: tuple[str, ...]
    delete: str


def write_numbered_rows(conn: sqlite3.Connection, tables: RowTables, upserts: Sequence, deletes: Sequence[str],
                        old: dict[str, tuple], values: Callable[[object, int], dict]) -> None:
    """Write rows and delete the rows of `deletes`. A changed row keeps its id, a new one takes the next;
    `values(row, id)` gives a row's parameters."""
    gone = [old[k][1] for k in deletes if k in old]
    if gone:
        conn.execute(tables.delete, {"ids": json.dumps(gone)})
    inserts, updates = numbered(upserts, old, conn.execute(tables.max_id).fetchone()[0] + 1, values)
    for statement in tables.update:
        conn.executemany(statement, updates)
    conn.executemany(tables.insert, inserts)
