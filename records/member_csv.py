"""The member CSV of the MAMIS API: its columns, its two encodings, and what a valid row is.

This module is the file format and nothing else; it never opens the records
database. `records/sync.py` runs the import transaction on what it returns.

- Japanese offices export both UTF-8 and Shift_JIS, so the bytes are decoded by
  trying strict UTF-8 first and CP932 second (`decode_csv`).
- Columns are found by their Japanese header, not by position, because a
  spreadsheet round trip may reorder them; `COLUMNS` declares them once, and
  validation, export and docs/records.md (checked by a test) all follow it.
- Every data row is validated on its own: a bad row becomes a `Rejection` with its
  physical line number and a Japanese reason that says how to fix it, and the other
  rows are still usable. Only a file that is unusable as a whole (encoding, header,
  empty) raises CsvFormatError.
- The writer (`write_members_csv`) is here too, so that exports, the benchmark
  and the tests produce exactly what the reader accepts.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import re
import sys
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterable, Literal, TextIO

from tqdm import tqdm

from . import names
from .errors import CsvFormatError
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

