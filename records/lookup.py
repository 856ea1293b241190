"""Read-only lookups of members, procedures, delivery settings, institutions and reports.

The help desk never writes member data: this layer opens the records database
with a `mode=ro` URI and `PRAGMA query_only`, so even a bug cannot change it.

Every lookup follows the same shape, which is what keeps refusals uninformative:
1. run the same queries whatever the asker and whether or not the record exists;
2. build the record's `Scope` and ask `access.may_see` (the only access check);
3. write the access log (masked identifiers), allowed or refused;
4. return the record, or raise the kind's NotFound (AccessDenied when the asker may
   see nothing at all); the edges render all of them with one sentence.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from rapidfuzz import fuzz, process

from storage.sqlite import ThreadConnections, connect

from . import names
from .access import (Asker, Scope, mask_identifier, mask_member_number, may_look_up, may_see,
                     search_area, AccessLog)
from .errors import (AccessDenied, ApplicationNotFound, DatabaseMissing, InstitutionNotFound,
                     InvalidQuery, MemberNotFound, RecordUnavailable, ReportNotFound)
from .leadtime import UpdateWindow, delivery_of_month, estimate_window
from .schema import DEMO_KEY
from .vocab import DESTINATION_JA, PUBLICATION_JA, PUBLICATIONS, STATUS_JA

# ---------------------------------------------------------------- labels (Japanese, for screens)

KIND_JA = {"admission": "入会届", "transfer": "異動届"}
LEVEL_JA = {"applicant": "申請者", "institution": "医療機関", "county": "郡市区等医師会",
            "prefecture": "都道府県医師会", "jma": "日本医師会"}
ACTION_JA = {"submitted": "提出", "approved": "承認", "returned": "差戻し", "resubmitted": "再提出",
             "completed": "手続き完了", "withdrawn": "取下げ"}
MASTER_STATUS_JA = {
    "in_master": "医療機関マスタに掲載済み",
    "waiting_bureau": "厚生局の登録待ち（手入力の医療機関）",
    "unmatched": "自動更新の対象外（同一医療機関とみなされない変更）",
}
SOURCE_JA = {"vendor": "販売元からの納品", "manual": "手入力"}
REPORT_STATE_JA = {"in_review": "確認中", "returned": "差戻し", "approved": "承認済み"}

# Fuzzy search: how many candidates the SQL prefilter may hand to rapidfuzz, and
# the lowest score shown (one wrong kanji in a 3-character name scores 67).
GRAM_CANDIDATES = 300
PREFIX_CANDIDATES = 200
MIN_SCORE = 60.0
# Institution name search outside the asker's prefecture (institution_candidates_sql): how many gram
# rows of the query's rarest grams it reads, and how many of those institutions it counts in full.
FAR_GRAM_BUDGET = 2000
FAR_CANDIDATES = 1000


@dataclass(frozen=True)
class Association:
    code: str
    name: str


@dataclass(frozen=True)
class Member:
    member_number: str
    name: str
    kana: str
    status: str
    county: Association
    prefecture: Association
    workplace_code: str | None
    workplace_name: str | None
    joined_on: str | None
    withdrawn_on: str | None
    updated_on: str | None

    @property
    def status_label(self) -> str:
        return STATUS_JA[self.status]


@dataclass(frozen=True)
class MemberMatch:
    member: Member
    score: float


@dataclass(frozen=True)
class StageEvent:
    happened_on: str
    level: str
    action: str
    reason: str | None

    @property
    def label(self) -> str:
        text = f"{self.happened_on} {LEVEL_JA[self.level]} {ACTION_JA[self.action]}"
        return f"{text}（理由: {self.reason}）" if self.reason else text


def _where(stage: str, state: str) -> str:
    if state == "completed":
        return "手続き完了"
    if state == "approved":
        return "承認済み"
    if state == "withdrawn":
        return "取下げ"
    if state == "returned":
        return f"{LEVEL_JA[stage]}から差戻し中"
    return f"{LEVEL_JA[stage]}で確認中"


def _last_return(history: tuple[StageEvent, ...]) -> str | None:
    for event in reversed(history):
        if event.action == "returned":
            return event.reason
    return None


@dataclass(frozen=True)
class Application:
    application_number: str
    member_number: str
    kind: str
    county: Association
    from_county: Association | None
    submitted_on: str
    stage: str
    state: str
    history: tuple[StageEvent, ...]

    @property
    def kind_label(self) -> str:
        return KIND_JA[self.kind]

    @property
    def status_label(self) -> str:
        """Where it stands, e.g. 「都道府県医師会で確認中」「郡市区等医師会から差戻し中」."""
        return _where(self.stage, self.state)

    @property
    def return_reason(self) -> str | None:
        """Reason of the current return (差戻し), if it is returned now."""
        return _last_return(self.history) if self.state == "returned" else None


@dataclass(frozen=True)
class DeliverySetting:
    publication: str
    send: bool | None
    destination: str | None

    @property
    def label(self) -> str:
        title = PUBLICATION_JA[self.publication]
        if self.send is None:
            return f"{title}: 未設定"
        if not self.send:
            return f"{title}: 送付しない"
        return f"{title}: 送付する（送付先: {DESTINATION_JA[self.destination]}）"

    @property
    def sentence(self) -> str:
        """The same as `label`, said as a sentence (for a chat answer)."""
        title = PUBLICATION_JA[self.publication]
        if self.send is None:
            return f"{title}は、まだ設定されていません（未設定）。"
        if not self.send:
            return f"{title}は「送付しない」設定です。"
        return f"{title}は「送付する」設定で、送付先は{DESTINATION_JA[self.destination]}です。"


@dataclass(frozen=True)
class DeliverySettings:
    member_number: str
    name: str
    items: tuple[DeliverySetting, ...]


@dataclass(frozen=True)
class Institution:
    id: int
    institution_code: str | None
    name: str
    kana: str
    postal_code: str | None
    address: str
    prefecture: Association
    county: Association
    source: str
    master_status: str
    filed_on: str | None
    registered_on: str | None
    window: UpdateWindow | None
    overdue: bool

    @property
    def status_label(self) -> str:
        return MASTER_STATUS_JA[self.master_status]

    @property
    def advice(self) -> str:
        """One Japanese sentence on what to expect or do next."""
        if self.master_status == "in_master":
            return f"医療機関マスタに掲載されています（反映日: {self.registered_on or '不明'}）。"
        if self.master_status == "unmatched":
            return ("同一の医療機関とみなされない変更のため、自動では更新されません。"
                    "MAMIS運営事務局（0120-110-030）にお問い合わせください。")
        if self.window is None:
            return "厚生局への届出日が分からないため見込みを出せません。MAMIS運営事務局にお問い合わせください。"
        w = self.window
        text = (f"厚生局の登録待ちです。届出日 {w.filed_on} から見ると、"
                f"{w.earliest_night}〜{w.latest_night} の週末夜間のマスタ更新で反映される見込みです（目安）。")
        if w.latest_delivery is not None:
            text += f"{w.latest_delivery.year}年{w.latest_delivery.month}月納品分のマスタには載っていません。"
        if w.missed:
            text += "その納品分までに載る見込みだったため、MAMIS運営事務局（0120-110-030）にお問い合わせください。"
        elif self.overdue:
            text += "見込みの時期を過ぎているため、MAMIS運営事務局（0120-110-030）にお問い合わせください。"
        return text


@dataclass(frozen=True)
class FamilyDoctorReport:
    institution_code: str | None
    institution_name: str
    county: Association
    fiscal_year: int
    submitted_on: str
    stage: str
    state: str
    history: tuple[StageEvent, ...]

    @property
    def status_label(self) -> str:
        return _where(self.stage, self.state)

    @property
    def return_reason(self) -> str | None:
        return _last_return(self.history) if self.state == "returned" else None

    @property
    def fiscal_year_label(self) -> str:
        return f"{self.fiscal_year}年度（令和{self.fiscal_year - 2018}年度）"


# ---------------------------------------------------------------- connection

def open_readonly(path: Path | str) -> sqlite3.Connection:
    """Open the records database so that no statement can write to it.

    `mode=ro` makes SQLite open the file read-only; `query_only` additionally
    refuses any write statement on this connection. Two locks, one door.
    """
    p = Path(path)
    if not p.exists():
        raise DatabaseMissing(p)
    return connect(p, readonly=True)


_MEMBER_NUMBER = re.compile(r"^[0-9]{7}$")
_INSTITUTION_CODE = re.compile(r"^[0-9]{10}$")
_APPLICATION_NUMBER = re.compile(r"^A[0-9]{4}-[0-9]{6}$")


def _key(value: str, pattern: re.Pattern, field: str) -> str:
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not pattern.match(text):
        raise InvalidQuery(field, value)
    return text


# ---------------------------------------------------------------- SQL

_MEMBER_COLUMNS = """
    m.member_number, m.name, m.kana, m.status, m.county_code, c.name, c.prefecture_code, p.name,
    m.workplace_code, m.workplace_name, m.joined_on, m.withdrawn_on, m.updated_on
