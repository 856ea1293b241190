"""The member CSV of the MAMIS API: its columns and what a valid member row is.

The file handling every import shares (encodings, header matching, the column map, line
numbers, rejections, writing) is records/csv_format.py; this module declares the member
file (`MEMBERS`) and validates one row. It never opens the records database;
`records/sync.py` writes what it returns.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, TextIO

from . import csv_format, names
from .csv_format import Column, CsvFormat, Mode, ParsedFile, Reject, clean, code, day, intern, parse_csv, write_csv
from .csv_format import csv_header as _csv_header
from .vocab import DESTINATION_JA, PUBLICATION_JA, PUBLICATIONS, STATUS_JA

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
_STATUS_IN = {"在籍": "active", "会員": "active", "active": "active",
              "入会手続中": "pending", "手続中": "pending", "pending": "pending",
              "退会": "withdrawn", "withdrawn": "withdrawn"}
_SEND_IN = {"する": 1, "送付する": 1, "1": 1, "有": 1, "あり": 1, "yes": 1,
            "しない": 0, "送付しない": 0, "0": 0, "無": 0, "なし": 0, "no": 0}
_DEST_IN = {"勤務先": "workplace", "workplace": "workplace", "自宅": "home", "home": "home",
            "その他": "other", "other": "other"}

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

    @property
    def key(self) -> str:
        return self.member_number

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


# ---------------------------------------------------------------- one row

def _member_number(value: str) -> str:
    return code(value, 7, "会員番号")


def _parse_row(rec: dict[str, str]) -> MemberRow:
    """Validate one data row into a MemberRow, or raise Reject with a Japanese reason."""
    number = _member_number(rec.get("member_number", ""))
    name = csv_format.name(rec.get("name", ""), "氏名", 60)
    kana = csv_format.kana(rec.get("kana", ""), "氏名カナ")
    if not _KANA_OK.match(kana):
        raise Reject("氏名カナにカタカナ以外の文字が含まれています。")
    pref = code(rec.get("prefecture_code", ""), 2, "都道府県医師会コード")
    if not 1 <= int(pref) <= 47:
        raise Reject("都道府県医師会コードは01〜47のいずれかです。")
    county = code(rec.get("county_code", ""), 5, "郡市区等医師会コード")
    if county[:2] != pref:
        raise Reject("郡市区等医師会コードの先頭2桁が都道府県医師会コードと一致しません。")
    county_name = names.display_name(rec.get("county_name", ""))
    if not county_name:
        raise Reject("郡市区等医師会名が空欄です。")
    status_raw = clean(rec.get("status", ""))
    status = _STATUS_IN.get(status_raw)
    if status is None:
        raise Reject(f"会員状態「{status_raw}」は使えません（在籍・入会手続中・退会のいずれか）。")
    workplace_code = clean(rec.get("workplace_code", "")) or None
    if workplace_code is not None:
        workplace_code = code(workplace_code, 10, "勤務先医療機関コード")
    workplace_name = names.display_name(rec.get("workplace_name", "")) or None
    delivery = []
    for pub in PUBLICATIONS:
        label = PUBLICATION_JA[pub]
        send_raw = clean(rec.get(f"{pub}_send", ""))
        dest_raw = clean(rec.get(f"{pub}_dest", ""))
        send = _SEND_IN.get(send_raw.lower()) if send_raw else None
        if send_raw and send is None:
            raise Reject(f"{label}送付「{send_raw}」は使えません（する・しない）。")
        dest = _DEST_IN.get(dest_raw) if dest_raw else None
        if dest_raw and dest is None:
            raise Reject(f"{label}送付先「{dest_raw}」は使えません（勤務先・自宅・その他）。")
        if send == 1 and dest is None:
            raise Reject(f"{label}を送付する場合は送付先（勤務先・自宅・その他）が必要です。")
        if send is None and dest is not None:
            raise Reject(f"{label}の送付先がありますが、送付する・しないが空欄です。")
        delivery.append((send, dest))
    # Codes, association and workplace names and dates repeat across thousands of
    # rows; interning them keeps a national-scale file's rows in far less memory.
    return MemberRow(
        member_number=number, name=name, kana=kana, prefecture_code=intern(pref),
        county_code=intern(county), county_name=intern(county_name), status=status,
        workplace_code=intern(workplace_code), workplace_name=intern(workplace_name),
        joined_on=intern(day(rec.get("joined_on", ""), "入会日")),
        withdrawn_on=intern(day(rec.get("withdrawn_on", ""), "退会日")),
        updated_on=intern(day(rec.get("updated_on", ""), "更新日")),
        delivery=_DELIVERIES[tuple(delivery)],
    )


# Every possible delivery triple, built once: rows share these tuples instead of
# each holding its own (a constant table, never modified).
_PAIRS = [(send, dest) for send in (None, 0, 1) for dest in (None, "workplace", "home", "other")]
_DELIVERIES = {t: t for t in itertools.product(_PAIRS, repeat=3)}




def _parse_key(rec: dict[str, str]) -> str:
    return _member_number(rec.get("member_number", ""))


MEMBERS = CsvFormat("members", COLUMNS, _parse_row, _parse_key, "会員番号")


def parse_members_csv(data: bytes, mode: Mode, *, column_map: Mapping[str, str] | None = None,
                      progress_file: TextIO | None = None) -> ParsedFile:
    """Decode, check the header, and validate every data row of a member CSV."""
    return parse_csv(data, mode, MEMBERS, column_map=column_map, progress_file=progress_file)


def csv_header(diff: bool = False) -> list[str]:
    """The header line of a member CSV (full, or difference with `operation` last)."""
    return _csv_header(MEMBERS, diff)


def write_members_csv(path: Path | str, rows: Iterable[MemberRow], *,
                      operations: Iterable[str] | None = None, encoding: str = "utf-8",
                      deleted: Iterable[str] = ()) -> None:
    """Write a member CSV as the MAMIS API would: a full file, or a difference.

    For a difference, `operations` pairs each row with added/changed, and `deleted` lists
    member numbers to emit as deletion rows (number only).
    """
    write_csv(path, MEMBERS, rows, operations=operations, encoding=encoding,
              deleted=({"member_number": n} for n in deleted))
