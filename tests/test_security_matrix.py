"""The whole role × lookup × scope matrix against the demo data: for every asker (anonymous, county,
prefecture, another prefecture, a linked doctor, the desk on behalf of a county) and every lookup of
a record in the asker's own county, a neighbouring county, another prefecture and nowhere, the
answer (the record, or the one refusal that reads like a missing record) and the access-log row it
wrote. The expectations are written out by hand from docs/records.md, not derived from may_see. The
matrix runs on the demo database and on the same data imported from files with the sync-* importers."""
from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from records.access import Asker
from records.demo import generate_demo
from records.errors import UNAVAILABLE_JA, AccessDenied, RecordUnavailable, message_ja
from records.lookup import Records

ASKERS = {
    "anonymous": (Asker.anonymous(), "anonymous", None),
    "county": (Asker.county_staff("13001"), "staff:county:13001", None),          # 千代田区
    "prefecture": (Asker.prefecture_staff("13"), "staff:prefecture:13", None),    # 東京都
    "other_prefecture": (Asker.prefecture_staff("27"), "staff:prefecture:27", None),  # 大阪府
    "doctor": (Asker.member("1300001"), "member:13***01", None),                  # 山田太郎, linked
    "desk": (Asker.desk(on_behalf_of=Asker.county_staff("13001")), "desk", "staff:county:13001"),
}

# Targets: own = in 13001, neighbour = 13002 (same prefecture), far = 27001, missing = nowhere.
MEMBERS = {"own": "1300001", "neighbour": "1300003", "far": "2700001", "missing": "1399999"}
# Applications: own = 13001's admission; neighbour = 1300003's move 13001 → 13002; far = 1300005's move
# 13002 → 27001 (it touches Tokyo and Osaka, never 千代田区).
APPLICATIONS = {"own": "A2010-000001", "neighbour": "A2026-000002", "far": "A2026-000003", "missing": "A2010-999999"}
INSTITUTIONS = {"own": "yamada", "neighbour": "sakura", "far": "umeda", "missing": None}

# Who sees what, by hand. A county sees its own; the prefecture its counties; a doctor only
# themselves and their workplace (千代田やまだ内科クリニック); the desk what the county it acts for sees;
# every staff member sees every institution of the master; anonymous nothing.
PERSON = {"county": {"own"}, "prefecture": {"own", "neighbour"}, "other_prefecture": {"far"},
          "doctor": {"own"}, "desk": {"own"}, "anonymous": set()}
APPLICATION = {"county": {"own", "neighbour"}, "prefecture": {"own", "neighbour", "far"}, "other_prefecture": {"far"},
               "doctor": {"own"}, "desk": {"own", "neighbour"}, "anonymous": set()}
# 1300003 (13002) has one application, the transfer from 13001: 千代田区 sees that list, not the member.
APPLICATION_LIST = {**PERSON, "county": {"own", "neighbour"}, "desk": {"own", "neighbour"}}
INSTITUTION = {"county": {"own", "neighbour", "far"}, "prefecture": {"own", "neighbour", "far"},
               "other_prefecture": {"own", "neighbour", "far"}, "doctor": {"own"},
               "desk": {"own", "neighbour", "far"}, "anonymous": set()}
REPORT = {"county": {"own"}, "prefecture": {"own", "neighbour"}, "other_prefecture": {"far"},
          "doctor": {"own"}, "desk": {"own"}, "anonymous": set()}
SCOPES = ["own", "neighbour", "far", "missing"]
# Whose members a name search may show at all (county code, member number), by hand.
IN_AREA = {"county": lambda county, _n: county == "13001", "prefecture": lambda county, _n: county[:2] == "13",
           "other_prefecture": lambda county, _n: county[:2] == "27", "doctor": lambda _c, number: number == "1300001",
           "desk": lambda county, _n: county == "13001"}


@pytest.fixture(scope="module", params=["demo", "imported"])
def demo(request, tmp_path_factory):
    """The demo database, and the same data taken the real way: written as the four files and
    imported with the sync-* importers, so access rules, masking and the log hold for imported data."""
    folder = tmp_path_factory.mktemp("matrix")
    path = folder / "records.sqlite"
    generate_demo(path, members=300, seed=15)
    if request.param == "demo":
        return path
    from records.importer import run_import
    from records.kinds import KINDS, export_files

    export_files(path, folder / "files")
    imported = folder / "imported.sqlite"
    for kind in KINDS.values():
        assert run_import(imported, folder / "files" / kind.file_name, "full", kind).rejected == []
    return imported


@pytest.fixture(scope="module")
def codes(demo):
    conn = sqlite3.connect(demo)
    rows = dict(conn.execute("SELECT name, institution_code FROM institutions WHERE id <= 5"))  # the well-known
    conn.close()
    return {"yamada": rows["千代田やまだ内科クリニック"], "sakura": rows["日本橋さくら皮膚科クリニック"],
            "umeda": rows["梅田たかはし眼科"], None: "1310199990"}


@pytest.fixture
def records(demo, tmp_path):
    audit = tmp_path / "audit.sqlite"
    with Records(demo, audit, today=lambda: date(2026, 11, 25)) as r:
        yield r, audit


def last_log_row(audit) -> tuple:
    conn = sqlite3.connect(audit)
    try:
        rows = conn.execute("SELECT asker, on_behalf, action, record, outcome FROM access_log").fetchall()
    finally:
        conn.close()
    return rows