"""
_MEMBER_FROM = """
    FROM members AS m
    JOIN associations AS c ON c.code = m.county_code
    JOIN associations AS p ON p.code = c.prefecture_code
"""
_MEMBER_BY_NUMBER = f"SELECT {_MEMBER_COLUMNS} {_MEMBER_FROM} WHERE m.member_number = :member_number"
_MEMBERS_BY_NUMBERS = f"""
SELECT {_MEMBER_COLUMNS} {_MEMBER_FROM}
WHERE m.member_number IN (SELECT value FROM json_each(:numbers))
"""

_APPLICATION_COLUMNS = """
    a.id, a.application_number, a.member_number, a.kind, a.county_code, c.name, c.prefecture_code,
    a.from_county_code, f.name, f.prefecture_code, a.submitted_on, a.stage, a.state
"""
_APPLICATION_FROM = """
    FROM applications AS a
    JOIN associations AS c ON c.code = a.county_code
    LEFT JOIN associations AS f ON f.code = a.from_county_code
"""
_APPLICATIONS_OF_MEMBER = f"""
SELECT {_APPLICATION_COLUMNS} {_APPLICATION_FROM}
WHERE a.member_number = :member_number
ORDER BY a.submitted_on DESC, a.id DESC
"""
_APPLICATION_BY_NUMBER = f"""
SELECT {_APPLICATION_COLUMNS} {_APPLICATION_FROM}
WHERE a.application_number = :application_number
"""
_APPLICATION_EVENTS = """
SELECT happened_on, stage, action, reason FROM application_events
WHERE application_id = :id ORDER BY seq
"""

_DELIVERY = """
SELECT publication, send, destination FROM delivery_settings WHERE member_number = :member_number
"""

_INSTITUTION_COLUMNS = """
    i.id, i.institution_code, i.name, i.kana, i.postal_code, i.address, i.prefecture_code, p.name,
    i.county_code, c.name, i.source, i.master_status, i.filed_on, i.registered_on
