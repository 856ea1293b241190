"""Reading and writing our CSV files, whatever they carry: the part every import shares.

Each kind of file (members, institutions, applications, family-doctor reports) declares a
`CsvFormat`: its columns, how one row becomes a validated value, and that value's key. This
module does the rest, once for all of them:

- Japanese offices export both UTF-8 and Shift_JIS, so the bytes are decoded by trying
  strict UTF-8 first and CP932 second (`decode_csv`).
- Columns are found by their Japanese header, not by position, because a spreadsheet
  round trip may reorder them. A column map (setting IMPORT_COLUMNS) first renames the
  headers of a file exported by another system to ours.
- Every data row is validated on its own: a bad row becomes a `Rejection` with its
  physical line number and a Japanese reason, and the other rows are still usable. Only a
  file that is unusable as a whole (encoding, header, empty, wrong mode) raises
  CsvFormatError.
- The writer (`write_csv`) is here too, so exports, the demo, the benchmarks and the tests
  produce exactly what the reader accepts.

It never opens a database; records/importer.py runs the transaction on what it returns.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import sys
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol, TextIO

from tqdm import tqdm

from . import names
from .errors import CsvFormatError

Mode = Literal["full", "diff"]

OPERATIONS = ("added", "changed", "deleted")
_OPERATION_IN = {"added": "added", "追加": "added", "changed": "changed", "変更": "changed",
                 "deleted": "deleted", "削除": "deleted"}
OPERATION_HEADERS = ("operation", "処理区分")

# Files with at least this many data rows show a progress bar (when on a TTY).
LARGE_FILE_ROWS = 5_000


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool
    description: str


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


class Reject(Exception):
    """A row that cannot be imported; `reason` is the Japanese sentence shown with its line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Row(Protocol):
    """What a format's rows offer the importer."""

    @property
    def key(self) -> str: ...

    def row_hash(self) -> str: ...

    def to_csv(self) -> list[str]: ...


@dataclass(frozen=True)
class CsvFormat:
    """One kind of file: its columns (declared once: validation, export and docs follow them)."""
    kind: str                                 # members / institutions / applications / reports
    columns: tuple[Column, ...]
    parse_row: Callable[[dict[str, str]], Any]  # a validated Row, or raises Reject
    parse_key: Callable[[dict[str, str]], str]  # the key alone: a `deleted` row carries nothing else
    key_label: str                            # 「会員番号」: says which value is duplicated

    @property
    def headers(self) -> dict[str, str]:
        return {c.header: c.key for c in self.columns}


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    operation: str   # added / changed / deleted ("added" for every row of a full file)
    key: str
    row: Any         # None for deletions, which carry only the key


@dataclass
class ParsedFile:
    rows: list[ParsedRow]
    rejected: list[Rejection]
    rejected_keys: set[str]  # keys of rejected rows: a full import keeps them as they are
    encoding: str

    def reject(self, keys_and_reasons: Mapping[str, str]) -> None:
        """Move rows whose key is given to the rejected ones (a reason found against the database)."""
        if not keys_and_reasons:
            return
        kept = []
        for item in self.rows:
            reason = keys_and_reasons.get(item.key)
            if reason is None:
                kept.append(item)
            else:
                self.rejected.append(Rejection(item.line, reason))
                self.rejected_keys.add(item.key)
        self.rows = kept
        self.rejected.sort(key=lambda r: r.line)


# ---------------------------------------------------------------- values

