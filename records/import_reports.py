"""The family-doctor report file (かかりつけ医機能報告): its columns, one valid row, writing the tables.

One row per report, keyed by the institution's 医療機関コード and the fiscal year: where it
stands and the date of each step, which the stored row keeps as its file does (the lookups
order them into its history, records/steps.py). The institution must be in the master
(imported first with sync-institutions).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Sequence

from .csv_format import Column, CsvFormat, Mode, Reject, choice, clean, code, day, intern, required_day, text
from .importer import ImportKind, RowTables, existing_rows, write_numbered_rows
from .steps import Step, step_cells

COLUMNS: tuple[Column, ...] = (
    Column("institution_code", "医療機関コード", True, "10桁の数字（医療機関マスタにあるもの）"),
    Column("fiscal_year", "年度", True, "西暦4桁（令和7年度は 2025）"),
    Column("submitted_on", "提出日", True, "YYYY-MM-DD"),
    Column("stage", "段階", True, "郡市区等医師会・都道府県医師会・完了"),
    Column("state", "状態", True, "審査中・差戻し・承認"),
    Column("county_approved_on", "郡市区等医師会承認日", False, "YYYY-MM-DD"),
    Column("prefecture_approved_on", "都道府県医師会承認日", False, "YYYY-MM-DD（状態が承認なら必須）"),
    Column("returned_on", "差戻し日", False, "YYYY-MM-DD（状態が差戻しなら必須）"),
    Column("returned_by", "差戻し元", False, "郡市区等医師会・都道府県医師会（空欄は段階と同じ）"),
    Column("return_reason", "差戻し理由", False, "状態が差戻しなら必須"),
    Column("resubmitted_on", "再提出日", False, "YYYY-MM-DD"),
)
STAGE_IN = {"郡市区等医師会": "county", "都道府県医師会": "prefecture", "完了": "done",
            "county": "county", "prefecture": "prefecture", "done": "done"}
LEVEL_IN = {k: v for k, v in STAGE_IN.items() if v != "done"}
STATE_IN = {"審査中": "in_review", "確認中": "in_review", "差戻し": "returned", "差戻": "returned",
            "承認": "approved", "承認済み": "approved", "in_review": "in_review", "returned": "returned",
            "approved": "approved"}
STAGE_OUT = {"county": "郡市区等医師会", "prefecture": "都道府県医師会", "done": "完了"}
STATE_OUT = {"in_review": "審査中", "returned": "差戻し", "approved": "承認"}

_LABELS = {c.key: c.header for c in COLUMNS}
STEPS = (
    Step("submitted_on", "institution", "submitted"),
    Step("county_approved_on", "county", "approved"),
    Step("prefecture_approved_on", "prefecture", "approved"),
    Step("returned_on", None, "returned"),
    Step("resubmitted_on", "institution", "resubmitted"),
)


def report_key(institution_code: str, fiscal_year: int) -> str:
    return f"{institution_code}:{fiscal_year}"


@dataclass(frozen=True, slots=True)
class ReportRow:
    institution_code: str
    fiscal_year: int
    stage: str
    state: str
    dates: tuple[str | None, ...]   # one per STEPS item
    returned_by: str | None = None
    return_reason: str | None = None

    @property
    def key(self) -> str:
        return report_key(self.institution_code, self.fiscal_year)

    def row_hash(self) -> str:
        parts = [self.institution_code, str(self.fiscal_year), self.stage, self.state, self.returned_by or "",
                 self.return_reason or "", *(d or "" for d in self.dates)]
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()

    def to_csv(self) -> list[str]:
        d = dict(zip((s.column for s in STEPS), self.dates))
        return [self.institution_code, str(self.fiscal_year), d["submitted_on"], STAGE_OUT[self.stage],
                STATE_OUT[self.state], d["county_approved_on"] or "", d["prefecture_approved_on"] or "",
                d["returned_on"] or "", STAGE_OUT[self.returned_by] if self.returned_by else "",
                self.return_reason or "", d["resubmitted_on"] or ""]


def _year(rec: dict[str, str]) -> int:
    text = clean(rec.get("fiscal_year", "")).removesuffix("年度")
    if not (text.isdigit() and len(text) == 4 and 2000 <= int(text) <= 2100):
        raise Reject(f"年度「{text}」は西暦4桁ではありません（令和7年度は 2025）。")
    return int(text)


def _parse_key(rec: dict[str, str]) -> str:
    return report_key(code(rec.get("institution_code", ""), 10, "医療機関コード"), _year(rec))


def _parse_row(rec: dict[str, str]) -> ReportRow:
    """Validate one data row, or raise Reject with a Japanese reason."""
    institution = code(rec.get("institution_code", ""), 10, "医療機関コード")
    year = _year(rec)
    stage = choice(rec.get("stage", ""), STAGE_IN, "段階")
    state = choice(rec.get("state", ""), STATE_IN, "状態")
    if (stage == "done") != (state == "approved"):
        raise Reject(f"段階「{STAGE_OUT[stage]}」と状態「{STATE_OUT[state]}」の組み合わせは使えません"
                     "（承認された報告は段階が完了です）。")
    dates = tuple(required_day(rec.get(s.column, ""), _LABELS[s.column]) if s.column == "submitted_on"
                  else day(rec.get(s.column, ""), _LABELS[s.column]) for s in STEPS)
    d = dict(zip((s.column for s in STEPS), dates))
    returned_by = choice(rec.get("returned_by", ""), LEVEL_IN, "差戻し元", required=False)
    reason = text(rec.get("return_reason", "")) or None
    if state == "returned":
        if reason is None or d["returned_on"] is None:
            raise Reject("差戻しの報告には差戻し日と差戻し理由が必要です。")
        returned_by = returned_by or stage
    elif d["returned_on"] is not None and returned_by is None:
        raise Reject("差戻し日がある報告には差戻し元が必要です（いまの段階からは分かりません）。")
    if state == "approved" and d["prefecture_approved_on"] is None:
        raise Reject("承認された報告には都道府県医師会承認日が必要です。")
    return ReportRow(institution, year, stage, state, tuple(intern(x) for x in dates), returned_by, reason)


REPORTS = CsvFormat("reports", COLUMNS, _parse_row, _parse_key, "医療機関コードと年度")


# ---------------------------------------------------------------- the tables

_KEY_SQL = "i.institution_code || ':' || r.fiscal_year"
_EXISTING_ALL = f"""
SELECT {_KEY_SQL}, r.row_hash, r.id FROM fd_reports AS r JOIN institutions AS i ON i.id = r.institution_id
"""
_EXISTING_SOME = f"""
SELECT {_KEY_SQL}, r.row_hash, r.id FROM fd_reports AS r JOIN institutions AS i ON i.id = r.institution_id
WHERE {_KEY_SQL} IN (SELECT value FROM json_each(:keys))
"""
_INSTITUTION_IDS = """
SELECT institution_code, id FROM institutions WHERE institution_code IN (SELECT value FROM json_each(:codes))
"""
_MAX_ID = "SELECT coalesce(max(id), 0) FROM fd_reports"
_INSERT = """
INSERT INTO fd_reports (id, institution_id, fiscal_year, submitted_on, stage, state, row_hash, county_approved_on,
                        prefecture_approved_on, returned_on, returned_by, return_reason, resubmitted_on)
