"""The institution file (医療機関マスタ): its columns, one valid row, and writing the table.

One row per institution: the vendor's monthly master (about 180,000 rows nationwide), plus
any clinic typed in by hand on an admission form that is not in the master yet (no code,
登録元 手入力), so the file is the whole list the help desk knows. A coded row is keyed by its
医療機関コード; a hand-entered one by its county and folded name. Reports refer to
institutions, so removing one removes its reports too.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Iterable, Sequence

from . import csv_format, names
from .csv_format import (Column, CsvFormat, Mode, Reject, choice, clean, code, day, intern, month,
                         prefecture_code, text)
from .importer import BULK_ROWS, ImportKind, add_counties, indexes_built_after, numbered, unknown_counties

COLUMNS: tuple[Column, ...] = (
    Column("institution_code", "医療機関コード", False,
           "10桁の数字。マスタ未掲載の手入力の医療機関は空欄"),
    Column("name", "医療機関名", True, "例: 千代田やまだ内科クリニック"),
    Column("kana", "医療機関名カナ", True, "カタカナ（半角カナ・ひらがなも可）"),
    Column("postal_code", "郵便番号", False, "123-4567 または 1234567"),
    Column("address", "所在地", True, "都道府県から"),
    Column("prefecture_code", "都道府県コード", True, "JIS都道府県コード2桁（01〜47）"),
    Column("county_code", "郡市区等医師会コード", True,
           "所在地を受け持つ郡市区等医師会の5桁のコード"),
    Column("county_name", "郡市区等医師会名", False,
           "会員CSVでまだ登録されていない郡市区等医師会コードのときに必要（その名前で登録します）"),
    Column("kind", "種別", False, "病院・診療所"),
    Column("opened_on", "開設日", False, "YYYY-MM-DD"),
    Column("closed_on", "廃止日", False, "YYYY-MM-DD"),
    Column("delivered_in", "配信月", False, "この行が納品されたマスタの年月（YYYY-MM）"),
    Column("registered_on", "マスタ掲載日", False, "医療機関マスタに載った日（YYYY-MM-DD）"),
    Column("source", "登録元", False, "ベンダー・手入力（空欄は、コードがあればベンダー、なければ手入力）"),
    Column("master_status", "掲載状況", False,
           "掲載済み・厚生局登録待ち・未照合（空欄は、コードがあれば掲載済み、なければ厚生局登録待ち）"),
    Column("filed_on", "厚生局届出日", False, "手入力の医療機関が厚生局へ届け出た日（登録待ちでは必須）"),
)
KIND_IN = {"病院": "hospital", "診療所": "clinic", "hospital": "hospital", "clinic": "clinic"}
SOURCE_IN = {"ベンダー": "vendor", "手入力": "manual", "vendor": "vendor", "manual": "manual"}
STATUS_IN = {"掲載済み": "in_master", "厚生局登録待ち": "waiting_bureau", "登録待ち": "waiting_bureau",
             "未照合": "unmatched", "in_master": "in_master", "waiting_bureau": "waiting_bureau",
             "unmatched": "unmatched"}
KIND_OUT = {"hospital": "病院", "clinic": "診療所"}
SOURCE_OUT = {"vendor": "ベンダー", "manual": "手入力"}
STATUS_OUT = {"in_master": "掲載済み", "waiting_bureau": "厚生局登録待ち", "unmatched": "未照合"}

_POSTAL = re.compile(r"^(\d{3})-?(\d{4})$")


def manual_key(county_code: str, name: str) -> str:
    """The key of an institution without a code: its county and its folded name."""
    return f"手入力:{county_code}:{names.fold(name)}"


@dataclass(frozen=True, slots=True)
class InstitutionRow:
    """One institution as the file carries it, in canonical form (codes in English)."""
    institution_code: str | None
    name: str
    kana: str
    postal_code: str | None
    address: str
    prefecture_code: str
    county_code: str
    county_name: str | None = None  # registers an unknown county; not part of the row itself
    kind: str | None = None
    opened_on: str | None = None
    closed_on: str | None = None
    delivered_in: str | None = None
    registered_on: str | None = None
    source: str = "vendor"
    master_status: str = "in_master"
    filed_on: str | None = None

    @property
    def key(self) -> str:
        return self.institution_code or manual_key(self.county_code, self.name)

    def row_hash(self) -> str:
        """Digest of everything the row carries; equal hash = nothing to write."""
        parts = [v or "" for v in (self.institution_code, self.name, self.kana, self.postal_code,
                                   self.address, self.prefecture_code, self.county_code, self.kind,
                                   self.opened_on, self.closed_on, self.delivered_in, self.registered_on,
                                   self.source, self.master_status, self.filed_on)]
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()

    def to_csv(self) -> list[str]:
        """The row in COLUMNS order, with Japanese words."""
        return [self.institution_code or "", self.name, self.kana, self.postal_code or "", self.address,
                self.prefecture_code, self.county_code, self.county_name or "", KIND_OUT.get(self.kind or "", ""),
                self.opened_on or "", self.closed_on or "", self.delivered_in or "", self.registered_on or "",
                SOURCE_OUT[self.source], STATUS_OUT[self.master_status], self.filed_on or ""]


def _parse_row(rec: dict[str, str]) -> InstitutionRow:
    """Validate one data row, or raise Reject with a Japanese reason."""
    pref = prefecture_code(rec.get("prefecture_code", ""), "都道府県コード")
    institution_code = clean(rec.get("institution_code", "")) or None
    if institution_code is not None:
        institution_code = code(institution_code, 10, "医療機関コード")
        if institution_code[:2] != pref:
            raise Reject("医療機関コードの先頭2桁が都道府県コードと一致しません。")
    county = code(rec.get("county_code", ""), 5, "郡市区等医師会コード")
    if county[:2] != pref:
        raise Reject("郡市区等医師会コードの先頭2桁が都道府県コードと一致しません。")
    name = csv_format.name(rec.get("name", ""), "医療機関名", 100)
    kana = csv_format.kana(rec.get("kana", ""), "医療機関名カナ")
    address = text(rec.get("address", ""))
    if not address:
        raise Reject("所在地が空欄です。")
    postal = clean(rec.get("postal_code", "")) or None
    if postal is not None:
        m = _POSTAL.match(postal)
        if not m:
            raise Reject(f"郵便番号「{postal}」は7桁の数字ではありません（123-4567）。")
        postal = f"{m.group(1)}-{m.group(2)}"
    source = choice(rec.get("source", ""), SOURCE_IN, "登録元", required=False) or (
        "vendor" if institution_code else "manual")
    status = choice(rec.get("master_status", ""), STATUS_IN, "掲載状況", required=False) or (
        "in_master" if institution_code else "waiting_bureau")
    if status == "in_master" and institution_code is None:
        raise Reject("掲載済みの医療機関には医療機関コードが必要です。")
    if source == "vendor" and institution_code is None:
        raise Reject("ベンダーのマスタの行には医療機関コードが必要です。")
    filed = day(rec.get("filed_on", ""), "厚生局届出日")
    if status == "waiting_bureau" and filed is None:
        raise Reject("厚生局登録待ちの医療機関には厚生局届出日が必要です（掲載時期の見込みに使います）。")
    return InstitutionRow(
        institution_code=institution_code, name=name, kana=kana, postal_code=postal, address=address,
        prefecture_code=intern(pref), county_code=intern(county),
        county_name=intern(names.display_name(rec.get("county_name", "")) or None),
        kind=choice(rec.get("kind", ""), KIND_IN, "種別", required=False),
        opened_on=intern(day(rec.get("opened_on", ""), "開設日")),
        closed_on=intern(day(rec.get("closed_on", ""), "廃止日")),
        delivered_in=intern(month(rec.get("delivered_in", ""), "配信月")),
        registered_on=intern(day(rec.get("registered_on", ""), "マスタ掲載日")),
        source=source, master_status=status, filed_on=filed)


def _parse_key(rec: dict[str, str]) -> str:
    """A deletion row names a coded institution by its code, a hand-entered one by county and name."""
    if clean(rec.get("institution_code", "")):
        return code(rec.get("institution_code", ""), 10, "医療機関コード")
    name = names.display_name(rec.get("name", ""))
    if not name:
        raise Reject("医療機関コードも医療機関名も空欄です。")
    return manual_key(code(rec.get("county_code", ""), 5, "郡市区等医師会コード"), name)


INSTITUTIONS = CsvFormat("institutions", COLUMNS, _parse_row, _parse_key, "医療機関")


# ---------------------------------------------------------------- the table

_KEY_SQL = "coalesce(institution_code, '手入力:' || county_code || ':' || name_key)"
_EXISTING_ALL = f"SELECT {_KEY_SQL}, row_hash, id FROM institutions"
_EXISTING_SOME = f"""
SELECT {_KEY_SQL}, row_hash, id FROM institutions
WHERE institution_code IN (SELECT value FROM json_each(:keys))
   OR (institution_code IS NULL AND {_KEY_SQL} IN (SELECT value FROM json_each(:keys)))
