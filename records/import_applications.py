"""The application file (入会届・異動届): its columns, one valid row, and writing the tables.

One row per application, keyed by its 申請番号: who it is for, which associations it
concerns, where it stands (段階, 状態), the return reason, and the date of each step. The
stored row keeps the steps' dates as its file does; the lookups order them into the
application's history (records/steps.py). A difference file that moves an application to its
next stage is how stage changes arrive (and notify subscribed doctors, see handlers/cli/main.py).
"""
from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Sequence

from . import names
from .csv_format import Column, CsvFormat, Mode, Reject, choice, clean, code, day, intern, required_day, text
from .importer import ImportKind, RowTables, add_counties, existing_rows, unknown_counties, write_numbered_rows
from .steps import Step, step_cells

COLUMNS: tuple[Column, ...] = (
    Column("application_number", "申請番号", True, "A＋西暦＋-＋6桁（A2026-000001）"),
    Column("member_number", "会員番号", True, "7桁の数字"),
    Column("kind", "申請種別", True, "入会届・異動届"),
    Column("county_code", "郡市区等医師会コード", True, "入会先・異動先の郡市区等医師会（5桁）"),
    Column("county_name", "郡市区等医師会名", False, "会員CSVでまだ登録されていないコードのときに必要"),
    Column("from_county_code", "異動元郡市区等医師会コード", False, "異動届のみ必須（5桁）"),
    Column("from_county_name", "異動元郡市区等医師会名", False, "会員CSVでまだ登録されていないコードのときに必要"),
    Column("submitted_on", "提出日", True, "YYYY-MM-DD"),
    Column("stage", "段階", True, "郡市区等医師会・都道府県医師会・日本医師会・完了"),
    Column("state", "状態", True, "審査中・差戻し・完了・取下げ"),
    Column("county_approved_on", "郡市区等医師会承認日", False, "YYYY-MM-DD"),
    Column("prefecture_approved_on", "都道府県医師会承認日", False, "YYYY-MM-DD"),
    Column("jma_completed_on", "日本医師会完了日", False, "YYYY-MM-DD（状態が完了なら必須）"),
    Column("returned_on", "差戻し日", False, "YYYY-MM-DD（状態が差戻しなら必須）"),
    Column("returned_by", "差戻し元", False, "郡市区等医師会・都道府県医師会・日本医師会（空欄は段階と同じ）"),
    Column("return_reason", "差戻し理由", False, "状態が差戻しなら必須"),
    Column("resubmitted_on", "再提出日", False, "YYYY-MM-DD"),
    Column("withdrawn_on", "取下げ日", False, "YYYY-MM-DD（状態が取下げなら必須）"),
)
KIND_IN = {"入会届": "admission", "入会": "admission", "異動届": "transfer", "異動": "transfer",
           "admission": "admission", "transfer": "transfer"}
STAGE_IN = {"郡市区等医師会": "county", "都道府県医師会": "prefecture", "日本医師会": "jma", "完了": "done",
            "county": "county", "prefecture": "prefecture", "jma": "jma", "done": "done"}
LEVEL_IN = {k: v for k, v in STAGE_IN.items() if v != "done"}
STATE_IN = {"審査中": "in_review", "確認中": "in_review", "差戻し": "returned", "差戻": "returned",
            "完了": "completed", "取下げ": "withdrawn", "取下": "withdrawn", "in_review": "in_review",
            "returned": "returned", "completed": "completed", "withdrawn": "withdrawn"}
KIND_OUT = {"admission": "入会届", "transfer": "異動届"}
STAGE_OUT = {"county": "郡市区等医師会", "prefecture": "都道府県医師会", "jma": "日本医師会", "done": "完了"}
STATE_OUT = {"in_review": "審査中", "returned": "差戻し", "completed": "完了", "withdrawn": "取下げ"}