def mask(value: str, keep: int) -> str:
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def lookups(codes):
    """name: (call(records, asker, scope) -> key of what was returned, masked record of the log, visibility)"""
    return {
        "member": (lambda r, a, s: r.member(a, MEMBERS[s]).member_number,
                   lambda s: mask(MEMBERS[s], 2), PERSON),
        "delivery_settings": (lambda r, a, s: r.delivery_settings(a, MEMBERS[s]).member_number,
                              lambda s: mask(MEMBERS[s], 2), PERSON),
        "applications": (lambda r, a, s: [x.application_number for x in r.applications(a, MEMBERS[s])],
                         lambda s: mask(MEMBERS[s], 2), APPLICATION_LIST),
        "application": (lambda r, a, s: r.application(a, APPLICATIONS[s]).application_number,
                        lambda s: mask(APPLICATIONS[s], 3), APPLICATION),
        "institution": (lambda r, a, s: r.institution(a, codes[INSTITUTIONS[s]]).institution_code,
                        lambda s: mask(codes[INSTITUTIONS[s]], 2), INSTITUTION),
        "family_doctor_report": (lambda r, a, s: r.family_doctor_report(a, codes[INSTITUTIONS[s]]).institution_code,
                                 lambda s: mask(codes[INSTITUTIONS[s]], 2), REPORT),
    }


EXPECTED_KEYS = {
    "applications": {"own": ["A2010-000001"], "neighbour": ["A2026-000002"], "far": []},
}


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("lookup", ["member", "delivery_settings", "applications", "application", "institution",
                                    "family_doctor_report"])
@pytest.mark.parametrize("role", list(ASKERS))
def test_lookup_answer_and_log_row(records, codes, role, lookup, scope):
    r, audit = records
    asker, asker_ref, on_behalf = ASKERS[role]
    call, logged_as, visibility = lookups(codes)[lookup]
    allowed = scope in visibility[role]
    if allowed:
        got = call(r, asker, scope)
        if lookup == "applications":
            assert got == EXPECTED_KEYS["applications"][scope]
        elif lookup in ("member", "delivery_settings"):
            assert got == MEMBERS[scope]
        elif lookup == "application":
            assert got == APPLICATIONS[scope]
        else:
            assert got == codes[INSTITUTIONS[scope]]
    else:
        with pytest.raises(RecordUnavailable) as refused:
            call(r, asker, scope)
        assert message_ja(refused.value) == UNAVAILABLE_JA
        assert (type(refused.value) is AccessDenied) == (role == "anonymous")
    assert last_log_row(audit) == [(asker_ref, on_behalf, lookup, logged_as(scope),
                                    "allowed" if allowed else "refused")]


# Name searches: (query, the member it finds, who may see them).
SEARCHES = {"own": ("山田太郎", "1300001"), "neighbour": ("鈴木一郎", "1300003"), "far": ("田中健一", "2700001"),
            "missing": ("存在しない氏名", None)}
INSTITUTION_SEARCHES = {"own": "千代田やまだ内科クリニック", "neighbour": "日本橋さくら皮膚科クリニック",
                        "far": "梅田たかはし眼科", "missing": "存在しない眼科医院"}


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", list(ASKERS))
def test_name_searches_answer_and_log_row(records, role, scope):
    r, audit = records
    asker, asker_ref, on_behalf = ASKERS[role]
    query, number = SEARCHES[scope]
    name = INSTITUTION_SEARCHES[scope]
    if role == "anonymous":
        for search, text in ((r.find_members, query), (r.find_institutions, name)):
            with pytest.raises(AccessDenied):
                search(asker, text)
        assert last_log_row(audit) == [(asker_ref, on_behalf, "member_search", None, "refused"),
                                       (asker_ref, on_behalf, "institution_search", None, "refused")]
        return
    sees_member = scope in PERSON[role]
    found = r.find_members(asker, query)
    numbers = [m.member.member_number for m in found]
    assert (number in numbers) == sees_member and (not sees_member or numbers[0] == number)
    assert all(IN_AREA[role](m.member.county.code, m.member.member_number) for m in found)  # near names too
    sees_institution = scope in INSTITUTION[role]
    institutions = [i for i, _score in r.find_institutions(asker, name)]
    assert [i.name for i in institutions][:1] == ([name] if sees_institution else [])
    assert role != "doctor" or [i.name for i in institutions] in ([], ["千代田やまだ内科クリニック"])
    shown = ",".join(mask(i.institution_code, 2) if i.institution_code else f"手入力#{i.id}" for i in institutions)
    assert last_log_row(audit) == [
        (asker_ref, on_behalf, "member_search", ",".join(mask(n, 2) for n in numbers) or None,
         "allowed" if numbers else "refused"),
        (asker_ref, on_behalf, "institution_search", shown or None, "allowed" if institutions else "refused"),
    ]


def test_chiyoda_asking_in_the_chat_sees_only_the_transfer_out_of_chiyoda(live_server_factory, tmp_path_factory):
    """Over HTTP, as the issue found it: 千代田区 staff ask where 1300005's procedures stand."""
    import httpx

    from tests.staff import PASSWORD, add_records_and_staff, build_demo

    demo_db = build_demo(tmp_path_factory.mktemp("chat") / "records.sqlite")
    url = live_server_factory(prepare=lambda instance: add_records_and_staff(instance, demo_db))
    with httpx.Client(base_url=url, timeout=15) as http:
        token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
        assert http.post("/api/session", json={"login_id": "chiyoda", "password": PASSWORD},
                         headers=token).status_code == 200
        token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
        created = http.post("/api/conversations", headers=token).json()
        reply = http.post(f"/api/conversations/{created['id']}/messages",
                          json={"text": "会員番号1300005の入会手続きはどこまで進んでいますか"},
                          headers={"Authorization": f"Bearer {created['token']}", **token}).json()["reply"]
    shown = reply["text"] + str(reply["table"])
    assert reply["kind"] == "lookup" and "手続き完了" in shown
    for secret in ("A2026-000003", "大阪", "差戻し", "異動年月日が未記入です。"):
        assert secret not in shown
