"""A fictional but realistic records database, for demos, tests and benchmarks.

Built from the material in records/demo_material.py (names, the well-known records, the random
sources); numbers follow the formats in docs/records.md; dates run up to November 2026. The same
seed always produces the same database. The `meta` table says デモデータ（架空）, so every screen
can say so too. The rows are written by the importers' own writers, so the demo and a real
installation hold the same data the same way.
"""
from __future__ import annotations

import itertools
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from storage.sqlite import connect, transaction

from . import names
from .demo_material import (APPLICATION_RETURNS, REPORT_RETURNS, TRANSFER_RETURNS, WELL_KNOWN_APPLICATIONS,
                            WELL_KNOWN_INSTITUTIONS, WELL_KNOWN_MEMBERS, WELL_KNOWN_REPORTS, Builder,
                            institution_code)
from .errors import DatabaseExists
from .schema import DEMO_KEY, DEMO_LABEL, connect_writer, get_meta, set_meta
from .import_applications import STEPS as APPLICATION_STEPS, ApplicationRow, write_applications
from .import_institutions import InstitutionRow, write_institutions
from .import_reports import STEPS as REPORT_STEPS, ReportRow, write_reports
from .importer import gc_paused
from .member_csv import MemberRow
from .steps import steps_from_events
from .sync import write_members
from .vocab import PUBLICATIONS

DEFAULT_SEED = 15  # MAMIS LETTER No. 15
AS_OF = date(2026, 11, 30)  # no generated date is later than this


@dataclass(frozen=True)
class DemoSummary:
    path: Path
    members: int
    institutions: int
    applications: int
    reports: int
    counties: int
    seconds: float


# ------------------------------------------------------------------ the generator

_INSERT_COUNTY = """
INSERT INTO associations (code, level, name, prefecture_code) VALUES (:code, 'county', :name, :prefecture_code)
"""
def _institutions(b: Builder, count: int) -> tuple[list[dict], dict[str, dict]]:
    """Vendor-delivered institutions plus a few typed in by hand; returns rows and well-known ones."""
    rows, known = [], {}
    used_codes = set()
    county_names = {code: name for code, name, _p in b.counties}
    for key, (serial, county, name, kana, source, status, filed, registered) in WELL_KNOWN_INSTITUTIONS.items():
        pref = county[:2]
        code = institution_code(pref, int(county[2:]) % 100, serial) if serial else None
        used_codes.add(code)
        row = {"id": len(rows) + 1, "institution_code": code, "name": name, "kana": kana,
               "postal_code": b.fake.zipcode(), "address": b.address(county_names[county], pref),
               "prefecture_code": pref, "county_code": county, "source": source,
               "master_status": status, "filed_on": filed, "registered_on": registered, "kind": "clinic"}
        rows.append(row)
        known[key] = row
    manual_share = 0.015
    for _ in range(count):
        code_c, county_name, pref = b.county()
        manual = b.rng.random() < manual_share
        hospital = b.rng.random() < 0.08
        name, kana = b.institution_name(hospital=hospital)
        row = {"id": len(rows) + 1, "name": name, "kana": kana, "postal_code": b.fake.zipcode(),
               "kind": "hospital" if hospital else "clinic",
               "address": b.address(county_name, pref), "prefecture_code": pref,
               "county_code": code_c, "filed_on": None, "registered_on": None}
        status = "in_master"
        if manual:
            r = b.rng.random()
            status = "waiting_bureau" if r < 0.6 else ("in_master" if r < 0.9 else "unmatched")
            row["filed_on"] = (b.day(date(2026, 8, 1), date(2026, 11, 20)) if status == "waiting_bureau"
                               else b.day(date(2025, 4, 1), date(2026, 7, 31))).isoformat()
        code = None
        if status == "in_master":
            while code is None or code in used_codes:
                code = institution_code(pref, int(code_c[2:]) % 100, f"{b.rng.randrange(1000, 10000)}")
            used_codes.add(code)
            start = date.fromisoformat(row["filed_on"]) + timedelta(days=60) if manual else date(2000, 1, 1)
            row["registered_on"] = b.day(start, date(2026, 10, 31)).isoformat()
        row.update(institution_code=code, source="manual" if manual else "vendor", master_status=status)
        rows.append(row)
    for row in rows:
        row["name_key"] = names.fold(row["name"])
        row["kana_key"] = names.fold(row["kana"])
    return rows, known


