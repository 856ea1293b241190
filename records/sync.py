"""Importing the member CSV of the MAMIS API: the only writer of member data.

`--full` replaces the whole set with the file; `--diff` applies the rows of a
difference file (column `operation`: added / changed / deleted). Both run in one
transaction on a WAL database, so a failure anywhere, or the process being killed,
leaves the previous copy exactly as it was, and readers keep seeing it meanwhile.
Every data row is validated on its own: a bad row is reported with its line number
and a Japanese reason and the others are still imported. Rows whose content did
not change are not written at all (a hash of the canonical row is stored), which
makes a repeated import a no-op and keeps a 1,000-row difference well under a second.
"""
from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import io
import itertools
import json
import re
import sqlite3
import sys
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence, TextIO

from tqdm import tqdm

from storage.sqlite import connect

from . import names
from .errors import CsvFormatError, SyncBusy
from .schema import connect_writer, set_meta
from .vocab import DESTINATION_JA, PUBLICATION_JA, PUBLICATIONS, STATUS_JA

Mode = Literal["full", "diff"]

OPERATIONS = ("added", "changed", "deleted")

# Files with at least this many data rows show a progress bar (when on a TTY).
LARGE_FILE_ROWS = 5_000


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool
    description: str


# The member CSV, declared once: validation, export and docs/records.md follow it.
COLUMNS: tuple[Column, ...] = (
    Column("member_number", "会員番号", True, "7桁の数字（先頭の0も含む）"),
    Column("name", "氏名", True, "姓と名の間は空白（全角・半角どちらでも可）"),
    Column("kana", "氏名カナ", True, "カタカナ（半角カナ・ひらがなも可。全角カタカナに変換）"),
    Column("prefecture_code", "都道府県医師会コード", True, "JIS都道府県コード2桁（01〜47）"),
    Column("county_code", "郡市区等医師会コード", True, "5桁（都道府県医師会コード2桁＋3桁）"),
    Column("county_name", "郡市区等医師会名", True, "例: 千代田区医師会"),
    Column("status", "会員状態", True, "在籍・入会手続中・退会"),
    Column("workplace_code", "勤務先医療機関コード", False, "10桁の医療機関コード（手入力の医療機関は空欄）"),
    Column("workplace_name", "勤務先医療機関名", False, "医療機関名"),
    Column("joined_on", "入会日", False, "YYYY-MM-DD または YYYY/MM/DD"),
    Column("withdrawn_on", "退会日", False, "YYYY-MM-DD または YYYY/MM/DD"),
    Column("jma_news_send", "日医ニュース送付", False, "する・しない（空欄は未設定）"),
    Column("jma_news_dest", "日医ニュース送付先", False, "勤務先・自宅・その他（送付する場合は必須）"),
    Column("journal_regular_send", "日本医師会雑誌通常号送付", False, "する・しない（空欄は未設定）"),
    Column("journal_regular_dest", "日本医師会雑誌通常号送付先", False, "勤務先・自宅・その他"),
    Column("journal_special_send", "日本医師会雑誌特別号送付", False, "する・しない（空欄は未設定）"),
    Column("journal_special_dest", "日本医師会雑誌特別号送付先", False, "勤務先・自宅・その他"),
    Column("updated_on", "更新日", False, "MAMIS上の最終更新日"),
)
OPERATION_COLUMN = Column("operation", "operation", True,
                          "差分ファイルのみ: added・changed・deleted（追加・変更・削除も可）")
_HEADER_KEYS = {c.header: c.key for c in COLUMNS} | {"operation": "operation", "処理区分": "operation"}

_STATUS_IN = {"在籍": "active", "会員": "active", "active": "active",
              "入会手続中": "pending", "手続中": "pending", "pending": "pending",
              "退会": "withdrawn", "withdrawn": "withdrawn"}
_SEND_IN = {"する": 1, "送付する": 1, "1": 1, "有": 1, "あり": 1, "yes": 1,
            "しない": 0, "送付しない": 0, "0": 0, "無": 0, "なし": 0, "no": 0}
_DEST_IN = {"勤務先": "workplace", "workplace": "workplace", "自宅": "home", "home": "home",
            "その他": "other", "other": "other"}