def decode_csv(data: bytes) -> tuple[str, str]:
    """Decode a CSV file: UTF-8 with or without BOM, else Shift_JIS (as CP932).

    Strict UTF-8 almost never accepts Shift_JIS bytes of Japanese text, so trying it first
    is a reliable detector; CP932 rather than plain Shift_JIS because Windows exports use
    its extensions (髙, ①, …).
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


def clean(value: str) -> str:
    """A cell as typed, NFKC-normalised (full-width digits, half-width kana) and trimmed."""
    if value.isascii():  # codes, numbers, dates: nothing for NFKC to do, and it is the bulk
        return value.strip()
    return unicodedata.normalize("NFKC", value).strip()


def text(value: str) -> str:
    """Free text (an address, a return reason) as written, only trimmed: it is shown as it came."""
    return value.strip()


def name(value: str, label: str, limit: int) -> str:
    """A required name (a person's, an institution's) as shown, at most `limit` characters."""
    shown = names.display_name(value)
    if not shown:
        raise Reject(f"{label}が空欄です。")
    if len(shown) > limit:
        raise Reject(f"{label}が長すぎます（{limit}文字まで）。")
    return shown


def kana(value: str, label: str) -> str:
    """A required reading, in katakana (half-width kana and hiragana are converted)."""
    shown = names.display_kana(value)
    if not shown:
        raise Reject(f"{label}が空欄です。")
    return shown


_DIGITS = {n: re.compile(rf"^[0-9]{{{n}}}$") for n in (2, 4, 5, 7, 10)}
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")
_MONTH = re.compile(r"^(\d{4})[-/年](\d{1,2})月?$|^(\d{4})(\d{2})$")


def code(value: str, digits: int, label: str) -> str:
    text = clean(value)
    if not _DIGITS[digits].match(text):
        raise Reject(f"{label}が{digits}桁の数字ではありません（表計算ソフトで先頭の0が消えていないかご確認ください）。")
    return text


def optional_code(value: str, digits: int, label: str) -> str | None:
    return code(value, digits, label) if clean(value) else None


def prefecture_code(value: str, label: str = "都道府県医師会コード") -> str:
    pref = code(value, 2, label)
    if not 1 <= int(pref) <= 47:
        raise Reject(f"{label}は01〜47のいずれかです。")
    return pref


def day(value: str, label: str) -> str | None:
    """YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD as an ISO date; empty is None."""
    if not value:  # most step dates of most rows: nothing to read
        return None
    text = clean(value)
    if not text:
        return None
    m = _DATE.match(text)
    try:
        if not m:
            raise ValueError
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        return date(int(y), int(mo), int(d)).isoformat()
    except ValueError:
        raise Reject(f"{label}「{text}」は日付として読めません（YYYY-MM-DD で記入してください）。") from None


def required_day(value: str, label: str) -> str:
    found = day(value, label)
    if found is None:
        raise Reject(f"{label}が空欄です。")
    return found


def month(value: str, label: str) -> str | None:
    """YYYY-MM (also YYYY/MM, YYYY年MM月, YYYYMM) as YYYY-MM; empty is None."""
    text = clean(value)
    if not text:
        return None
    m = _MONTH.match(text)
    y, mo = (m.group(1), m.group(2)) if m and m.group(1) else ((m.group(3), m.group(4)) if m else (None, None))
    if y is None or not 1 <= int(mo) <= 12:
        raise Reject(f"{label}「{text}」は年月として読めません（YYYY-MM で記入してください）。")
    return f"{int(y):04d}-{int(mo):02d}"


def choice(value: str, words: Mapping[str, str], label: str, *, required: bool = True) -> str | None:
    """A closed vocabulary cell (「審査中」→ in_review); the reason lists the words accepted."""
    text = clean(value)
    if not text and not required:
        return None
    found = words.get(text) or words.get(text.lower())
    if found is None:
        shown = "・".join(dict.fromkeys(w for w in words if not w.isascii()))
        raise Reject(f"{label}「{text}」は使えません（{shown}のいずれか）。" if text else f"{label}が空欄です。")
    return found


def intern(value: str | None) -> str | None:
    """Codes, names and dates repeat across thousands of rows; one shared string each keeps a
    national-scale file in far less memory."""
    return sys.intern(value) if value else value


# ---------------------------------------------------------------- reading a file

def header_keys(fmt: CsvFormat, header: list[str], column_map: Mapping[str, str] | None) -> list[str | None]:
    """Our column key for each header cell (None: ignored), after the column map's renaming."""
    ours = fmt.headers | {h: "operation" for h in OPERATION_HEADERS}
    renamed = {clean(theirs): ours for theirs, ours in (column_map or {}).items()}  # matched as headers are
    keys = []
    for cell in header:
        text = clean(cell).lstrip("\ufeff")
        keys.append(ours.get(renamed.get(text, text)))
    return keys