def _members(b: Builder, count: int, institutions: list[dict], known_inst: dict[str, dict]) -> list[MemberRow]:
    by_county: dict[str, list[dict]] = {}
    for inst in institutions:
        by_county.setdefault(inst["county_code"], []).append(inst)
    county_names = {code: name for code, name, _p in b.counties}
    rows = []
    for number, (name, kana, county, status, work, joined, withdrawn, delivery) in WELL_KNOWN_MEMBERS.items():
        inst = known_inst.get(work) if work else None
        rows.append(MemberRow(number, name, kana, county[:2], county, county_names[county], status,
                              inst["institution_code"] if inst else None, inst["name"] if inst else None,
                              joined, withdrawn, "2026-11-15", delivery))
    # Random members never share a well-known name (even in another character form),
    # so a search for 山田太郎 or 高橋美咲 has one right answer in every demo.
    reserved = {names.fold(v[0]) for v in WELL_KNOWN_MEMBERS.values()}
    used = set(WELL_KNOWN_MEMBERS)
    rng = b.rng
    for _ in range(max(0, count - len(rows))):
        county, county_name, pref = b.county()
        number = f"{pref}{rng.randrange(10000, 100000)}"
        while number in used:
            number = f"{pref}{rng.randrange(10000, 100000)}"
        used.add(number)
        while True:
            (fam, fam_k) = b.surname()
            given, given_k = rng.choice(b.male if rng.random() < 0.75 else b.female)
            name = f"{fam}　{given}"
            if names.fold(name) not in reserved:
                break
        r = rng.random()
        status = "active" if r < 0.935 else ("pending" if r < 0.955 else "withdrawn")
        work = None
        local = by_county.get(county)
        if local and rng.random() < 0.85:
            work = rng.choice(local)
        joined = withdrawn = None
        if status != "pending":
            joined = b.day(date(1975, 4, 1), date(2026, 11, 1)).replace(day=1).isoformat()
        if status == "withdrawn":
            withdrawn = b.day(max(date.fromisoformat(joined), date(2015, 1, 1)), AS_OF).isoformat()
        delivery = []
        for pub, p_send in zip(PUBLICATIONS, (0.95, 0.9, 0.65)):
            if status == "withdrawn":
                delivery.append((0, None))
            elif rng.random() < 0.08:
                delivery.append((None, None))
            elif rng.random() < p_send:
                d = rng.random()
                dest = "workplace" if (d < 0.55 and work) else ("home" if d < 0.95 else "other")
                delivery.append((1, dest))
            else:
                delivery.append((0, None))
        rows.append(MemberRow(
            number, name, f"{fam_k}　{given_k}", pref, county, county_name, status,
            work["institution_code"] if work else None, work["name"] if work else None,
            joined, withdrawn, b.day(date(2024, 4, 1), AS_OF).isoformat(), tuple(delivery)))
    return rows


def _stage_events(b: Builder, start: date, levels: list[str], finish: str, returns: list[str],
                  outcome: str) -> tuple[list[tuple], str, str, date]:
    """Walk a procedure through its approval levels and stop at the wanted outcome.

    outcome: "completed" (every level approves), "in_review:<level>" (waiting at a
    level) or "returned:<level>" (that level sent it back with a reason).
    """
    events = [(start.isoformat(), levels[0], "submitted", None)]
    day = start
    kind, _, stop_at = outcome.partition(":")
    for level in levels[1:]:
        day = min(day + timedelta(days=b.rng.randint(3, 15)), AS_OF)
        if kind != "completed" and level == stop_at:
            if kind == "returned":
                events.append((day.isoformat(), level, "returned", b.rng.choice(returns)))
            return events, level, kind, day
        action = finish if level == levels[-1] else "approved"
        events.append((day.isoformat(), level, action, None))
    return events, "done", "completed" if finish == "completed" else "approved", day