# The dated steps of an application, in the order they happen on the same day.
STEPS = (
    Step("submitted_on", "applicant", "submitted"),
    Step("county_approved_on", "county", "approved"),
    Step("prefecture_approved_on", "prefecture", "approved"),
    Step("returned_on", None, "returned"),          # the level is 差戻し元
    Step("resubmitted_on", "applicant", "resubmitted"),
    Step("jma_completed_on", "jma", "completed"),
    Step("withdrawn_on", "applicant", "withdrawn"),
)
_NUMBER = re.compile(r"^A\d{4}-\d{6}$")


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    application_number: str
    member_number: str
    kind: str
    county_code: str
    from_county_code: str | None
    stage: str
    state: str
    dates: tuple[str | None, ...]   # one per STEPS item
    returned_by: str | None = None
    return_reason: str | None = None
    county_name: str | None = None       # register unknown counties; not part of the row itself
    from_county_name: str | None = None

    @property
    def key(self) -> str:
        return self.application_number

    def row_hash(self) -> str:
        parts = [self.application_number, self.member_number, self.kind, self.county_code,
                 self.from_county_code or "", self.stage, self.state, self.returned_by or "",
                 self.return_reason or "", *(d or "" for d in self.dates)]
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()

    def to_csv(self) -> list[str]:
        d = dict(zip((s.column for s in STEPS), self.dates))
        return [self.application_number, self.member_number, KIND_OUT[self.kind], self.county_code,
                self.county_name or "", self.from_county_code or "", self.from_county_name or "", d["submitted_on"], STAGE_OUT[self.stage], STATE_OUT[self.state],
                d["county_approved_on"] or "", d["prefecture_approved_on"] or "", d["jma_completed_on"] or "",
                d["returned_on"] or "", STAGE_OUT[self.returned_by] if self.returned_by else "",
                self.return_reason or "", d["resubmitted_on"] or "", d["withdrawn_on"] or ""]


def _number(rec: dict[str, str]) -> str:
    number = clean(rec.get("application_number", "")).upper()
    if not _NUMBER.match(number):
        raise Reject(f"申請番号「{number}」は A2026-000001 の形ではありません。")
    return number


def _parse_row(rec: dict[str, str]) -> ApplicationRow:
    """Validate one data row, or raise Reject with a Japanese reason."""
    number = _number(rec)
    member = code(rec.get("member_number", ""), 7, "会員番号")
    kind = choice(rec.get("kind", ""), KIND_IN, "申請種別")
    county = code(rec.get("county_code", ""), 5, "郡市区等医師会コード")
    from_county = clean(rec.get("from_county_code", "")) or None
    if kind == "transfer":
        if from_county is None:
            raise Reject("異動届には異動元郡市区等医師会コードが必要です。")
        from_county = code(from_county, 5, "異動元郡市区等医師会コード")
        if from_county == county:
            raise Reject("異動元と異動先の郡市区等医師会コードが同じです。")
    elif from_county is not None:
        raise Reject("入会届に異動元郡市区等医師会コードがあります（異動届のみ記入します）。")
    stage = choice(rec.get("stage", ""), STAGE_IN, "段階")
    state = choice(rec.get("state", ""), STATE_IN, "状態")
    if (stage == "done") != (state in ("completed", "withdrawn")):
        raise Reject(f"段階「{STAGE_OUT[stage]}」と状態「{STATE_OUT[state]}」の組み合わせは使えません"
                     "（完了・取下げの申請は段階が完了です）。")
    dates = tuple(required_day(rec.get(s.column, ""), "提出日") if s.column == "submitted_on"
                  else day(rec.get(s.column, ""), _label(s.column)) for s in STEPS)
    returned_by = choice(rec.get("returned_by", ""), LEVEL_IN, "差戻し元", required=False)
    reason = text(rec.get("return_reason", "")) or None
    d = dict(zip((s.column for s in STEPS), dates))
    if state == "returned":
        if reason is None or d["returned_on"] is None:
            raise Reject("差戻しの申請には差戻し日と差戻し理由が必要です。")
        returned_by = returned_by or stage
    elif d["returned_on"] is not None and returned_by is None:
        raise Reject("差戻し日がある申請には差戻し元が必要です（いまの段階からは分かりません）。")
    if state == "completed" and d["jma_completed_on"] is None:
        raise Reject("完了した申請には日本医師会完了日が必要です。")
    if state == "withdrawn" and d["withdrawn_on"] is None:
        raise Reject("取下げた申請には取下げ日が必要です。")
    return ApplicationRow(number, member, kind, intern(county), intern(from_county), stage, state,
                          tuple(intern(x) for x in dates), returned_by, reason,
                          intern(names.display_name(rec.get("county_name", "")) or None),
                          intern(names.display_name(rec.get("from_county_name", "")) or None))


_LABELS = {c.key: c.header for c in COLUMNS}


def _label(column: str) -> str:
    return _LABELS[column]


APPLICATIONS = CsvFormat("applications", COLUMNS, _parse_row, _number, "申請番号")


# ---------------------------------------------------------------- the tables