_OPERATION_IN = {"added": "added", "追加": "added", "changed": "changed", "変更": "changed",
                 "deleted": "deleted", "削除": "deleted"}

_DIGITS = {n: re.compile(rf"^[0-9]{{{n}}}$") for n in (2, 5, 7, 10)}
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")
_KANA_OK = re.compile(r"^[\u30a0-\u30ffー\u3000]+$")


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member as the CSV carries it, in canonical form (codes in English)."""
    member_number: str
    name: str
    kana: str
    prefecture_code: str
    county_code: str
    county_name: str
    status: str
    workplace_code: str | None = None
    workplace_name: str | None = None
    joined_on: str | None = None
    withdrawn_on: str | None = None
    updated_on: str | None = None
    # (send 1/0 or None for 未設定, destination or None) per publication, in PUBLICATIONS order
    delivery: tuple[tuple[int | None, str | None], ...] = ((None, None),) * 3

    def row_hash(self) -> str:
        """Digest of everything that belongs to the member; equal hash = nothing to write."""
        parts = [self.member_number, self.name, self.kana, self.county_code, self.status,
                 self.workplace_code or "", self.workplace_name or "", self.joined_on or "",
                 self.withdrawn_on or "", self.updated_on or ""]
        for send, dest in self.delivery:
            parts.append("" if send is None else str(send))
            parts.append(dest or "")
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()

    def to_csv(self) -> list[str]:
        """The row as the MAMIS CSV writes it (Japanese labels), in COLUMNS order."""
        out = [self.member_number, self.name, self.kana, self.prefecture_code, self.county_code,
               self.county_name, STATUS_JA[self.status], self.workplace_code or "",
               self.workplace_name or "", self.joined_on or "", self.withdrawn_on or ""]
        for send, dest in self.delivery:
            out.append("" if send is None else ("する" if send else "しない"))
            out.append(DESTINATION_JA[dest] if dest else "")
        out.append(self.updated_on or "")
        return out


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass
class SyncSummary:
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


class _Reject(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- reading the file

def decode_csv(data: bytes) -> tuple[str, str]:
    """Decode a member CSV: UTF-8 with or without BOM, else Shift_JIS (as CP932).

    Japanese offices export both. Strict UTF-8 almost never accepts Shift_JIS bytes
    of Japanese text, so trying it first is a reliable detector; CP932 rather than
    plain Shift_JIS because Windows exports use its extensions (髙, ①, …).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's 「Unicode テキスト」 export: say so instead of failing on the header.
        raise CsvFormatError("UTF-16 のファイルには対応していません。CSV（UTF-8 または Shift_JIS）で保存し直してください。")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise CsvFormatError(f"UTF-8（BOM付き）として読めません（{exc.start}バイト目付近）。") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "cp932"
    except UnicodeDecodeError as exc:
        raise CsvFormatError("文字コードを判定できません。UTF-8 または Shift_JIS で保存してください"
                             f"（{exc.start}バイト目付近）。") from exc


def _clean(value: str) -> str:
    if value.isascii():  # codes, numbers, dates: nothing for NFKC to do, and it is the bulk
        return value.strip()
    return unicodedata.normalize("NFKC", value).strip()


def _code(value: str, digits: int, label: str) -> str:
    code = _clean(value)
    if not _DIGITS[digits].match(code):
        raise _Reject(f"{label}が{digits}桁の数字ではありません（表計算ソフトで先頭の0が消えていないかご確認ください）。")
    return code


def _date(value: str, label: str) -> str | None:
    text = _clean(value)
    if not text:
        return None
    m = _DATE.match(text)
    try:
        if not m:
            raise ValueError
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        return date(int(y), int(mo), int(d)).isoformat()
    except ValueError:
        raise _Reject(f"{label}「{text}」は日付として読めません（YYYY-MM-DD で記入してください）。") from None


def _member_number(value: str) -> str:
    return _code(value, 7, "会員番号")


