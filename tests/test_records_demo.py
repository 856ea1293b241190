"""The demo generator: deterministic, marked as fictional, realistic formats, well-known records."""
import re
import sqlite3
from pathlib import Path

import pytest

from records.demo import AS_OF, generate_demo
from records.demo_material import WELL_KNOWN_APPLICATIONS, WELL_KNOWN_MEMBERS, institution_check_digit
from records.errors import DatabaseExists
from records.sync import load_member_rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "records.sqlite"
    generate_demo(path, members=500, seed=3)
    return path


def _q(path, sql, params=()):
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_marked_as_demo_data(demo):
    assert dict(_q(demo, "SELECT key, value FROM meta WHERE key LIKE 'demo%'")) == {
        "demo": "デモデータ（架空）", "demo_seed": "3", "demo_members": "500", "demo_as_of": "2026-11-30"}


def test_same_seed_same_database_other_seed_other_names(tmp_path, demo):
    again = tmp_path / "again.sqlite"
    generate_demo(again, members=500, seed=3)
    for table in ("members", "delivery_settings", "institutions", "applications", "fd_reports", "associations"):
        assert _q(again, f"SELECT * FROM {table} ORDER BY 1, 2") == _q(demo, f"SELECT * FROM {table} ORDER BY 1, 2")
    other = tmp_path / "other.sqlite"
    generate_demo(other, members=500, seed=4)
    assert _q(other, "SELECT name FROM members ORDER BY member_number") != _q(
        demo, "SELECT name FROM members ORDER BY member_number")


def test_sizes_and_associations(demo):
    assert _q(demo, "SELECT count(*) FROM members") == [(500,)]
    assert _q(demo, "SELECT count(*) FROM associations WHERE level = 'prefecture'") == [(47,)]
    counties = _q(demo, "SELECT count(*) FROM associations WHERE level = 'county'")[0][0]
    assert 300 <= counties <= 900  # "several hundred"
    assert _q(demo, "SELECT name FROM associations WHERE code = '13001'") == [("千代田区医師会",)]
    # every county sits under the prefecture its code starts with
    assert _q(demo, "SELECT count(*) FROM associations WHERE level = 'county' "
                    "AND substr(code, 1, 2) != prefecture_code") == [(0,)]


def test_formats_are_plausible(demo):
    numbers = [n for (n,) in _q(demo, "SELECT member_number FROM members")]
    assert all(re.fullmatch(r"[0-9]{7}", n) for n in numbers)
    codes = [c for (c,) in _q(demo, "SELECT institution_code FROM institutions WHERE institution_code IS NOT NULL")]
    assert all(re.fullmatch(r"[0-9]{2}1[0-9]{7}", c) for c in codes)
    assert all(c[-1] == institution_check_digit(c[3:9]) for c in codes)
    kana = [k for (k,) in _q(demo, "SELECT kana FROM members")]
    assert all(re.fullmatch(r"[ァ-ヴー]+　[ァ-ヴー]+", k) for k in kana)
    for table, column in [("members", "joined_on"), ("members", "updated_on"), ("members", "withdrawn_on"),
                          ("applications", "submitted_on"), ("applications", "county_approved_on"),
                          ("applications", "prefecture_approved_on"), ("applications", "returned_on"),
                          ("applications", "resubmitted_on"), ("applications", "jma_completed_on"),
                          ("applications", "withdrawn_on"), ("institutions", "filed_on"),
                          ("institutions", "registered_on"), ("fd_reports", "county_approved_on"),
                          ("fd_reports", "prefecture_approved_on"), ("fd_reports", "returned_on"),
                          ("fd_reports", "resubmitted_on")]:
        latest = _q(demo, f"SELECT max({column}) FROM {table}")[0][0]
        assert latest is None or latest <= AS_OF.isoformat(), (table, column, latest)
    statuses = dict(_q(demo, "SELECT status, count(*) FROM members GROUP BY status"))
    assert statuses["active"] > statuses.get("pending", 0) + statuses.get("withdrawn", 0)
    manual = _q(demo, "SELECT master_status FROM institutions WHERE source = 'manual'")
    assert ("waiting_bureau",) in manual and ("unmatched",) in manual


def test_well_known_records_are_present(demo):
    rows = {r.member_number: r for r in load_member_rows(sqlite3.connect(demo))}
    for number, (name, kana, county, status, *_rest) in WELL_KNOWN_MEMBERS.items():
        assert (rows[number].name, rows[number].kana, rows[number].county_code, rows[number].status) == (
            name, kana, county, status)
    apps = {n for (n,) in _q(demo, "SELECT application_number FROM applications")}
    assert set(WELL_KNOWN_APPLICATIONS) <= apps
    assert _q(demo, "SELECT name, master_status, filed_on, institution_code FROM institutions "
                    "WHERE name = '神田ひだまり在宅クリニック'") == [
        ("神田ひだまり在宅クリニック", "waiting_bureau", "2026-10-05", None)]
    # no random member shares a well-known name, even in another character form
    assert _q(demo, "SELECT count(*) FROM members WHERE name_key IN ('山田太郎', '高橋美咲')") == [(2,)]


def test_existing_database_needs_force(tmp_path, demo):
    path = tmp_path / "records.sqlite"
    generate_demo(path, members=50, seed=1)
    with pytest.raises(DatabaseExists) as info:
        generate_demo(path, members=60, seed=1)
    assert info.value.is_demo
    generate_demo(path, members=60, seed=1, force=True)
    assert _q(path, "SELECT count(*) FROM members") == [(60,)]
    assert not list(tmp_path.glob("*.building-*"))