"""
_INSTITUTION_FROM = """
    FROM institutions AS i
    JOIN associations AS p ON p.code = i.prefecture_code
    JOIN associations AS c ON c.code = i.county_code
"""
_INSTITUTION_BY_CODE = f"SELECT {_INSTITUTION_COLUMNS} {_INSTITUTION_FROM} WHERE i.institution_code = :code"
_INSTITUTIONS_BY_IDS = f"""
SELECT {_INSTITUTION_COLUMNS} {_INSTITUTION_FROM}
WHERE i.id IN (SELECT value FROM json_each(:ids))
"""
# What a name search ranks by: the stored keys are the folded name and kana (records/names.py).
_INSTITUTION_KEYS_BY_IDS = """
SELECT id, name, name_key, kana_key, prefecture_code FROM institutions
WHERE id IN (SELECT value FROM json_each(:ids))
"""
# Members working at an institution: they may see its entry and its report.
_WORKERS = """
SELECT member_number FROM members
WHERE (:code IS NOT NULL AND workplace_code = :code)
   OR (:code IS NULL AND workplace_code IS NULL AND workplace_name = :name)
"""
_WORKPLACE_OF = "SELECT workplace_code, workplace_name FROM members WHERE member_number = :member_number"

_REPORTS_OF_INSTITUTION = """
SELECT r.id, r.fiscal_year, r.submitted_on, r.stage, r.state
FROM fd_reports AS r JOIN institutions AS i ON i.id = r.institution_id
WHERE i.institution_code = :code AND (:fiscal_year IS NULL OR r.fiscal_year = :fiscal_year)
ORDER BY r.fiscal_year DESC
LIMIT 1
"""
_REPORT_EVENTS = """
SELECT happened_on, stage, action, reason FROM fd_report_events WHERE report_id = :id ORDER BY seq
"""

# Migration 0005 is applied by the next import (the help desk only reads); until then /readyz reports
# it pending and an institution name search offers the names that start with the query.
_GRAMS_BY_PREFECTURE = "SELECT 1 FROM pragma_table_info('institution_grams') WHERE name = 'prefecture_code'"

# The latest master delivery imported (配信月, YYYY-MM): a waiting clinic was not in it (records/leadtime.py).
_LATEST_DELIVERY = "SELECT max(delivered_in) FROM institutions"

_COUNTIES_OF_PREFECTURE = """
SELECT code FROM associations WHERE prefecture_code = :prefecture_code AND level = 'county'
"""
_META = "SELECT value FROM meta WHERE key = :key"


def member_prefix_sql(by_kana: bool) -> str:
    """Candidates whose name (or kana) key starts with the query, in the asker's counties.

    Catches exact names typed any which way (folding makes them equal) and
    family-name-only questions. The index begins with the county, so a county's
    staff never touch another county's rows.
    """
    key = "kana_key" if by_kana else "name_key"
    return f"""
    SELECT member_number, {key} FROM members
    WHERE county_code IN (SELECT value FROM json_each(:counties))
      AND {key} >= :prefix AND {key} < :prefix_end
    LIMIT {PREFIX_CANDIDATES}"""


# Candidates sharing the most bigrams with the query (wrong kanji, typos), in the
# asker's counties; only run when the prefix query found no exact match.
_MEMBER_GRAM_CANDIDATES = f"""
SELECT member_number, count(*) AS hits FROM member_grams
WHERE gram IN (SELECT value FROM json_each(:grams))
  AND county_code IN (SELECT value FROM json_each(:counties))