"""
_MAX_ID = "SELECT coalesce(max(id), 0) FROM institutions"

_INSERT = """
INSERT INTO institutions (id, institution_code, name, kana, name_key, kana_key, postal_code, address,
                          prefecture_code, county_code, source, master_status, filed_on, registered_on,
                          kind, opened_on, closed_on, delivered_in, row_hash)
VALUES (:id, :institution_code, :name, :kana, :name_key, :kana_key, :postal_code, :address,
        :prefecture_code, :county_code, :source, :master_status, :filed_on, :registered_on,
        :kind, :opened_on, :closed_on, :delivered_in, :row_hash)
"""
# A changed institution: its plain columns, then its indexed ones only where they differ (SQLite rewrites
# an index entry for every column a SET names, same value or not; most changes are addresses and dates).
_UPDATE = ("""
UPDATE institutions SET name = :name, kana = :kana, kana_key = :kana_key, postal_code = :postal_code,
    address = :address, prefecture_code = :prefecture_code, source = :source, master_status = :master_status,
    filed_on = :filed_on, registered_on = :registered_on, kind = :kind, opened_on = :opened_on,
    closed_on = :closed_on, row_hash = :row_hash
WHERE id = :id
""", """
UPDATE institutions SET institution_code = :institution_code, county_code = :county_code, name_key = :name_key,
    delivered_in = :delivered_in
