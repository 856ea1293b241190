"""A member's applications are shown per application, by the same rule as asking for one by its number:
the well-known member 1300005 moved 13001 → 13002 (completed) and is moving 13002 → 27001 (returned)."""
from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from records.access import Asker
from records.demo import generate_demo
from records.errors import ApplicationNotFound, MemberNotFound
from records.lookup import Records

FIRST, SECOND = "A2025-000001", "A2026-000003"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("apps") / "records.sqlite"
    generate_demo(path, members=400, seed=3)
    return path


@pytest.fixture
def records(demo, tmp_path):
    with Records(demo, tmp_path / "audit.sqlite", today=lambda: date(2026, 11, 25)) as r:
        yield r


def by_number(records, asker, number):
    try:
        return records.application(asker, number).application_number
    except ApplicationNotFound:
        return None


@pytest.mark.parametrize("asker, listed", [
    (Asker.county_staff("13001"), [FIRST]),             # the county he left: only the move out of it
    (Asker.county_staff("13002"), [SECOND, FIRST]),     # his county now: both
    (Asker.county_staff("27001"), [SECOND]),            # the county he is moving to: only that move
    (Asker.prefecture_staff("13"), [SECOND, FIRST]),
    (Asker.prefecture_staff("27"), [SECOND]),
    (Asker.member("1300005"), [SECOND, FIRST]),
    (Asker.desk(on_behalf_of=Asker.county_staff("13001")), [FIRST]),
])
def test_each_application_is_shown_only_to_whom_it_concerns(records, asker, listed):
    shown = records.applications(asker, "1300005")
    assert [a.application_number for a in shown] == listed
    # The member-number path and the application-number path agree, application by application.
    assert [n for n in (SECOND, FIRST) if by_number(records, asker, n)] == listed


def test_chiyoda_never_sees_the_returned_transfer_or_its_reason(records):
    [first] = records.applications(Asker.county_staff("13001"), "1300005")
    assert (first.kind_label, first.from_county.name, first.county.name, first.status_label) == (
        "異動届", "千代田区医師会", "中央区医師会", "手続き完了")
    assert all(e.reason is None for e in first.history)
    second = records.applications(Asker.county_staff("27001"), "1300005")[0]
    assert (second.status_label, second.return_reason) == ("郡市区等医師会から差戻し中", "異動年月日が未記入です。")


def test_a_county_that_sees_none_of_them_is_refused_like_a_missing_member(records):
    for asker in (Asker.county_staff("13003"), Asker.prefecture_staff("01"), Asker.member("1300001")):
        with pytest.raises(MemberNotFound):
            records.applications(asker, "1300005")


def test_demo_members_with_several_applications_exist_beyond_the_well_known_one(demo):
    conn = sqlite3.connect(demo)
    several = conn.execute("""SELECT count(*) FROM (SELECT member_number FROM applications
                              GROUP BY member_number HAVING count(*) > 1)""").fetchone()[0]
    conn.close()
    assert several >= 2


def test_a_name_search_that_finds_nobody_is_logged_as_refused(demo, tmp_path):
    audit = tmp_path / "audit.sqlite"
    with Records(demo, audit) as r:
        assert r.find_members(Asker.county_staff("13001"), "存在しない名前") == []
        assert r.find_members(Asker.county_staff("13002"), "山田太郎") == []  # exists, but in 13001
        assert [m.member.member_number for m in r.find_members(Asker.county_staff("13001"), "山田太郎")] == ["1300001"]
        assert r.find_institutions(Asker.county_staff("13001"), "存在しない眼科医院") == []
    conn = sqlite3.connect(audit)
    rows = conn.execute("SELECT asker, action, record, outcome FROM access_log ORDER BY id").fetchall()
    conn.close()
    assert rows == [
        ("staff:county:13001", "member_search", None, "refused"),
        ("staff:county:13002", "member_search", None, "refused"),
        ("staff:county:13001", "member_search", "13***01", "allowed"),
        ("staff:county:13001", "institution_search", None, "refused"),
    ]