def _parse_row(rec: dict[str, str]) -> MemberRow:
    """Validate one data row into a MemberRow, or raise _Reject with a Japanese reason."""
    number = _member_number(rec.get("member_number", ""))
    name = names.display_name(rec.get("name", ""))
    if not name:
        raise _Reject("氏名が空欄です。")
    if len(name) > 60:
        raise _Reject("氏名が長すぎます（60文字まで）。")
    kana = names.display_kana(rec.get("kana", ""))
    if not kana:
        raise _Reject("氏名カナが空欄です。")
    if not _KANA_OK.match(kana):
        raise _Reject("氏名カナにカタカナ以外の文字が含まれています。")
    pref = _code(rec.get("prefecture_code", ""), 2, "都道府県医師会コード")
    if not 1 <= int(pref) <= 47:
        raise _Reject("都道府県医師会コードは01〜47のいずれかです。")
    county = _code(rec.get("county_code", ""), 5, "郡市区等医師会コード")
    if county[:2] != pref:
        raise _Reject("郡市区等医師会コードの先頭2桁が都道府県医師会コードと一致しません。")
    county_name = names.display_name(rec.get("county_name", ""))
    if not county_name:
        raise _Reject("郡市区等医師会名が空欄です。")
    status_raw = _clean(rec.get("status", ""))
    status = _STATUS_IN.get(status_raw)
    if status is None:
        raise _Reject(f"会員状態「{status_raw}」は使えません（在籍・入会手続中・退会のいずれか）。")
    workplace_code = _clean(rec.get("workplace_code", "")) or None
    if workplace_code is not None:
        workplace_code = _code(workplace_code, 10, "勤務先医療機関コード")
    workplace_name = names.display_name(rec.get("workplace_name", "")) or None
    delivery = []
    for pub in PUBLICATIONS:
        label = PUBLICATION_JA[pub]
        send_raw = _clean(rec.get(f"{pub}_send", ""))
        dest_raw = _clean(rec.get(f"{pub}_dest", ""))
        send = _SEND_IN.get(send_raw.lower()) if send_raw else None
        if send_raw and send is None:
            raise _Reject(f"{label}送付「{send_raw}」は使えません（する・しない）。")
        dest = _DEST_IN.get(dest_raw) if dest_raw else None
        if dest_raw and dest is None:
            raise _Reject(f"{label}送付先「{dest_raw}」は使えません（勤務先・自宅・その他）。")
        if send == 1 and dest is None:
            raise _Reject(f"{label}を送付する場合は送付先（勤務先・自宅・その他）が必要です。")
        if send is None and dest is not None:
            raise _Reject(f"{label}の送付先がありますが、送付する・しないが空欄です。")
        delivery.append((send, dest))
    # Codes, association and workplace names and dates repeat across thousands of
    # rows; interning them keeps a national-scale file's rows in far less memory.
    return MemberRow(
        member_number=number, name=name, kana=kana, prefecture_code=_intern(pref),
        county_code=_intern(county), county_name=_intern(county_name), status=status,
        workplace_code=_intern(workplace_code), workplace_name=_intern(workplace_name),
        joined_on=_intern(_date(rec.get("joined_on", ""), "入会日")),
        withdrawn_on=_intern(_date(rec.get("withdrawn_on", ""), "退会日")),
        updated_on=_intern(_date(rec.get("updated_on", ""), "更新日")),
        delivery=_DELIVERIES[tuple(delivery)],
    )


# Every possible delivery triple, built once: rows share these tuples instead of
# each holding its own (a constant table, never modified).
_PAIRS = [(send, dest) for send in (None, 0, 1) for dest in (None, "workplace", "home", "other")]
_DELIVERIES = {t: t for t in itertools.product(_PAIRS, repeat=3)}


def _intern(value: str | None) -> str | None:
    return sys.intern(value) if value else value


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    operation: str          # added / changed / deleted ("added" for every row of a full file)
    member_number: str
    row: MemberRow | None   # None for deletions, which carry only the number


@dataclass
class ParsedFile:
    rows: list[ParsedRow]
    rejected: list[Rejection]
    rejected_numbers: set[str]  # numbers of rejected rows: a full import keeps them as they are
    encoding: str