WHERE id = :id AND (institution_code IS NOT :institution_code OR county_code IS NOT :county_code
                    OR name_key IS NOT :name_key OR delivered_in IS NOT :delivered_in)
""")
# The grams table is keyed by gram first (that is how searches read it), so deleting an institution's
# grams goes through its stored name, kana and prefecture, not a scan for its id.
_NAMES_OF = """
SELECT id, name, kana, prefecture_code FROM institutions WHERE id IN (SELECT value FROM json_each(:ids))
"""
_DELETE_GRAM = """
DELETE FROM institution_grams
WHERE gram = :gram AND prefecture_code = :prefecture_code AND institution_id = :institution_id
"""
_INSERT_GRAM = """
INSERT OR IGNORE INTO institution_grams (gram, prefecture_code, institution_id)
VALUES (:gram, :prefecture_code, :institution_id)
"""
_DELETE_REPORTS = "DELETE FROM fd_reports WHERE institution_id IN (SELECT value FROM json_each(:ids))"
_DELETE = "DELETE FROM institutions WHERE id IN (SELECT value FROM json_each(:ids))"


def _existing(conn: sqlite3.Connection, mode: Mode, keys: list[str]) -> dict[str, tuple]:
    cur = conn.execute(_EXISTING_ALL) if mode == "full" else conn.execute(_EXISTING_SOME, {"keys": json.dumps(keys)})
    return {key: (row_hash, id_) for key, row_hash, id_ in cur}


_COUNTY_COLUMNS = (("county_code", "county_name"),)


def _check(conn: sqlite3.Connection, rows: list) -> dict[str, str]:
    return unknown_counties(conn, rows, _COUNTY_COLUMNS)


def params(row: InstitutionRow, id_: int) -> dict:
    return {"id": id_, "institution_code": row.institution_code, "name": row.name, "kana": row.kana,
            "name_key": names.fold(row.name), "kana_key": names.fold(row.kana), "postal_code": row.postal_code,
            "address": row.address, "prefecture_code": row.prefecture_code, "county_code": row.county_code,
            "source": row.source, "master_status": row.master_status, "filed_on": row.filed_on,
            "registered_on": row.registered_on, "kind": row.kind, "opened_on": row.opened_on,
            "closed_on": row.closed_on, "delivered_in": row.delivered_in, "row_hash": row.row_hash()}


def _stored_grams(conn: sqlite3.Connection, ids: list[int]) -> set[tuple[str, str, int]]:
    """The (gram, prefecture, id) rows the grams table holds for these institutions."""
    return {(g, pref, id_) for id_, name, kana, pref in conn.execute(_NAMES_OF, {"ids": json.dumps(ids)}).fetchall()
            for g in names.institution_grams(name, kana)}


def _grams(rows: list[dict]) -> list[tuple[str, str, int]]:
    """The (gram, prefecture, id) rows of these institutions (each institution's grams are distinct)."""
    return [(g, p["prefecture_code"], p["id"]) for p in rows
            for g in names.institution_key_grams(p["name_key"], p["kana_key"])]


def _write_grams(conn: sqlite3.Connection, statement: str, grams: Iterable[tuple[str, str, int]]) -> None:
    """Run `statement` for each gram row, in key order: neighbouring rows share b-tree pages, so a sorted
    batch writes each page once."""
    conn.executemany(statement, ({"gram": g, "prefecture_code": pref, "institution_id": id_}
                                 for g, pref, id_ in sorted(grams)))


def write_institutions(conn: sqlite3.Connection, upserts: Sequence[InstitutionRow], deletes: Sequence[str],
                       old: dict[str, tuple]) -> None:
    """Write institutions and their search grams; delete others with their reports.

    A changed institution keeps its id (reports point at it); a new one gets the next. The grams of
    a changed one are written only where its name, kana or prefecture changed: a monthly difference
    mostly changes addresses and statuses, and each gram row lives on its own page of a 1.2-million-row
    b-tree. The demo generator writes through here too, so both produce identical rows.
    """
    add_counties(conn, upserts, _COUNTY_COLUMNS)
    gone = [old[k][1] for k in deletes if k in old]
    if gone:
        _write_grams(conn, _DELETE_GRAM, _stored_grams(conn, gone))
        ids = {"ids": json.dumps(gone)}
        for statement in (_DELETE_REPORTS, _DELETE):
            conn.execute(statement, ids)
    next_id = conn.execute(_MAX_ID).fetchone()[0] + 1
    empty = next_id == 1  # the first load, or a full file that replaced every institution
    inserts, updates = numbered(upserts, old, next_id, params)
    fresh = _grams(inserts)
    if updates:
        before, after = _stored_grams(conn, [p["id"] for p in updates]), set(_grams(updates))
        _write_grams(conn, _DELETE_GRAM, before - after)
        fresh += after - before
        for statement in _UPDATE:
            conn.executemany(statement, updates)
    with indexes_built_after(conn, "institutions", bulk=empty and len(inserts) >= BULK_ROWS):
        conn.executemany(_INSERT, inserts)
    _write_grams(conn, _INSERT_GRAM, fresh)


INSTITUTION_IMPORT = ImportKind("institutions", "医療機関", INSTITUTIONS, "last_sync_institutions",
                                _existing, write_institutions, lambda conn: load_institution_rows(conn),
                                "institutions.csv", _check)


# ---------------------------------------------------------------- reading back (exports, round trips)

_ALL = """
SELECT i.institution_code, i.name, i.kana, i.postal_code, i.address, i.prefecture_code, i.county_code, c.name,
       i.kind, i.opened_on, i.closed_on, i.delivered_in, i.registered_on, i.source, i.master_status, i.filed_on
FROM institutions AS i JOIN associations AS c ON c.code = i.county_code ORDER BY i.id
"""


def load_institution_rows(conn: sqlite3.Connection) -> list[InstitutionRow]:
    """Every institution of a records database, in id order (for exports and round trips)."""
    return [InstitutionRow(*row) for row in conn.execute(_ALL)]