VALUES (:id, :institution_id, :fiscal_year, :submitted_on, :stage, :state, :row_hash, :county_approved_on,
        :prefecture_approved_on, :returned_on, :returned_by, :return_reason, :resubmitted_on)
"""
_UPDATE = ("""
UPDATE fd_reports SET submitted_on = :submitted_on, stage = :stage, state = :state, row_hash = :row_hash,
    county_approved_on = :county_approved_on, prefecture_approved_on = :prefecture_approved_on,
    returned_on = :returned_on, returned_by = :returned_by, return_reason = :return_reason,
    resubmitted_on = :resubmitted_on
WHERE id = :id
""",)
_DELETE = "DELETE FROM fd_reports WHERE id IN (SELECT value FROM json_each(:ids))"
_TABLES = RowTables(_MAX_ID, _INSERT, _UPDATE, _DELETE)


def _existing(conn: sqlite3.Connection, mode: Mode, keys: list[str]) -> dict[str, tuple]:
    return existing_rows(conn, mode, keys, _EXISTING_ALL, _EXISTING_SOME)


def _institution_ids(conn: sqlite3.Connection, codes) -> dict[str, int]:
    return dict(conn.execute(_INSTITUTION_IDS, {"codes": json.dumps(sorted(set(codes)))}))


def _check(conn: sqlite3.Connection, rows: list) -> dict[str, str]:
    """Reports of institutions not in the master cannot be stored (a report belongs to one)."""
    known = _institution_ids(conn, (item.row.institution_code for item in rows))
    return {item.key: f"医療機関コード「{item.row.institution_code}」の医療機関が医療機関マスタにありません"
                      "（先に helpdesk sync-institutions で取り込んでください）。"
            for item in rows if item.row.institution_code not in known}


def write_reports(conn: sqlite3.Connection, upserts: Sequence[ReportRow], deletes: Sequence[str],
                  old: dict[str, tuple]) -> None:
    """Write reports with their dated steps; delete others. A changed one keeps its id."""
    institution_ids = _institution_ids(conn, (row.institution_code for row in upserts))
    write_numbered_rows(conn, _TABLES, upserts, deletes, old, lambda row, id_: {
        "id": id_, "institution_id": institution_ids[row.institution_code], "fiscal_year": row.fiscal_year,
        "stage": row.stage, "state": row.state, "row_hash": row.row_hash(),
        **step_cells(STEPS, row.dates, row.returned_by, row.return_reason)})


REPORT_IMPORT = ImportKind("reports", "かかりつけ医機能報告", REPORTS, "last_sync_reports",
                           _existing, write_reports, lambda conn: load_report_rows(conn), "fd_reports.csv", _check)


# ---------------------------------------------------------------- reading back (exports, round trips)

_ALL = """
SELECT i.institution_code, r.fiscal_year, r.stage, r.state, r.submitted_on, r.county_approved_on,
       r.prefecture_approved_on, r.returned_on, r.resubmitted_on, r.returned_by, r.return_reason
FROM fd_reports AS r JOIN institutions AS i ON i.id = r.institution_id
WHERE i.institution_code IS NOT NULL ORDER BY r.id
"""


def load_report_rows(conn: sqlite3.Connection) -> list[ReportRow]:
    """Every report of a records database (of coded institutions), as its file carries it."""
    return [ReportRow(institution, year, stage, state, tuple(dates), returned_by, reason)
            for institution, year, stage, state, *dates, returned_by, reason in conn.execute(_ALL)]