def parse_members_csv(data: bytes, mode: Mode, *, progress_file: TextIO | None = None) -> ParsedFile:
    """Decode, check the header, and validate every data row of a member CSV.

    Line numbers are physical lines of the file (the header is line 1), which is
    what a person opening the file in an editor or spreadsheet sees.
    """
    text, encoding = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFormatError("ファイルが空です。") from None
    except csv.Error as exc:
        raise CsvFormatError(f"CSVとして読めません（1行目: {exc}）。") from None
    keys = [_HEADER_KEYS.get(_clean(h).lstrip("\ufeff"), None) for h in header]
    present = {k for k in keys if k}
    missing = [c.header for c in COLUMNS if c.required and c.key not in present]
    if missing:
        raise CsvFormatError("必須の列がありません: " + "、".join(missing)
                             + "。1行目に列名（ヘッダー）があるかご確認ください。")
    if mode == "diff" and "operation" not in present:
        raise CsvFormatError("差分ファイルに operation（処理区分）列がありません。全件ファイルは --full で取り込んでください。")
    if mode == "full" and "operation" in present:
        raise CsvFormatError("全件ファイルに operation 列があります。差分ファイルは --diff で取り込んでください。")

    total = text.count("\n") - (1 if text.endswith("\n") else 0)  # data lines after the header
    bar = None
    if progress_file is not None and total >= LARGE_FILE_ROWS:
        bar = tqdm(total=total, file=progress_file, unit="行", desc="検証", mininterval=0.5)

    parsed = ParsedFile(rows=[], rejected=[], rejected_numbers=set(), encoding=encoding)
    seen: dict[str, int] = {}
    width = len(keys)
    line = reader.line_num
    while True:
        start = line + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.rejected.append(Rejection(start, f"CSVとして読めません（{exc}）。"))
            line = reader.line_num
            continue
        line = reader.line_num
        if bar is not None:
            bar.update(line - start + 1)
        if not values or all(not v.strip() for v in values):
            continue
        try:
            if len(values) != width:
                raise _Reject(f"列の数（{len(values)}）がヘッダー（{width}）と一致しません。")
            rec = {k: v for k, v in zip(keys, values) if k}
            op = "added"
            if mode == "diff":
                op_raw = _clean(rec.get("operation", ""))
                op = _OPERATION_IN.get(op_raw.lower())
                if op is None:
                    raise _Reject(f"operation「{op_raw}」は使えません（added・changed・deleted）。")
            if op == "deleted":
                number, row = _member_number(rec.get("member_number", "")), None
            else:
                row = _parse_row(rec)
                number = row.member_number
            if number in seen:
                raise _Reject(f"会員番号が{seen[number]}行目と重複しています。")
            seen[number] = start
            parsed.rows.append(ParsedRow(start, op, number, row))
        except _Reject as rej:
            parsed.rejected.append(Rejection(start, rej.reason))
            try:
                parsed.rejected_numbers.add(_member_number(values[keys.index("member_number")]))
            except (_Reject, ValueError, IndexError):
                pass
    if bar is not None:
        bar.close()
    return parsed


# ---------------------------------------------------------------- writing

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


# ---------------------------------------------------------------- writing CSV files

def csv_header(diff: bool = False) -> list[str]:
    """The header line of a member CSV (full, or difference with `operation` last)."""
    return [c.header for c in COLUMNS] + (["operation"] if diff else [])


def write_members_csv(path: Path | str, rows: Iterable[MemberRow], *,
                      operations: Iterable[str] | None = None, encoding: str = "utf-8",
                      deleted: Iterable[str] = ()) -> None:
    """Write a member CSV as the MAMIS API would: a full file, or a difference.

    For a difference, `operations` pairs each row with added/changed, and
    `deleted` lists member numbers to emit as deletion rows (number only).
    Used by the benchmark and tests, and by anyone preparing a file by hand.
    """
    diff = operations is not None
    with open(path, "w", encoding=encoding, newline="") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(csv_header(diff))
        if diff:
            for row, op in zip(rows, operations):
                out.writerow(row.to_csv() + [op])
            blank = [""] * len(COLUMNS)
            for number in deleted:
                out.writerow([number] + blank[1:] + ["deleted"])
        else:
            for row in rows:
                out.writerow(row.to_csv())


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
