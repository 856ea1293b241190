"""Migrations of the records database: applied once, atomically, with the reference data."""
import sqlite3

import pytest

from records.access import AUDIT_MIGRATIONS, AccessLog
from records.schema import MIGRATIONS, connect_writer
from storage.sqlite import apply_migrations


def _tables(conn):
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_writer_connection_migrates_and_uses_wal(tmp_path):
    conn = connect_writer(tmp_path / "records.sqlite")
    assert [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")] == [
        "0001_initial", "0002_applications", "0003_institutions_and_reports", "0004_imports",
        "0005_institution_grams_by_prefecture", "0006_institutions_by_delivery",
        "0007_institution_grams_keyed_by_prefecture", "0008_steps_in_rows"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"meta", "associations", "members", "member_grams", "delivery_settings", "applications",
            "institutions", "institution_grams", "fd_reports"} <= _tables(conn)
    conn.close()


def test_migrations_are_applied_only_once(tmp_path):
    path = tmp_path / "records.sqlite"
    connect_writer(path).close()
    conn = connect_writer(path)
    assert apply_migrations(conn, MIGRATIONS) == []
    assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM associations").fetchone()[0] == 47
    conn.close()


def test_the_47_prefectures_are_seeded_with_their_jis_codes(tmp_path):
    conn = connect_writer(tmp_path / "records.sqlite")
    rows = conn.execute("SELECT code, name, level, prefecture_code FROM associations ORDER BY code").fetchall()
    assert len(rows) == 47
    assert rows[0] == ("01", "北海道", "prefecture", "01")
    assert rows[12] == ("13", "東京都", "prefecture", "13")
    assert rows[26] == ("27", "大阪府", "prefecture", "27")
    assert rows[46] == ("47", "沖縄県", "prefecture", "47")
    conn.close()


def test_a_failing_migration_leaves_no_trace(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    broken = [("0001_ok", ["CREATE TABLE a (x)"]),
              ("0002_broken", ["CREATE TABLE b (x)", "INSERT INTO nowhere VALUES (1)"])]
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, broken)
    assert "b" not in _tables(conn)
    assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == ["0001_ok"]
    # fixed later: only the missing one runs
    fixed = [broken[0], ("0002_broken", ["CREATE TABLE b (x)"])]
    assert apply_migrations(conn, fixed) == ["0002_broken"]
    conn.close()


def test_lookup_indexes_exist(tmp_path):
    conn = connect_writer(tmp_path / "records.sqlite")
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"members_by_county_kana", "members_by_county_name", "members_by_workplace",
            "applications_by_member", "institutions_by_county", "institutions_by_name"} <= indexes
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM members WHERE member_number = '1300001'"))
    assert "PRIMARY KEY" in plan
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT member_number FROM members WHERE county_code = '13001' "
        "AND kana_key >= 'ヤマ' AND kana_key < 'ヤマ\U0010ffff'"))
    assert "members_by_county_kana" in plan
    conn.close()