def _application(b: Builder, serial, member_number: str, kind: str, county: str, from_county: str | None,
                 start: date, levels: list[str], returns: list[str], outcome: str) -> tuple[dict, list[tuple]]:
    events, stage, state, _ = _stage_events(b, start, levels, "completed", returns, outcome)
    return ({"application_number": f"A{start.year}-{next(serial):06d}", "member_number": member_number,
             "kind": kind, "county_code": county, "from_county_code": from_county,
             "submitted_on": start.isoformat(), "stage": stage, "state": state}, events)


def _applications(b: Builder, members: list[MemberRow]) -> list[tuple[dict, list[tuple]]]:
    out = []
    county_codes = [c for c, _n, _p in b.counties]
    levels = ["applicant", "county", "prefecture", "jma"]
    serial = itertools.count(100)
    for m in members:
        if m.member_number in WELL_KNOWN_MEMBERS:
            continue
        r = b.rng.random()
        if m.status == "pending":
            start = b.day(date(2026, 6, 1), date(2026, 11, 25))
            outcome = b.rng.choice(["in_review:county", "in_review:county", "in_review:prefecture",
                                    "in_review:jma", "returned:county", "returned:prefecture"])
            kind, from_county, county, returns = "admission", None, m.county_code, APPLICATION_RETURNS
        elif m.status == "active" and m.joined_on and m.joined_on >= "2025-04-01":
            start = date.fromisoformat(m.joined_on) - timedelta(days=b.rng.randint(30, 50))
            outcome, kind, from_county, county, returns = ("completed", "admission", None, m.county_code,
                                                           APPLICATION_RETURNS)
        elif m.status == "active" and r < 0.01:
            start = b.day(date(2025, 10, 1), date(2026, 11, 20))
            same_pref = [c for c in county_codes if c[:2] == m.county_code[:2] and c != m.county_code]
            pool = same_pref if (same_pref and b.rng.random() < 0.8) else county_codes
            from_county = b.rng.choice([c for c in pool if c != m.county_code])
            outcome = b.rng.choice(["completed", "completed", "in_review:county",
                                    "in_review:prefecture", "returned:county"])
            kind, county, returns = "transfer", m.county_code, TRANSFER_RETURNS
            joined = max(date(2015, 4, 1), date.fromisoformat(m.joined_on or "2015-04-01"))
            if b.rng.random() < 0.5 and joined < start - timedelta(days=60):
                # moved before as well: several applications, each concerning other counties
                earlier = b.day(joined, start - timedelta(days=60))
                before = b.rng.choice([c for c in county_codes if c not in (from_county, m.county_code)])
                out.append(_application(b, serial, m.member_number, "transfer", from_county, before, earlier,
                                        levels, TRANSFER_RETURNS, "completed"))
        else:
            continue
        out.append(_application(b, serial, m.member_number, kind, county, from_county, start, levels, returns,
                                outcome))
    for number, (member, kind, county, from_county, submitted, stage, state, events) in WELL_KNOWN_APPLICATIONS.items():
        out.append(({"application_number": number, "member_number": member, "kind": kind,
                     "county_code": county, "from_county_code": from_county, "submitted_on": submitted,
                     "stage": stage, "state": state}, list(events)))
    return out


def _reports(b: Builder, institutions: list[dict], known_inst: dict[str, dict]) -> list[tuple[dict, list[tuple]]]:
    out = []
    levels = ["institution", "county", "prefecture"]
    known_ids = {row["id"] for row in known_inst.values()}
    for inst in institutions:
        if inst["id"] in known_ids or inst["master_status"] != "in_master" or b.rng.random() > 0.45:
            continue
        start = b.day(date(2026, 1, 5), date(2026, 3, 31))
        outcome = b.rng.choices(["completed", "in_review:county", "in_review:prefecture",
                                 "returned:county", "returned:prefecture"], [70, 10, 8, 7, 5])[0]
        events, stage, state, day = _stage_events(b, start, levels, "approved", REPORT_RETURNS, outcome)
        if state == "returned" and b.rng.random() < 0.4:  # sent back, corrected, now in review again
            day = min(day + timedelta(days=b.rng.randint(5, 30)), AS_OF)
            events.append((day.isoformat(), "institution", "resubmitted", None))
            stage, state = "county", "in_review"
        out.append(({"institution_id": inst["id"], "fiscal_year": 2025, "submitted_on": start.isoformat(),
                     "stage": stage, "state": state}, events))
    for key, (year, submitted, stage, state, events) in WELL_KNOWN_REPORTS.items():
        out.append(({"institution_id": known_inst[key]["id"], "fiscal_year": year, "submitted_on": submitted,
                     "stage": stage, "state": state}, list(events)))
    return out