def parse_csv(data: bytes, mode: Mode, fmt: CsvFormat, *, column_map: Mapping[str, str] | None = None,
              progress_file: TextIO | None = None) -> ParsedFile:
    """Decode, check the header, and validate every data row of a file of kind `fmt`.

    Line numbers are physical lines of the file (the header is line 1), which is what a
    person opening the file in an editor or spreadsheet sees.
    """
    text, encoding = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFormatError("ファイルが空です。") from None
    except csv.Error as exc:
        raise CsvFormatError(f"CSVとして読めません（1行目: {exc}）。") from None
    keys = header_keys(fmt, header, column_map)
    present = {k for k in keys if k}
    missing = [c.header for c in fmt.columns if c.required and c.key not in present]
    if missing:
        hint = "（設定 IMPORT_COLUMNS の列名の対応表も）" if column_map else ""
        raise CsvFormatError("必須の列がありません: " + "、".join(missing)
                             + f"。1行目に列名（ヘッダー）があるか{hint}ご確認ください。")
    if mode == "diff" and "operation" not in present:
        raise CsvFormatError("差分ファイルに operation（処理区分）列がありません。全件ファイルは --full で取り込んでください。")
    if mode == "full" and "operation" in present:
        raise CsvFormatError("全件ファイルに operation 列があります。差分ファイルは --diff で取り込んでください。")

    total = text.count("\n") - (1 if text.endswith("\n") else 0)  # data lines after the header
    bar = None
    if progress_file is not None and total >= LARGE_FILE_ROWS:
        bar = tqdm(total=total, file=progress_file, unit="行", desc="検証", mininterval=0.5)

    parsed = ParsedFile(rows=[], rejected=[], rejected_keys=set(), encoding=encoding)
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
        rec = {k: v for k, v in zip(keys, values) if k}
        try:
            if len(values) != width:
                raise Reject(f"列の数（{len(values)}）がヘッダー（{width}）と一致しません。")
            op = "added"
            if mode == "diff":
                op_raw = clean(rec.get("operation", ""))
                op = _OPERATION_IN.get(op_raw.lower())
                if op is None:
                    raise Reject(f"operation「{op_raw}」は使えません（added・changed・deleted）。")
            if op == "deleted":
                key, row = fmt.parse_key(rec), None
            else:
                row = fmt.parse_row(rec)
                key = row.key
            if key in seen:
                raise Reject(f"{fmt.key_label}が{seen[key]}行目と重複しています。")
            seen[key] = start
            parsed.rows.append(ParsedRow(start, op, key, row))
        except Reject as rej:
            parsed.rejected.append(Rejection(start, rej.reason))
            try:
                parsed.rejected_keys.add(fmt.parse_key(rec))
            except Reject:
                pass
    if bar is not None:
        bar.close()
    return parsed


# ---------------------------------------------------------------- writing a file

def csv_header(fmt: CsvFormat, diff: bool = False) -> list[str]:
    """The header line of a file (full, or difference with `operation` last)."""
    return [c.header for c in fmt.columns] + (["operation"] if diff else [])


def write_csv(path: Path | str, fmt: CsvFormat, rows: Iterable[Row], *,
              operations: Iterable[str] | None = None, encoding: str = "utf-8",
              deleted: Iterable[dict[str, str]] = ()) -> None:
    """Write a file of kind `fmt`: a full file, or a difference.

    For a difference, `operations` pairs each row with added/changed, and `deleted` gives,
    per deletion row, the cells of its key columns ({column key: value}).
    """
    diff = operations is not None
    with open(path, "w", encoding=encoding, newline="") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(csv_header(fmt, diff))
        if diff:
            for row, op in zip(rows, operations):
                out.writerow(row.to_csv() + [op])
            for cells in deleted:
                out.writerow([cells.get(c.key, "") for c in fmt.columns] + ["deleted"])
        else:
            for row in rows:
                out.writerow(row.to_csv())

