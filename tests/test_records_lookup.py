"""Lookups through the read-only query layer: every role × every lookup, and what they return."""
import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from bot.desk.hours import BusinessHours
from bot.lookups.replies import institution_next
from records.access import Asker
from records.demo import generate_demo
from records.errors import (UNAVAILABLE_JA, AccessDenied, DatabaseMissing, InvalidQuery,
                            MemberNotFound, RecordUnavailable, message_ja)
from records.lookup import Records, open_readonly

TODAY = date(2026, 11, 25)

ASKERS = {
    "anonymous": Asker.anonymous(),
    "county_own": Asker.county_staff("13001"),          # 千代田区医師会
    "county_same_pref": Asker.county_staff("13002"),    # 中央区医師会: another county in Tokyo
    "county_other_pref": Asker.county_staff("27001"),   # 大阪市北区医師会
    "pref_own": Asker.prefecture_staff("13"),
    "pref_other": Asker.prefecture_staff("27"),
    "member_self": Asker.member("1300001"),
    "member_other": Asker.member("1300004"),            # same county, another workplace
    "desk_alone": Asker.desk(),
    "desk_for_county": Asker.desk(on_behalf_of=Asker.county_staff("13001")),
    "desk_for_member_self": Asker.desk(on_behalf_of=Asker.member("1300001")),
    "desk_for_other_pref": Asker.desk(on_behalf_of=Asker.county_staff("27001")),
}
NO_RIGHTS = {"anonymous", "desk_alone"}
SEES_PERSON = {"county_own", "pref_own", "member_self", "desk_for_county", "desk_for_member_self"}
SEES_INSTITUTION = {"county_own", "county_same_pref", "county_other_pref", "pref_own", "pref_other",
                    "member_self", "desk_for_county", "desk_for_member_self", "desk_for_other_pref"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lookup") / "records.sqlite"
    generate_demo(path, members=500, seed=11)
    return path


@pytest.fixture(scope="module")
def codes(demo) -> dict:
    conn = sqlite3.connect(demo)
    rows = dict(conn.execute("SELECT name, institution_code FROM institutions WHERE id <= 5"))
    conn.close()
    return {"yamada": rows["千代田やまだ内科クリニック"], "sakura": rows["日本橋さくら皮膚科クリニック"],
            "umeda": rows["梅田たかはし眼科"]}


@pytest.fixture
def records(demo, tmp_path):
    with Records(demo, tmp_path / "audit.sqlite", today=lambda: TODAY) as r:
        yield r


# Each lookup: (call on the well-known target, call on a record that does not exist, who sees it).
def _lookups(codes):
    missing_code = "1310199990"
    return {
        "member": (lambda r, a: r.member(a, "1300001"), lambda r, a: r.member(a, "1399999"), SEES_PERSON),
        "applications": (lambda r, a: r.applications(a, "1300001"), lambda r, a: r.applications(a, "1399999"),
                         SEES_PERSON),
        "application": (lambda r, a: r.application(a, "A2010-000001"),
                        lambda r, a: r.application(a, "A2010-999999"), SEES_PERSON),
        "delivery_settings": (lambda r, a: r.delivery_settings(a, "1300001"),
                              lambda r, a: r.delivery_settings(a, "1399999"), SEES_PERSON),
        "institution": (lambda r, a: r.institution(a, codes["yamada"]),
                        lambda r, a: r.institution(a, missing_code), SEES_INSTITUTION),
        "family_doctor_report": (lambda r, a: r.family_doctor_report(a, codes["yamada"]),
                                 lambda r, a: r.family_doctor_report(a, missing_code), SEES_PERSON),
    }


LOOKUP_NAMES = ["member", "applications", "application", "delivery_settings", "institution",
                "family_doctor_report"]


@pytest.mark.parametrize("lookup", LOOKUP_NAMES)
@pytest.mark.parametrize("who", list(ASKERS))
def test_every_role_and_lookup(records, codes, who, lookup):
    target, missing, visible_to = _lookups(codes)[lookup]
    asker = ASKERS[who]
    with pytest.raises(RecordUnavailable) as on_missing:
        missing(records, asker)
    if who in visible_to:
        result = target(records, asker)
        assert result  # the record itself is checked in the content tests below
        expected = MemberNotFound if lookup in ("member", "applications", "delivery_settings") else None
        if expected:
            assert type(on_missing.value) is expected
        return
    with pytest.raises(RecordUnavailable) as on_refused:
        target(records, asker)
    # A refusal reveals nothing: same exception type, same sentence as for a record that does not exist.
    assert type(on_refused.value) is type(on_missing.value)
    assert message_ja(on_refused.value) == message_ja(on_missing.value) == UNAVAILABLE_JA
    if who in NO_RIGHTS:
        assert type(on_refused.value) is AccessDenied


def _shape(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\b\d+\b", "?", sql)


_VISIBLE = {name: (SEES_INSTITUTION if name == "institution" else SEES_PERSON) for name in LOOKUP_NAMES}
_REFUSALS = [(who, lookup) for lookup in LOOKUP_NAMES for who in ASKERS if who not in _VISIBLE[lookup]]


@pytest.mark.parametrize("who, lookup", _REFUSALS)
def test_refusal_does_the_same_database_work_as_not_found(demo, codes, tmp_path, who, lookup):
    target, missing, _visible_to = _lookups(codes)[lookup]
    traces = {}
    for label, call in (("refused", target), ("missing", missing)):
        statements = []
        with Records(demo, tmp_path / "audit.sqlite", trace=statements.append) as r:
            r.connection()  # opening statements are not part of the lookup
            statements.clear()
            with pytest.raises(RecordUnavailable):
                call(r, ASKERS[who])
        traces[label] = [_shape(s) for s in statements]
    assert traces["refused"] == traces["missing"]
    assert traces["refused"]  # it did query


@pytest.mark.parametrize("who", list(ASKERS))
def test_name_search_for_every_role(records, who):
    asker = ASKERS[who]
    if who in NO_RIGHTS:
        with pytest.raises(AccessDenied):
            records.find_members(asker, "山田太郎")
        return
    found = [m.member.member_number for m in records.find_members(asker, "山田太郎")]
    assert ("1300001" in found) == (who in SEES_PERSON)
    if who == "member_self":
        assert found == ["1300001"]


@pytest.mark.parametrize("who", list(ASKERS))
def test_institution_search_for_every_role(records, who):
    asker = ASKERS[who]
    if who in NO_RIGHTS:
        with pytest.raises(AccessDenied):
            records.find_institutions(asker, "千代田やまだ内科クリニック")
        return
    found = [i.name for i, _score in records.find_institutions(asker, "千代田やまだ内科クリニック")]
    assert ("千代田やまだ内科クリニック" in found) == (who in SEES_INSTITUTION)


def test_cross_county_and_cross_prefecture_searches_find_nothing_outside(records):
    assert [m.member.member_number for m in records.find_members(ASKERS["pref_own"], "鈴木一郎")][:1] == ["1300003"]
    assert "1300003" not in [m.member.member_number
                             for m in records.find_members(ASKERS["county_own"], "鈴木一郎")]
    assert "2700001" not in [m.member.member_number for m in records.find_members(ASKERS["pref_own"], "田中健一")]
    assert [m.member.member_number for m in records.find_members(ASKERS["pref_other"], "田中健一")][:1] == ["2700001"]


@pytest.mark.parametrize("query", ["山田太郎", "山田　太郎", "山田 太郎", "やまだ たろう", "やまだたろう",
                                   "ヤマダタロウ", "ﾔﾏﾀﾞ ﾀﾛｳ", "山田太朗", "山田太郎先生", "ヤマダ　タロー"])
def test_fuzzy_name_search_finds_the_member(records, query):
    matches = records.find_members(ASKERS["county_own"], query)
    assert matches[0].member.member_number == "1300001", [(m.member.name, m.score) for m in matches]
    assert matches[0].score >= 75


def test_old_character_forms_and_family_name_only(records):
    first = records.find_members(ASKERS["county_own"], "高橋美咲")[0]
    assert (first.member.member_number, first.member.name, first.score) == ("1300004", "髙橋　美咲", 100.0)
    yamadas = records.find_members(ASKERS["county_own"], "山田先生", limit=50)
    assert "1300001" in [m.member.member_number for m in yamadas if m.score == 100.0]
    assert records.find_members(ASKERS["member_self"], "佐藤花子") == []


def test_member_record_content(records):
    m = records.member(ASKERS["county_own"], "１３００００１")  # full-width digits are fine
    assert (m.member_number, m.name, m.kana, m.status_label, m.county.name, m.prefecture.name,
            m.workplace_name, m.joined_on) == (
        "1300001", "山田　太郎", "ヤマダ　タロウ", "在籍", "千代田区医師会", "東京都",
        "千代田やまだ内科クリニック", "2010-04-01")


def test_application_stage_with_history_and_return_reason(records):
    [app] = records.applications(ASKERS["county_own"], "1300002")
    assert (app.application_number, app.kind_label, app.status_label, app.return_reason) == (
        "A2026-000001", "入会届", "都道府県医師会から差戻し中",
        "勤務先医療機関が厚生局の登録待ちのため、医療機関名の確認が必要です。")
    assert [e.label for e in app.history] == [
        "2026-10-20 申請者 提出",
        "2026-10-28 郡市区等医師会 承認",
        "2026-11-10 都道府県医師会 差戻し（理由: 勤務先医療機関が厚生局の登録待ちのため、医療機関名の確認が必要です。）",
    ]
    done = records.application(ASKERS["member_self"], "A2010-000001")
    assert (done.status_label, done.return_reason, done.history[-1].label) == (
        "手続き完了", None, "2010-04-01 日本医師会 手続き完了")


def test_transfer_is_visible_to_the_old_county_but_the_member_record_is_not(records):
    [transfer] = records.applications(ASKERS["county_own"], "1300003")
    assert (transfer.kind_label, transfer.from_county.name, transfer.county.name, transfer.status_label) == (
        "異動届", "千代田区医師会", "中央区医師会", "都道府県医師会で確認中")
    with pytest.raises(MemberNotFound):
        records.member(ASKERS["county_own"], "1300003")


def test_delivery_settings(records):
    settings = records.delivery_settings(ASKERS["member_self"], "1300001")
    assert [s.label for s in settings.items] == [
        "日医ニュース: 送付する（送付先: 勤務先）",
        "日本医師会雑誌通常号: 送付する（送付先: 自宅）",
        "日本医師会雑誌特別号: 送付しない",
    ]
    unset = records.delivery_settings(ASKERS["county_own"], "1300002")
    assert [s.label for s in unset.items] == [
        "日医ニュース: 未設定", "日本医師会雑誌通常号: 未設定", "日本医師会雑誌特別号: 未設定"]


def test_institution_status_and_estimated_window(records, demo, tmp_path, codes):
    desk = BusinessHours().contact()
    yamada = records.institution(ASKERS["county_own"], codes["yamada"])
    assert (yamada.status_label, yamada.window, yamada.registered_on, institution_next(yamada, desk)) == (
        "医療機関マスタに掲載済み", None, "2019-06-16", None)
    waiting, score = records.find_institutions(ASKERS["county_own"], "神田ひだまり在宅クリニック")[0]
    assert (waiting.name, waiting.institution_code, waiting.status_label, score) == (
        "神田ひだまり在宅クリニック", None, "厚生局の登録待ち（手入力の医療機関）", 100.0)
    assert (waiting.window.earliest_night, waiting.window.latest_night, waiting.overdue) == (
        date(2026, 11, 28), date(2027, 1, 10), False)
    assert institution_next(waiting, desk) == ("2026年10月5日の厚生局への届出から見ると、2026年11月28日〜2027年1月10日の"
                                               "週末夜間のマスタ更新で反映される見込みです（目安）。")
    with Records(demo, tmp_path / "a.sqlite", today=lambda: date(2027, 2, 1)) as later:
        late, _ = later.find_institutions(ASKERS["county_own"], "神田ひだまり在宅クリニック")[0]
        assert late.overdue and institution_next(late, desk).endswith(
            "見込みの時期を過ぎているため、MAMIS運営事務局（フリーダイヤル 0120-110-030、平日9:00〜17:00）にお問い合わせください。")
    moved, _ = records.find_institutions(ASKERS["pref_own"], "丸の内メディカルクリニック")[0]
    assert (moved.master_status, moved.window) == ("unmatched", None)
    assert "自動では更新されません" in institution_next(moved, desk)
    # the doctor typed in by hand: their own (waiting) workplace is visible to them
    mine = records.find_institutions(Asker.member("1300002"), "ひだまり在宅クリニック")
    assert [i.name for i, _ in mine] == ["神田ひだまり在宅クリニック"]


def test_family_doctor_report_with_return_reason(records, codes):
    returned = records.family_doctor_report(ASKERS["county_same_pref"], codes["sakura"])
    assert (returned.fiscal_year_label, returned.status_label, returned.return_reason) == (
        "2025年度（令和7年度）", "郡市区等医師会から差戻し中", "報告項目（時間外の診療体制）の記載漏れがあります。")
    approved = records.family_doctor_report(ASKERS["county_own"], codes["yamada"], fiscal_year=2025)
    assert (approved.status_label, approved.return_reason, [e.action for e in approved.history]) == (
        "承認済み", None, ["submitted", "approved", "approved"])
    pending = records.family_doctor_report(ASKERS["pref_other"], codes["umeda"])
    assert pending.status_label == "都道府県医師会で確認中"


def test_the_query_layer_cannot_write(records, demo):
    conn = records.connection()
    assert conn.execute("PRAGMA query_only").fetchone() == (1,)
    for statement in ("INSERT INTO meta (key, value) VALUES ('x', 'y')",
                      "UPDATE members SET name = 'x'", "DELETE FROM members",
                      "CREATE TABLE x (y)", "DROP TABLE members"):
        with pytest.raises(sqlite3.OperationalError):
            conn.execute(statement)
    # Even with query_only switched off, the file itself is open read-only (mode=ro).
    raw = open_readonly(demo)
    raw.execute("PRAGMA query_only = 0")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        raw.execute("DELETE FROM members")
    raw.close()
    assert sqlite3.connect(demo).execute("SELECT count(*) FROM members").fetchone() == (500,)


def test_every_lookup_is_logged_with_masked_identifiers(demo, tmp_path, codes):
    audit = tmp_path / "audit.sqlite"
    with Records(demo, audit) as r:
        r.member(ASKERS["county_own"], "1300001")
        with pytest.raises(MemberNotFound):
            r.member(ASKERS["county_same_pref"], "1300001")
        with pytest.raises(AccessDenied):
            r.delivery_settings(ASKERS["anonymous"], "1300001")
        r.find_members(ASKERS["member_self"], "山田太郎")
        r.institution(Asker.desk(on_behalf_of=Asker.member("1300001"), label="desk-7"), codes["yamada"])
    conn = sqlite3.connect(audit)
    rows = conn.execute("SELECT asker, on_behalf, action, record, outcome FROM access_log ORDER BY id").fetchall()
    assert rows == [
        ("staff:county:13001", None, "member", "13***01", "allowed"),
        ("staff:county:13002", None, "member", "13***01", "refused"),
        ("anonymous", None, "delivery_settings", "13***01", "refused"),
        ("member:13***01", None, "member_search", "13***01", "allowed"),
        ("desk(desk-7)", "member:13***01", "institution", f"{codes['yamada'][:2]}******{codes['yamada'][-2:]}",
         "allowed"),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", at) for (at,) in conn.execute("SELECT at FROM access_log"))
    conn.close()
    conn = None
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.sqlite*"))
    assert b"1300001" not in raw and codes["yamada"].encode() not in raw


def test_invalid_keys_and_missing_database(records, tmp_path):
    for bad in ("12345", "abcdefg", "", "13000011"):
        with pytest.raises(InvalidQuery):
            records.member(ASKERS["county_own"], bad)
    with pytest.raises(InvalidQuery):
        records.find_members(ASKERS["county_own"], " 　 ")
    with Records(tmp_path / "none.sqlite", tmp_path / "audit.sqlite") as r:
        with pytest.raises(DatabaseMissing):
            r.member(ASKERS["county_own"], "1300001")


def test_dataset_label_and_reconnect_after_replacement(tmp_path):
    path = tmp_path / "records.sqlite"
    generate_demo(path, members=40, seed=1)
    with Records(path, tmp_path / "audit.sqlite") as r:
        assert r.dataset_label() == "デモデータ（架空）"
        before = r.find_members(ASKERS["pref_own"], "山田太郎")[0].member.member_number
        generate_demo(path, members=60, seed=2, force=True)
        assert r.connection().execute("SELECT count(*) FROM members").fetchone() == (60,)
        assert before == "1300001"
