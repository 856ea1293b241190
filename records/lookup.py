"""Read-only lookups of members, procedures, delivery settings, institutions and reports.

The help desk never writes member data: this layer opens the records database
with a `mode=ro` URI and `PRAGMA query_only`, so even a bug cannot change it.

Every lookup follows the same shape, which is what keeps refusals uninformative:
1. run the same queries whatever the asker and whether or not the record exists;
2. build the record's `Scope` and ask `access.may_see` (the only access check);
3. write the access log (masked identifiers), allowed or refused;
4. return the record, or raise the kind's NotFound (AccessDenied when the asker may
   see nothing at all); the edges render all of them with one sentence.

What a lookup returns is in records/values.py; how a name search picks and ranks its candidates,
in records/name_search.py.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import unicodedata
from datetime import date
from pathlib import Path
from typing import Callable

from storage.sqlite import ThreadConnections, connect

from . import names
from .access import (Asker, Scope, mask_identifier, mask_member_number, may_look_up, may_see,
                     search_area, AccessLog)
from .errors import (AccessDenied, ApplicationNotFound, DatabaseMissing, InstitutionNotFound,
                     InvalidQuery, MemberNotFound, RecordUnavailable, ReportNotFound)
from .import_applications import STEPS as APPLICATION_STEPS
from .import_reports import STEPS as REPORT_STEPS
from .leadtime import delivery_of_month, estimate_window
from .name_search import institution_candidates, member_candidates, rank_institutions, rank_members
from .schema import DEMO_KEY, steps_in_rows
from .steps import Step, events_from_steps, steps_from_events
from .values import (Application, Association, DeliverySetting, DeliverySettings, FamilyDoctorReport,
                     Institution, Member, MemberMatch, StageEvent)
from .vocab import PUBLICATIONS


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
# An application's dated steps (records/steps.py orders them into its history); before migration 0008,
# its events.
_APPLICATION_STEPS = """
SELECT submitted_on, county_approved_on, prefecture_approved_on, returned_on, resubmitted_on, jma_completed_on,
       withdrawn_on, returned_by, return_reason
FROM applications WHERE id = :id
"""
_APPLICATION_EVENTS = """
SELECT happened_on, stage, action, reason FROM application_events WHERE application_id = :id ORDER BY seq
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
_REPORT_STEPS = """
SELECT submitted_on, county_approved_on, prefecture_approved_on, returned_on, resubmitted_on, returned_by,
       return_reason
FROM fd_reports WHERE id = :id
"""
_REPORT_EVENTS = """
SELECT happened_on, stage, action, reason FROM fd_report_events WHERE report_id = :id ORDER BY seq
"""

# The latest master delivery imported (配信月, YYYY-MM): a waiting clinic was not in it (records/leadtime.py).
_LATEST_DELIVERY = "SELECT max(delivered_in) FROM institutions"

_META = "SELECT value FROM meta WHERE key = :key"


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


def _history(conn, steps: tuple[Step, ...], steps_sql: str, events_sql: str, id_: int) -> tuple[StageEvent, ...]:
    """A row's dated steps in the order they happened (from its events, before migration 0008)."""
    if steps_in_rows(conn):
        *dates, returned_by, reason = conn.execute(steps_sql, {"id": id_}).fetchone()
    else:
        dates, returned_by, reason = steps_from_events(steps, conn.execute(events_sql, {"id": id_}).fetchall())
    return tuple(StageEvent(*event) for event in events_from_steps(steps, tuple(dates), returned_by, reason))


def _application(conn, row) -> Application:
    (app_id, number, member, kind, county, county_name, _pref, from_county, from_name,
     _from_pref, submitted, stage, state) = row
    history = _history(conn, APPLICATION_STEPS, _APPLICATION_STEPS, _APPLICATION_EVENTS, app_id)
    return Application(number, member, kind, Association(county, county_name),
                       Association(from_county, from_name) if from_county else None,
                       submitted, stage, state, history)


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
        by_kana = names.is_katakana(folded)
        numbers = member_candidates(conn, search_area(asker), folded, by_kana)
        rows = {r[0]: r for r in conn.execute(_MEMBERS_BY_NUMBERS, {"numbers": json.dumps(numbers)})}
        if not may_look_up(asker):
            self.log.write(asker, "member_search", None, False)
            raise AccessDenied()
        out = [MemberMatch(_member(rows[n]), score)
               for n, score in rank_members(folded, by_kana, rows.values(), limit)
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
        return [_application(conn, row) for row in visible]

    def application(self, asker: Asker, application_number: str) -> Application:
        """One application by its number (e.g. A2026-000001), with its stage history."""
        key = _key(application_number, _APPLICATION_NUMBER, "application_number")
        conn = self.connection()
        row = conn.execute(_APPLICATION_BY_NUMBER, {"application_number": key}).fetchone()
        self._decide(asker, _application_scope(row), "application", mask_identifier(key, 3), ApplicationNotFound)
        return _application(conn, row)

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
        prefecture = ""
        if who is not None and who.role == "staff":
            prefecture = who.association_code[:2]
        elif who is not None and who.role == "member":
            prefecture = who.member_number[:2]
        ids = institution_candidates(conn, folded, prefecture)
        keys = conn.execute(_INSTITUTION_KEYS_BY_IDS, {"ids": json.dumps(ids)}).fetchall()
        if not may_look_up(asker):
            self.log.write(asker, "institution_search", None, False)
            raise AccessDenied()
        scored = rank_institutions(folded, keys, prefecture)
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
        history = _history(conn, REPORT_STEPS, _REPORT_STEPS, _REPORT_EVENTS, report_id)
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