GROUP BY member_number
ORDER BY hits DESC
LIMIT {GRAM_CANDIDATES}
"""


def institution_candidates_sql(with_grams: bool) -> str:
    """The candidate query of an institution name search: the 300 sharing most bigrams, own prefecture
    first on ties, plus the names that start with the query.

    Counting every institution that shares a bigram reads tens of thousands of rows at 180,000
    institutions (クリニック names share ヤマ, カン, イチ by the thousand). So only the asker's
    prefecture is counted in full (the index seek on gram and prefecture is about 1/47 of it); the
    rest of the country is read through the query's rarest grams, as many as fit FAR_GRAM_BUDGET
    rows, and the best FAR_CANDIDATES of those are counted over all the grams. Skipping j of the k
    grams can only miss institutions that share at most j of them, so the strongest tiers are the
    same as counting everything; the weakest tier is drawn from the rarer grams, where counting
    everything broke its ties arbitrarily anyway.
    """
    prefix = f"""
    SELECT id FROM institutions
    WHERE name_key >= :prefix AND name_key < :prefix_end
    LIMIT {PREFIX_CANDIDATES}"""
    if not with_grams:
        return prefix
    return f"""
    WITH query AS MATERIALIZED (
        SELECT value AS gram,
               (SELECT count(*) FROM (SELECT 1 FROM institution_grams WHERE gram = value
                                      LIMIT {FAR_GRAM_BUDGET + 1})) AS postings
        FROM json_each(:grams)),
    rarest AS (
        SELECT gram FROM (SELECT gram, postings, sum(postings) OVER (ORDER BY postings, gram) - postings AS before
                          FROM query)
        WHERE before = 0 OR before + postings <= {FAR_GRAM_BUDGET}),
    far AS MATERIALIZED (
        SELECT institution_id AS id, prefecture_code FROM (
            SELECT institution_id, prefecture_code FROM institution_grams
            WHERE gram IN (SELECT gram FROM rarest) AND prefecture_code <> :prefecture_code
            LIMIT {FAR_GRAM_BUDGET})
        GROUP BY institution_id
        ORDER BY count(*) DESC
        LIMIT {FAR_CANDIDATES}),
    shared AS (
        SELECT institution_id AS id, count(*) AS hits, 1 AS near FROM institution_grams
        WHERE gram IN (SELECT gram FROM query) AND prefecture_code = :prefecture_code
        GROUP BY institution_id
        UNION ALL
        SELECT g.institution_id, count(*), 0
        FROM far CROSS JOIN query AS q
        JOIN institution_grams AS g
          ON g.gram = q.gram AND g.prefecture_code = far.prefecture_code AND g.institution_id = far.id
        GROUP BY g.institution_id)
    SELECT * FROM ({prefix})
    UNION
    SELECT * FROM (SELECT id FROM shared ORDER BY hits DESC, near DESC LIMIT {GRAM_CANDIDATES})"""


# ---------------------------------------------------------------- row → value

def _member(row) -> Member:
    (number, name, kana, status, county, county_name, pref, pref_name,
     wcode, wname, joined, withdrawn, updated) = row
    return Member(number, name, kana, status, Association(county, county_name),
                  Association(pref, pref_name), wcode, wname, joined, withdrawn, updated)


def _member_scope(row) -> Scope:
    if row is None:
        return Scope()
    return Scope(areas=frozenset({(row[4], row[6])}), people=frozenset({row[0]}))


def _application_scope(row) -> Scope:
    """An application belongs to its county, and for a transfer to the county it leaves as well, and
    to its member: the same scope whether it is asked for by its number or in a member's list."""
    if row is None:
        return Scope()
    areas = {(row[4], row[6])}
    if row[7]:
        areas.add((row[7], row[9]))
    return Scope(areas=frozenset(areas), people=frozenset({row[2]}))


