"""What a linked doctor is told about (records.watch), read by the notification step of an import:
the member's status and each application's stage in the records' own words, with the return reason
while an application is returned. The Telegram adapter reads it through this public function and runs
no SQL of its own on member data."""
from __future__ import annotations

import re

from records.watch import WatchedApplication, watched_members
from tests.conftest import ROOT


def test_watched_members_in_the_records_words(demo_db):
    found = watched_members(demo_db, ["1300001", "1300002", "9999999"])
    assert set(found) == {"1300001", "1300002", "9999999"}
    assert found["1300001"].status_ja == "在籍"
    (done,) = [a for a in found["1300001"].applications if a.number == "A2010-000001"]
    assert (done.kind_ja, done.status_ja, done.reason) == ("入会届", "手続き完了", None)
    (returned,) = [a for a in found["1300002"].applications if a.number == "A2026-000001"]
    assert returned.status_ja == "都道府県医師会から差戻し中" and returned.reason
    assert found["9999999"].status is None and found["9999999"].applications == ()
    assert watched_members(demo_db, []) == {} and watched_members(demo_db.parent / "none.sqlite", ["1300001"]) == {}
    assert WatchedApplication("A1", "transfer", "county", "submitted").status_ja == "郡市区等医師会で確認中"


def test_adapters_use_no_private_name_of_the_records():
    private = re.compile(r"from records\.\w+ import [^\n]*\b_\w+")
    users = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "handlers").rglob("*.py"))
             if private.search(p.read_text(encoding="utf-8"))]
    assert users == []