def test_access_log_has_its_own_migrations_and_wal(tmp_path):
    from records.access import Asker
    log = AccessLog(tmp_path / "audit.sqlite")
    log.write(Asker.anonymous(), "member", "13***01", False)
    log.close()
    conn = sqlite3.connect(tmp_path / "audit.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == [AUDIT_MIGRATIONS[0][0]]
    assert conn.execute("SELECT asker, action, record, outcome FROM access_log").fetchall() == [
        ("anonymous", "member", "13***01", "refused")]
    conn.close()


def test_histories_move_into_their_rows_unchanged(tmp_path):
    """0008 turns application_events and fd_report_events into dated columns of their rows. A database
    whose histories were written the way the code before it wrote them (a row's events_from_steps,
    numbered) reads back the same rows and the same histories; a raw history of two returns folds to
    its latest return, as the export always folded it."""
    import dataclasses

    from records.access import Asker
    from records.import_applications import STEPS as APPLICATION_STEPS, ApplicationRow
    from records.import_reports import STEPS as REPORT_STEPS, ReportRow
    from records.kinds import KINDS
    from records.lookup import Records
    from records.steps import events_from_steps
    from records.watch import watched_members
    from storage.sqlite import connect

    path = tmp_path / "records.sqlite"
    conn = connect(path)
    apply_migrations(conn, [m for m in MIGRATIONS if m[0] < "0008"])
    conn.execute("INSERT INTO associations (code, level, name, prefecture_code) VALUES "
                 "('13001', 'county', '千代田区医師会', '13'), ('13002', 'county', '中央区医師会', '13')")
    def history(steps, row) -> list[tuple]:
        return events_from_steps(steps, row.dates, row.returned_by, row.return_reason)

    apps = [
        ApplicationRow("A2026-000001", "1300001", "admission", "13001", None, "county", "returned",
                       ("2026-04-01", None, None, "2026-04-03", None, None, None), "county", "写真が不鮮明です。"),
        ApplicationRow("A2026-000002", "1300002", "transfer", "13002", "13001", "done", "completed",
                       ("2026-05-01", "2026-05-01", "2026-05-08", "2026-05-02", "2026-05-06", "2026-05-20", None),
                       "county", "異動日の記入漏れ"),
        ApplicationRow("A2026-000003", "1300003", "admission", "13001", None, "done", "withdrawn",
                       ("2026-06-01", None, None, None, None, None, "2026-06-09")),
    ]
    for id_, row in enumerate(apps, start=1):
        conn.execute("INSERT INTO applications (id, application_number, member_number, kind, county_code, "
                     "from_county_code, submitted_on, stage, state, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (id_, row.application_number, row.member_number, row.kind, row.county_code,
                      row.from_county_code, row.dates[0], row.stage, row.state, row.row_hash()))
        conn.executemany("INSERT INTO application_events VALUES (?, ?, ?, ?, ?, ?)",
                         [(id_, seq, *event) for seq, event in enumerate(history(APPLICATION_STEPS, row), start=1)])
    # the demo's raw history: returned twice, by the county then by the prefecture
    conn.execute("INSERT INTO applications (id, application_number, member_number, kind, county_code, "
                 "submitted_on, stage, state) VALUES (4, 'A2026-000004', '1300004', 'admission', '13001', "
                 "'2026-07-01', 'prefecture', 'returned')")
    conn.executemany("INSERT INTO application_events VALUES (4, ?, ?, ?, ?, ?)", [
        (1, "2026-07-01", "applicant", "submitted", None), (2, "2026-07-02", "county", "returned", "印鑑漏れ"),
        (3, "2026-07-03", "applicant", "resubmitted", None), (4, "2026-07-04", "county", "approved", None),
        (5, "2026-07-06", "prefecture", "returned", "住所の誤り")])
    conn.execute("INSERT INTO institutions (id, institution_code, name, kana, name_key, kana_key, address, "
                 "prefecture_code, county_code, source, master_status) VALUES (1, '1310100016', '山田内科', "
                 "'ヤマダナイカ', '山田内科', 'ヤマダナイカ', '東京都千代田区1-1', '13', '13001', 'vendor', 'in_master')")
    report = ReportRow("1310100016", 2025, "prefecture", "in_review",
                       ("2025-10-01", "2025-10-03", None, "2025-10-02", "2025-10-03"), "county", "記載漏れ")
    conn.execute("INSERT INTO fd_reports (id, institution_id, fiscal_year, submitted_on, stage, state) "
                 "VALUES (1, 1, 2025, '2025-10-01', 'prefecture', 'in_review')")
    conn.executemany("INSERT INTO fd_report_events VALUES (1, ?, ?, ?, ?, ?)",
                     [(seq, *event) for seq, event in enumerate(history(REPORT_STEPS, report), start=1)])
    conn.close()

    def shown() -> tuple:
        with Records(path, tmp_path / "audit.sqlite") as records:
            staff = Asker.prefecture_staff("13")
            return ([[(e.happened_on, e.level, e.action, e.reason)
                      for e in records.application(staff, f"A2026-00000{i}").history] for i in range(1, 5)],
                    [(e.happened_on, e.level, e.action, e.reason)
                     for e in records.family_doctor_report(staff, "1310100016").history],
                    watched_members(path, ["1300001", "1300004"]))

    # the help desk only reads: until the next import applies 0008, it reads the events tables
    before = shown()
    assert before[0][:3] == [history(APPLICATION_STEPS, row) for row in apps]
    assert before[1] == history(REPORT_STEPS, report)
    assert before[2]["1300004"].applications[0].reason == "住所の誤り"
    connect_writer(path).close()  # an import applies 0008
    assert shown() == before
    conn = connect(path)
    assert not {"application_events", "fd_report_events"} & _tables(conn)
    stored = KINDS["applications"].load_rows(conn)
    assert [dataclasses.replace(r, county_name=None, from_county_name=None) for r in stored[:3]] == apps
    assert stored[3].dates == ("2026-07-01", "2026-07-04", None, "2026-07-06", "2026-07-03", None, None)
    assert (stored[3].returned_by, stored[3].return_reason) == ("prefecture", "住所の誤り")
    assert KINDS["reports"].load_rows(conn) == [report]
    conn.close()
