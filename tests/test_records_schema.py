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
        "0007_institution_grams_keyed_by_prefecture"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"meta", "associations", "members", "member_grams", "delivery_settings", "applications",
            "application_events", "institutions", "institution_grams", "fd_reports",
            "fd_report_events"} <= _tables(conn)
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