_EXISTING_ALL = "SELECT application_number, row_hash, id FROM applications"
_EXISTING_SOME = """
SELECT application_number, row_hash, id FROM applications
WHERE application_number IN (SELECT value FROM json_each(:keys))
"""
_MAX_ID = "SELECT coalesce(max(id), 0) FROM applications"
_INSERT = """
INSERT INTO applications (id, application_number, member_number, kind, county_code, from_county_code,
                          submitted_on, stage, state, row_hash, county_approved_on, prefecture_approved_on,
                          returned_on, returned_by, return_reason, resubmitted_on, jma_completed_on, withdrawn_on)
VALUES (:id, :application_number, :member_number, :kind, :county_code, :from_county_code,
        :submitted_on, :stage, :state, :row_hash, :county_approved_on, :prefecture_approved_on,
        :returned_on, :returned_by, :return_reason, :resubmitted_on, :jma_completed_on, :withdrawn_on)
"""
# A changed application: its plain columns, then its indexed ones only where they differ. SQLite
# rewrites an index entry for every column a SET names, same value or not, and a difference file's
# stage changes would otherwise rewrite applications_by_member for every row they touch.
_UPDATE = ("""
UPDATE applications SET kind = :kind, county_code = :county_code, from_county_code = :from_county_code,
    stage = :stage, state = :state, row_hash = :row_hash, county_approved_on = :county_approved_on,
    prefecture_approved_on = :prefecture_approved_on, returned_on = :returned_on, returned_by = :returned_by,
    return_reason = :return_reason, resubmitted_on = :resubmitted_on, jma_completed_on = :jma_completed_on,
    withdrawn_on = :withdrawn_on
WHERE id = :id
""", """
UPDATE applications SET member_number = :member_number, submitted_on = :submitted_on
WHERE id = :id AND (member_number IS NOT :member_number OR submitted_on IS NOT :submitted_on)
""")
_DELETE = "DELETE FROM applications WHERE id IN (SELECT value FROM json_each(:ids))"
_TABLES = RowTables(_MAX_ID, _INSERT, _UPDATE, _DELETE)


def _existing(conn: sqlite3.Connection, mode: Mode, keys: list[str]) -> dict[str, tuple]:
    return existing_rows(conn, mode, keys, _EXISTING_ALL, _EXISTING_SOME)


_COUNTY_COLUMNS = (("county_code", "county_name"), ("from_county_code", "from_county_name"))


def _check(conn: sqlite3.Connection, rows: list) -> dict[str, str]:
    return unknown_counties(conn, rows, _COUNTY_COLUMNS)


def write_applications(conn: sqlite3.Connection, upserts: Sequence[ApplicationRow], deletes: Sequence[str],
                       old: dict[str, tuple]) -> None:
    """Write applications with their dated steps; delete others. A changed one keeps its id."""
    add_counties(conn, upserts, _COUNTY_COLUMNS)
    write_numbered_rows(conn, _TABLES, upserts, deletes, old, lambda row, id_: {
        "id": id_, "application_number": row.application_number, "member_number": row.member_number,
        "kind": row.kind, "county_code": row.county_code, "from_county_code": row.from_county_code,
        "stage": row.stage, "state": row.state, "row_hash": row.row_hash(),
        **step_cells(STEPS, row.dates, row.returned_by, row.return_reason)})


APPLICATION_IMPORT = ImportKind("applications", "申請", APPLICATIONS, "last_sync_applications",
                                _existing, write_applications, lambda conn: load_application_rows(conn),
                                "applications.csv", _check)


# ---------------------------------------------------------------- reading back (exports, round trips)

_ALL = """
SELECT a.application_number, a.member_number, a.kind, a.county_code, a.from_county_code, a.stage, a.state,
       a.submitted_on, a.county_approved_on, a.prefecture_approved_on, a.returned_on, a.resubmitted_on,
       a.jma_completed_on, a.withdrawn_on, a.returned_by, a.return_reason, c.name, f.name
FROM applications AS a JOIN associations AS c ON c.code = a.county_code
LEFT JOIN associations AS f ON f.code = a.from_county_code
ORDER BY a.id
"""


def load_application_rows(conn: sqlite3.Connection) -> list[ApplicationRow]:
    """Every application of a records database, as its file carries it."""
    return [ApplicationRow(number, member, kind, county, from_county, stage, state, tuple(dates),
                           returned_by, reason, name, from_name)
            for number, member, kind, county, from_county, stage, state, *dates, returned_by, reason, name, from_name
            in conn.execute(_ALL)]