def _events(rows) -> tuple[StageEvent, ...]:
    return tuple(StageEvent(d, stage, action, reason) for d, stage, action, reason in rows)


class Records:
    """The lookup service: built from the two paths, used by the chat core.

    Connections are opened lazily, one per thread, and reopened when the records
    file is replaced (demo-data --force). `today` is injectable for the lead-time
    estimate. Call `close()` when done (tests, CLI).
    """

    def __init__(self, records_db: Path | str, audit_db: Path | str, *,
                 today: Callable[[], date] = date.today,
                 trace: Callable[[str], None] | None = None):
        self.records_db = Path(records_db)
        self.log = AccessLog(Path(audit_db))
        self._today = today
        self._trace = trace
        self._connections = ThreadConnections(self._open, version=self._file_identity)

    # -- plumbing

    def _file_identity(self) -> int:
        """The records file's inode: a new one means the file was replaced, so reconnect."""
        try:
            return os.stat(self.records_db).st_ino
        except FileNotFoundError:
            raise DatabaseMissing(self.records_db) from None

    def _open(self) -> sqlite3.Connection:
        conn = open_readonly(self.records_db)
        if self._trace:
            conn.set_trace_callback(self._trace)
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's read-only connection to the records database."""
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()
        self.log.close()

    def __enter__(self) -> "Records":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def dataset_label(self) -> str | None:
        """「デモデータ（架空）」 when the database is demo data, for every screen to show."""
        row = self.connection().execute(_META, {"key": DEMO_KEY}).fetchone()
        return row[0] if row else None

    def _decide(self, asker: Asker, scope: Scope, action: str, record: str | None,
                not_found: type[RecordUnavailable]) -> None:
        """The common tail of every lookup: check, log, refuse alike."""
        allowed = may_see(asker, scope)
        self.log.write(asker, action, record, allowed)
        if not allowed:
            raise AccessDenied() if not may_look_up(asker) else not_found()

    # -- members

    def member(self, asker: Asker, member_number: str) -> Member:
        """A member by number (会員番号)."""
        number = _key(member_number, _MEMBER_NUMBER, "member_number")
        row = self.connection().execute(_MEMBER_BY_NUMBER, {"member_number": number}).fetchone()
        self._decide(asker, _member_scope(row), "member", mask_member_number(number), MemberNotFound)
        return _member(row)

    def find_members(self, asker: Asker, query: str, limit: int = 5) -> list[MemberMatch]:
        """Members the asker may see whose name or kana is near `query`, best first.

        Tolerates hiragana for katakana, half-width kana, missing or extra spaces,
        old character forms, honorifics (先生, 様) and one or two wrong characters.
        Several results with score 100 mean the name is ambiguous: offer choices.
        """
        text = names.strip_honorifics(query or "")
        folded = names.fold(text)
        if not folded:
            raise InvalidQuery("query", query)
        conn = self.connection()
        area = search_area(asker)
        by_kana = names.is_katakana(folded)
        if area.member_number is not None:
            numbers = [area.member_number]
        elif area.nowhere:
            numbers = []
        else:
            counties = ([area.county_code] if area.county_code else
                        [r[0] for r in conn.execute(_COUNTIES_OF_PREFECTURE,
                                                    {"prefecture_code": area.prefecture_code})])
            params = {"counties": json.dumps(counties), "prefix": folded, "prefix_end": folded + "\U0010ffff",
                      "grams": json.dumps(sorted(names.bigrams(folded)), ensure_ascii=False)}
            prefixed = conn.execute(member_prefix_sql(by_kana), params).fetchall()
            numbers = [n for n, _key in prefixed]
            if len(folded) > 1 and not any(key == folded for _n, key in prefixed):
                seen = set(numbers)
                numbers += [n for n, _hits in conn.execute(_MEMBER_GRAM_CANDIDATES, params) if n not in seen]
        rows = {r[0]: r for r in conn.execute(_MEMBERS_BY_NUMBERS, {"numbers": json.dumps(numbers)})}
        if not may_look_up(asker):
            self.log.write(asker, "member_search", None, False)
            raise AccessDenied()
        out = [MemberMatch(_member(rows[n]), score)
               for n, score in _rank_members(folded, by_kana, rows.values(), limit)
               if may_see(asker, _member_scope(rows[n]))]
        # One log row per search (one commit), naming every member shown, masked. A search that shows
        # nobody is logged as refused: not found and refused read the same to the asker, and so here.
        self.log.write(asker, "member_search",
                       ",".join(mask_member_number(m.member.member_number) for m in out) or None, bool(out))
        return out

    # -- procedures

    def applications(self, asker: Asker, member_number: str) -> list[Application]:
        """A member's admission and transfer applications (入会届・異動届) the asker may see, newest first.

        Each application is checked on its own, exactly as when it is asked for by its number: a
        county sees a transfer that leaves it, but not the member's later transfer between two other
        counties. The list is refused (like a member that does not exist) when the asker may see
        neither the member nor any of the applications.
        """
        number = _key(member_number, _MEMBER_NUMBER, "member_number")
        conn = self.connection()
        member = conn.execute(_MEMBER_BY_NUMBER, {"member_number": number}).fetchone()
        apps = conn.execute(_APPLICATIONS_OF_MEMBER, {"member_number": number}).fetchall()
        visible = [row for row in apps if may_see(asker, _application_scope(row))]
        scope = _application_scope(visible[0]) if visible else _member_scope(member)
        self._decide(asker, scope, "applications", mask_member_number(number), MemberNotFound)
        return [self._application(conn, row) for row in visible]

    def application(self, asker: Asker, application_number: str) -> Application:
        """One application by its number (e.g. A2026-000001), with its stage history."""
        key = _key(application_number, _APPLICATION_NUMBER, "application_number")
        conn = self.connection()
        row = conn.execute(_APPLICATION_BY_NUMBER, {"application_number": key}).fetchone()
        self._decide(asker, _application_scope(row), "application", mask_identifier(key, 3), ApplicationNotFound)
        return self._application(conn, row)

    def _application(self, conn, row) -> Application:
        (app_id, number, member, kind, county, county_name, _pref, from_county, from_name,
         _from_pref, submitted, stage, state) = row
        history = _events(conn.execute(_APPLICATION_EVENTS, {"id": app_id}))
        return Application(number, member, kind, Association(county, county_name),
                           Association(from_county, from_name) if from_county else None,
                           submitted, stage, state, history)

    # -- delivery settings

    def delivery_settings(self, asker: Asker, member_number: str) -> DeliverySettings:
        """送付区分 of a member for the three publications; missing ones are 未設定."""
        number = _key(member_number, _MEMBER_NUMBER, "member_number")
        conn = self.connection()
        member = conn.execute(_MEMBER_BY_NUMBER, {"member_number": number}).fetchone()
        settings = {pub: (send, dest) for pub, send, dest in conn.execute(_DELIVERY, {"member_number": number})}
        self._decide(asker, _member_scope(member), "delivery_settings", mask_member_number(number),
                     MemberNotFound)
        items = []
        for pub in PUBLICATIONS:
            send, dest = settings.get(pub, (None, None))
            items.append(DeliverySetting(pub, None if send is None else bool(send), dest))
        return DeliverySettings(number, member[1], tuple(items))

    # -- institutions

    def _institution_scope(self, conn, row, code: str | None = None) -> Scope:
        """Scope of an institution: its county, the members working there, and all staff.

        The workers query runs even when nothing was found (with the code that was
        asked for), so a refusal costs the same whether the institution exists.
        """
        params = {"code": row[1], "name": row[2]} if row else {"code": code, "name": ""}
        workers = [r[0] for r in conn.execute(_WORKERS, params)]
        if row is None:
            return Scope()
        return Scope(areas=frozenset({(row[8], row[6])}), people=frozenset(workers), staff_wide=True)

    def _institution(self, row) -> Institution:
        (inst_id, code, name, kana, postal, address, pref, pref_name, county, county_name,
         source, status, filed, registered) = row
        window = None
        if status == "waiting_bureau" and filed:
            latest = self.connection().execute(_LATEST_DELIVERY).fetchone()[0]
            window = estimate_window(date.fromisoformat(filed), delivery_of_month(latest) if latest else None)
        overdue = bool(window and window.overdue(self._today()))
        return Institution(inst_id, code, name, kana, postal, address, Association(pref, pref_name),
                           Association(county, county_name), source, status, filed, registered,
                           window, overdue)

    def institution(self, asker: Asker, institution_code: str) -> Institution:
        """An institution of the master by its 10-digit code, with its master status."""
        code = _key(institution_code, _INSTITUTION_CODE, "institution_code")
        conn = self.connection()
        row = conn.execute(_INSTITUTION_BY_CODE, {"code": code}).fetchone()
        self._decide(asker, self._institution_scope(conn, row, code), "institution", mask_identifier(code, 2),
                     InstitutionNotFound)
        return self._institution(row)

    def find_institutions(self, asker: Asker, query: str, limit: int = 5) -> list[tuple[Institution, float]]:
        """Institutions whose name is near `query` (「〇〇クリニックはマスタに載っていますか」).

        Includes hand-entered clinics still waiting for the bureau, with their
        estimated window. Staff see the whole master; a doctor only their workplace.
        """
        folded = names.fold(query or "")
        if not folded:
            raise InvalidQuery("query", query)
        conn = self.connection()
        who = asker.effective()
        core = names.institution_core(folded)
        grams = sorted(names.bigrams(core) if len(core) > 1 else {core})
        prefecture = ""
        if who is not None and who.role == "staff":
            prefecture = who.association_code[:2]
        elif who is not None and who.role == "member":
            prefecture = who.member_number[:2]
        with_grams = bool(grams) and conn.execute(_GRAMS_BY_PREFECTURE).fetchone() is not None
        ids = [r[0] for r in conn.execute(institution_candidates_sql(with_grams), {
            "grams": json.dumps(grams, ensure_ascii=False), "prefix": folded,
            "prefix_end": folded + "\U0010ffff", "prefecture_code": prefecture})]
        keys = conn.execute(_INSTITUTION_KEYS_BY_IDS, {"ids": json.dumps(ids)}).fetchall()
        if not may_look_up(asker):
            self.log.write(asker, "institution_search", None, False)
            raise AccessDenied()
        by_kana = names.is_katakana(folded)
        choices = {i: kana_key if by_kana else name_key for i, _name, name_key, kana_key, _pref in keys}
        scored = process.extract(folded, choices, scorer=fuzz.WRatio, score_cutoff=MIN_SCORE, limit=None)
        place = {i: (pref != prefecture, name) for i, name, _nk, _kk, pref in keys}
        scored.sort(key=lambda s: (-s[1], *place[s[2]]))
        out, shown = [], []
        ranked = _rows_in_order(conn, [inst_id for _key, _score, inst_id in scored], max(limit, 1))
        for _key_text, score, inst_id in scored:
            if len(out) >= limit:
                break
            row = next(ranked)
            if may_see(asker, self._institution_scope(conn, row)):
                out.append((self._institution(row), round(score, 1)))
                shown.append(mask_identifier(row[1], 2) if row[1] else f"手入力#{inst_id}")
        self.log.write(asker, "institution_search", ",".join(shown) or None, bool(shown))
        return out

    # -- family-doctor function reports

    def family_doctor_report(self, asker: Asker, institution_code: str,
                             fiscal_year: int | None = None) -> FamilyDoctorReport:
        """かかりつけ医機能報告 of an institution (latest year unless given), with history."""
        code = _key(institution_code, _INSTITUTION_CODE, "institution_code")
        conn = self.connection()
        inst = conn.execute(_INSTITUTION_BY_CODE, {"code": code}).fetchone()
        report = conn.execute(_REPORTS_OF_INSTITUTION, {"code": code, "fiscal_year": fiscal_year}).fetchone()
        scope = self._institution_scope(conn, inst, code)
        scope = Scope(areas=scope.areas, people=scope.people) if report else Scope()
        self._decide(asker, scope, "family_doctor_report", mask_identifier(code, 2), ReportNotFound)
        report_id, year, submitted, stage, state = report
        history = _events(conn.execute(_REPORT_EVENTS, {"id": report_id}))
        return FamilyDoctorReport(inst[1], inst[2], Association(inst[8], inst[9]), year, submitted,
                                  stage, state, history)

    # -- recognising a name in the chat (bot/lookups/requests.py) ------------------------------------
    # Read-only and not logged: it only says whether a phrase is exactly an institution's name; the
    # lookup that follows (find_institutions, institution) checks access and writes the log.

    _KNOWN_INSTITUTION_KEYS = """
    SELECT DISTINCT name_key FROM institutions WHERE name_key IN (SELECT value FROM json_each(:keys))
    """

    def known_institution_names(self, keys: list[str]) -> set[str]:
        """Which of these folded names (`names.fold`) are exactly the name of an institution."""
        rows = self.connection().execute(self._KNOWN_INSTITUTION_KEYS,
                                         {"keys": json.dumps(keys, ensure_ascii=False)})
        return {r[0] for r in rows}