def _is_demo(path: Path) -> bool:
    try:
        conn = connect(path, readonly=True)
        try:
            return get_meta(conn, DEMO_KEY) is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _remove_db_files(path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal", ""):
        Path(str(path) + suffix).unlink(missing_ok=True)


def generate_demo(db_path: Path | str, members: int = 20_000, seed: int = DEFAULT_SEED, *,
                  force: bool = False) -> DemoSummary:
    """Build a demo records database with `members` members at `db_path`.

    The database is built in a temporary file next to the target and moved into
    place at the end, so an interrupted run never leaves a half-built database
    where the help desk reads. An existing database is only replaced with `force`.
    """
    with gc_paused():
        return _generate(Path(db_path), members, seed, force)


def _as_rows(institutions: list[dict], applications, reports) -> tuple[list, list, list]:
    """The generated records as the rows their files carry, so the demo is written by the importers'
    own writers (and exports to files that import back to the same database)."""
    inst = [InstitutionRow(r["institution_code"], r["name"], r["kana"], r["postal_code"], r["address"],
                           r["prefecture_code"], r["county_code"], None, r.get("kind"), None, None,
                           None, r["registered_on"], r["source"], r["master_status"], r["filed_on"])
            for r in institutions]
    apps = []
    for row, events in applications:
        dates, returned_by, reason = steps_from_events(APPLICATION_STEPS, events)
        apps.append(ApplicationRow(row["application_number"], row["member_number"], row["kind"], row["county_code"],
                                   row["from_county_code"], row["stage"], row["state"], dates, returned_by, reason))
    code_of = {r["id"]: r["institution_code"] for r in institutions}
    reps = []
    for row, events in reports:
        dates, returned_by, reason = steps_from_events(REPORT_STEPS, events)
        reps.append(ReportRow(code_of[row["institution_id"]], row["fiscal_year"], row["stage"], row["state"], dates,
                              returned_by, reason))
    return inst, apps, reps


def _generate(path: Path, members: int, seed: int, force: bool) -> DemoSummary:
    started = time.perf_counter()
    if path.exists() and not force:
        raise DatabaseExists(path, _is_demo(path))
    if members < len(WELL_KNOWN_MEMBERS):
        raise ValueError(f"members must be at least {len(WELL_KNOWN_MEMBERS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.building-{os.getpid()}")
    _remove_db_files(tmp)

    b = Builder(seed)
    institutions, known_inst = _institutions(b, max(60, members // 4))
    member_rows = _members(b, members, institutions, known_inst)
    applications = _applications(b, member_rows)
    reports = _reports(b, institutions, known_inst)

    conn = connect_writer(tmp)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a crash discards the temporary file anyway
        conn.execute("PRAGMA cache_size = -65536")
        with transaction(conn):
            conn.executemany(_INSERT_COUNTY, [{"code": c, "name": n, "prefecture_code": p}
                                              for c, n, p in b.counties])
            institution_rows, application_rows, report_rows = _as_rows(institutions, applications, reports)
            write_institutions(conn, institution_rows, [], {})
            write_members(conn, member_rows, [], {})
            write_applications(conn, application_rows, [], {})
            write_reports(conn, report_rows, [], {})
            set_meta(conn, DEMO_KEY, DEMO_LABEL)
            set_meta(conn, "demo_seed", str(seed))
            set_meta(conn, "demo_members", str(members))
            set_meta(conn, "demo_as_of", AS_OF.isoformat())
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        conn.close()
        _remove_db_files(tmp)
        raise
    conn.close()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return DemoSummary(path=path, members=len(member_rows), institutions=len(institutions),
                       applications=len(applications), reports=len(reports),
                       counties=len(b.counties), seconds=time.perf_counter() - started)