def _rows_in_order(conn: sqlite3.Connection, ids: list[int], chunk: int):
    """Full institution rows for ranked ids, in their order, read `chunk` at a time.

    A staff search shows the first few; a doctor's skips every institution but their own. Reading
    the rows as the ranking is walked costs a handful instead of all candidates (the costliest
    read of a search at 180,000 institutions when done for all of them).
    """
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        rows = {r[0]: r for r in conn.execute(_INSTITUTIONS_BY_IDS, {"ids": json.dumps(part)})}
        yield from (rows[i] for i in part)


def _rank_members(folded: str, by_kana: bool, rows, limit: int) -> list[tuple[str, float]]:
    """Score candidates against the query with rapidfuzz: full key and family part, best wins."""
    idx = 2 if by_kana else 1
    full = {r[0]: names.fold(r[idx]) for r in rows}
    family = {r[0]: names.family_part(r[idx]) for r in rows}
    best: dict[str, float] = {}
    for choices in (full, family):
        for _text, score, number in process.extract(folded, choices, scorer=fuzz.ratio,
                                                    score_cutoff=MIN_SCORE, limit=None):
            if score > best.get(number, 0.0):
                best[number] = score
    kana_of = {r[0]: r[2] for r in rows}
    ranked = sorted(best.items(), key=lambda item: (-item[1], kana_of[item[0]], item[0]))
    return [(n, round(s, 1)) for n, s in ranked[:limit]]
