"""Record lookups through the conversation core, on the real knowledge base and a small demo records
database: every role × every lookup, refusals that reveal nothing, choices for ambiguous names, quick
actions, masking of what leaves the asker's view, the access log, and one-time link codes."""
from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot import JST, Asker, Core, Store
from bot.conversation.actions import RecordsNotLoaded, SignInHint
from bot.conversation.choices import MemberChoice
from bot.accounts.linking import LinkCodeInvalid
from bot.lookups.replies import NEAR_TEXT, NO_DATA_TEXT, SIGN_IN_TEXT
from bot.lookups.answer import records_asker
from records.errors import UNAVAILABLE_JA, RecordUnavailable
from records.lookup import Records
from tests.staff import staff_asker

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JST)
MARK = "【デモデータ（架空）】\n"


class Clock:
    """A clock the test can move forward (link codes expire)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def audit_db(tmp_path) -> Path:
    return tmp_path / "audit.sqlite"


@pytest.fixture
def core(searcher, demo_db, audit_db, tmp_path, clock):
    records = Records(demo_db, audit_db, today=lambda: clock().date())
    store = Store(tmp_path / "helpdesk.sqlite")
    yield Core(searcher, store, clock, records=records)
    records.close()
    store.close()


def member(number: str) -> Asker:
    return Asker(role="member", member_number=number, account=f"test:{number}")


ASKERS = {
    "county_own": staff_asker("chiyoda"),        # 千代田区医師会 13001: 山田太郎 1300001's county
    "county_same_pref": staff_asker("chuo"),     # 中央区医師会 13002
    "county_other_pref": staff_asker("kita"),    # 大阪市北区医師会 27001
    "pref_own": staff_asker("tokyo"),
    "pref_other": staff_asker("osaka"),
    "member_self": member("1300001"),            # 山田太郎, works at 千代田やまだ内科クリニック
    "member_other": member("2700001"),           # 田中健一 in Osaka
    "anonymous": Asker(),
}

# question → (what an allowed answer contains, who may see it)
LOOKUPS = {
    "application": ("会員番号1300001の入会手続きはどこまで進んでいますか",
                    "入会届（申請番号 A2010-000001、2010年3月1日提出）は、現在「手続き完了」です。",
                    {"county_own", "pref_own", "member_self"}),
    "application_by_number": ("A2026-000001の状況を教えて", "現在「都道府県医師会から差戻し中」です。",
                              {"county_own", "pref_own"}),
    "delivery_by_name": ("山田太郎先生の日医ニュースの送付先は", "日医ニュースは「送付する」設定で、送付先は勤務先です。",
                         {"county_own", "pref_own", "member_self"}),
    "institution_master": ("千代田やまだ内科クリニックはマスタに載っていますか", "は「医療機関マスタに掲載済み」です。",
                           {"county_own", "county_same_pref", "county_other_pref", "pref_own", "pref_other",
                            "member_self"}),
    "family_doctor_report": ("千代田やまだ内科クリニックのかかりつけ医機能報告は",
                             "かかりつけ医機能報告（2026年1月15日提出）は、現在「承認済み」です。",
                             {"county_own", "pref_own", "member_self"}),
}


def ask(core, asker, *texts):
    conversation = core.open_conversation("test", asker).conversation.id
    return [core.reply(conversation, text, asker, "test").reply for text in texts][-1]


def audit_rows(path: Path) -> list[tuple]:
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT asker, action, record, outcome FROM access_log ORDER BY id").fetchall()
    finally:
        conn.close()


# -- every role × every lookup -------------------------------------------------------------------------


@pytest.mark.parametrize("lookup", LOOKUPS)
@pytest.mark.parametrize("role", ASKERS)
def test_every_role_and_lookup(core, role, lookup):
    question, allowed_text, allowed = LOOKUPS[lookup]
    reply = ask(core, ASKERS[role], question)
    if role == "anonymous":
        assert (reply.kind, reply.text, reply.actions) == ("sign_in_required", SIGN_IN_TEXT, (SignInHint(),))
    elif role in allowed:
        assert reply.kind == "lookup"
        assert reply.text.startswith(MARK)
        assert allowed_text in reply.text
        assert reply.table is not None and 1 <= len(reply.table.rows) <= 8
    elif lookup == "delivery_by_name":
        # A name search offers whom the records would show this asker under that name (their own near
        # namesakes), never the 山田 太郎 they may not see; nobody at all reads as a refusal.
        seen = core.lookups.records.find_members(records_asker(ASKERS[role]), "山田太郎")
        assert "1300001" not in [m.member.member_number for m in seen]
        if seen:
            assert (reply.kind, reply.text) == ("lookup_choices", NEAR_TEXT)
            assert reply.choices == tuple(MemberChoice(m.member.member_number, "delivery") for m in seen)
        else:
            assert (reply.kind, reply.text, reply.table) == ("lookup", UNAVAILABLE_JA, None)
    else:
        assert (reply.kind, reply.text, reply.table) == ("lookup", UNAVAILABLE_JA, None)


def test_answers_are_short_tables(core):
    reply = ask(core, ASKERS["county_own"], "山田太郎先生の日医ニュースの送付先は")
    assert reply.text == (MARK + "山田　太郎 先生（会員番号 1300001）の送付区分です。\n"
                          "日医ニュースは「送付する」設定で、送付先は勤務先です。")
    assert reply.table.columns == ("送付物", "送付", "送付先")
    assert reply.table.rows == (("日医ニュース", "する", "勤務先"), ("日本医師会雑誌通常号", "する", "自宅"),
                                ("日本医師会雑誌特別号", "しない", "—"))
    assert reply.full_text.endswith("・日本医師会雑誌特別号 / しない / —")


def test_a_waiting_clinic_gets_its_estimated_window(core):
    reply = ask(core, ASKERS["pref_own"], "「神田ひだまり在宅クリニック」はマスタに載っていますか")
    assert reply.kind == "lookup"
    assert "神田ひだまり在宅クリニック（手入力の医療機関、コード未付番）は「厚生局の登録待ち（手入力の医療機関）」です。" in reply.text
    assert ("マスタ更新の見込み", "2026年11月28日〜2027年1月10日の週末夜間（目安）") in reply.table.rows


def test_a_returned_report_gives_its_reason(core):
    reply = ask(core, ASKERS["county_same_pref"], "1310200022のかかりつけ医機能報告の差戻し理由は")
    assert "現在「郡市区等医師会から差戻し中」です。\n差戻し理由: 報告項目（時間外の診療体制）の記載漏れがあります。" in reply.text


def test_full_width_digits_and_a_transfer_seen_by_both_counties(core):
    for role in ("county_own", "county_same_pref"):  # A2026-000002: from 13001 to 13002
        reply = ask(core, ASKERS[role], "会員番号１３００００３の異動届の状況は")
        assert "異動届（申請番号 A2026-000002" in reply.text and "異動元: 千代田区医師会 → 異動先: 中央区医師会" in reply.text


# -- refusals reveal nothing -----------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["会員番号{}の送付先は", "会員番号{}の入会手続きの状況"])
def test_missing_and_forbidden_read_the_same(core, question):
    outsider = ASKERS["county_same_pref"]
    forbidden = ask(core, outsider, question.format("1300001"))  # exists, in another county
    missing = ask(core, outsider, question.format("1399999"))    # does not exist
    assert forbidden == missing
    assert forbidden.text == UNAVAILABLE_JA


def test_anonymous_is_asked_to_sign_in_without_touching_the_records(core, audit_db):
    for question, _text, _who in LOOKUPS.values():
        assert ask(core, Asker(), question).kind == "sign_in_required"
    assert ask(core, Asker(), "1300001").kind == "sign_in_required"
    assert audit_rows(audit_db) == []


def test_every_lookup_is_in_the_access_log(core, audit_db):
    ask(core, ASKERS["county_own"], "会員番号1300001の送付先は")
    ask(core, ASKERS["county_same_pref"], "会員番号1300001の送付先は")
    assert audit_rows(audit_db) == [
        ("staff:county:13001(chiyoda)", "delivery_settings", "13***01", "allowed"),
        ("staff:county:13002(chuo)", "delivery_settings", "13***01", "refused"),
    ]


def test_missing_member_data_is_said_plainly(searcher, tmp_path):
    records = Records(tmp_path / "none.sqlite", tmp_path / "audit.sqlite")
    store = Store(tmp_path / "helpdesk.sqlite")
    core = Core(searcher, store, lambda: NOW, records=records)
    try:
        reply = ask(core, ASKERS["county_own"], "会員番号1300001の送付先は")
        assert (reply.text, reply.actions) == (NO_DATA_TEXT, (RecordsNotLoaded(),))
    finally:
        records.close()
        store.close()


# -- names: one, several, near ----------------------------------------------------------------------------


def namesakes(demo_db: Path) -> tuple[str, list[str]]:
    """A family name shared by several Tokyo members and by someone outside Tokyo."""
    conn = sqlite3.connect(demo_db)
    try:
        rows = conn.execute("SELECT member_number, name FROM members").fetchall()
    finally:
        conn.close()
    families: dict[str, list[str]] = {}
    for number, name in rows:
        families.setdefault(name.split("\u3000")[0], []).append(number)
    for family, numbers in sorted(families.items()):
        tokyo = [n for n in numbers if n.startswith("13")]
        if len(tokyo) >= 2 and len(tokyo) < len(numbers) and family != "山田":
            return family, numbers
    raise AssertionError("the demo has no family name shared inside and outside Tokyo")


def test_an_ambiguous_name_offers_only_people_the_asker_may_see(core, demo_db):
    family, numbers = namesakes(demo_db)
    asker = ASKERS["pref_own"]
    conversation = core.open_conversation("test", asker).conversation.id
    choices = core.reply(conversation, f"{family}先生の送付先は", asker, "test").reply
    assert (choices.kind, choices.text) == ("lookup_choices", "該当する先生が複数いらっしゃいます。どなたについてお調べしますか。")
    shown = [c.member_number for c in choices.choices]
    assert set(shown) <= {n for n in numbers if n.startswith("13")} and len(shown) >= 2
    assert choices.choices == tuple(MemberChoice(n, "delivery") for n in shown)
    for i, (button, number) in enumerate(zip(choices.buttons, shown)):
        # Tokyo's secretariat may see them all: the whole number tells namesakes apart.
        assert family in button.label and f"会員番号 {number}）" in button.label
        assert button.id == f"choice:{i}" and button.echo.endswith(f" 先生（{number}）")
    turn = core.reply(conversation, None, asker, "test", button="choice:1")
    assert turn.question.text == choices.buttons[1].echo  # the short form is what the user said
    assert turn.reply.kind == "lookup" and f"（会員番号 {shown[1]}）の送付区分です。" in turn.reply.text
    # In the desk's transcript the pressed choice is masked like any name and number.
    pressed = core.transcript(conversation)[-2].text
    assert shown[1] not in pressed and family not in pressed

    # Osaka's secretariat is offered none of Tokyo's namesakes.
    other = ask(core, ASKERS["pref_other"], f"{family}先生の送付先は")
    assert not any(c.member_number.startswith("13") for c in other.choices)


def test_a_wrong_kanji_is_offered_as_maybe(core):
    reply = ask(core, ASKERS["county_own"], "山田太朗先生の送付先は")
    assert (reply.kind, reply.text) == ("lookup_choices", NEAR_TEXT)
    assert [b.label for b in reply.buttons] == ["山田　太郎（千代田区医師会・会員番号 1300001）"]


def test_an_old_character_form_finds_the_member(core):
    reply = ask(core, ASKERS["county_own"], "高橋美咲さんの会員情報")
    assert ("会員番号", "1300004") in reply.table.rows and ("氏名", "髙橋　美咲（タカハシ　ミサキ）") in reply.table.rows


# -- quick actions and prompts ---------------------------------------------------------------------------------


def test_staff_greeting_offers_quick_actions_and_a_prompt_takes_the_number(core):
    asker = ASKERS["county_own"]
    conversation = core.open_conversation("test", asker).conversation.id
    greeting = core.reply(conversation, "こんにちは", asker, "test").reply
    assert [b.label for b in greeting.buttons] == [
        "使い方", "入会手続きの状況", "送付先の確認", "医療機関マスタの確認", "かかりつけ医機能報告の確認", "連携コードの発行"]
    assert "千代田区医師会 事務局（テスト）としてログインしています。" in greeting.text
    assert [b.label for b in ask(core, Asker(), "こんにちは").buttons] == ["使い方"]

    prompt = core.reply(conversation, "送付先の確認", asker, "test").reply
    assert prompt.kind == "lookup_prompt" and prompt.text.startswith("送付先（送付区分）をお調べします。")
    answer = core.reply(conversation, "1300001", asker, "test").reply
    assert answer.kind == "lookup" and "の送付区分です。" in answer.text

    prompt = core.reply(conversation, "医療機関マスタの確認", asker, "test").reply
    assert prompt.kind == "lookup_prompt"
    answer = core.reply(conversation, "千代田やまだ内科クリニック", asker, "test").reply
    assert "は「医療機関マスタに掲載済み」です。" in answer.text


def test_knowledge_base_questions_are_never_taken_for_lookups(core):
    questions = []
    for path in sorted((ROOT / "kb" / "articles").glob("*.md")):
        front = yaml.safe_load(path.read_text(encoding="utf-8").split("---")[1])
        questions += [front["title"], *front.get("questions", [])]
    dev = ROOT.parent / "shared" / "eval" / "mamis_dev.jsonl"
    if dev.exists():
        questions += [json.loads(line)["query"] for line in dev.read_text(encoding="utf-8").splitlines() if line]
    for asker in (ASKERS["county_own"], Asker()):
        taken = [q for q in questions if core.lookups.wants(q, asker) is not None]
        assert taken == []
    reply = ask(core, ASKERS["county_own"], "日医ニュースの送付先を自宅に変更したい")
    assert reply.kind == "answer" and reply.sources[0].slug == "delivery-settings"


# -- what leaves the asker's view is masked ------------------------------------------------------------------------


def test_unanswered_log_and_desk_transcript_are_masked(core):
    asker = ASKERS["county_own"]
    conversation = core.open_conversation("test", asker).conversation.id
    core.reply(conversation, "ラーメンのおすすめ 1300001", asker, "test")
    core.reply(conversation, "山田太郎先生の日医ニュースの送付先は", asker, "test")
    [row] = core.store.unanswered()
    assert row["text"] == "ラーメンのおすすめ 13***01"

    desk = "\n".join(m.text for m in core.transcript(conversation))
    assert "1300001" not in desk and "山田太郎" not in desk and "山田　太郎" not in desk
    assert "山＊＊＊先生の日医ニュースの送付先は" in desk and "山＊＊＊＊ 先生（会員番号 13***01）の送付区分です。" in desk
    # The asker's own history keeps the whole answer.
    own = core.history(conversation, asker=asker)
    assert "山田　太郎 先生（会員番号 1300001）" in own[-1].text and own[-1].reply.table is not None


def test_a_conversation_belongs_to_the_account_that_opened_it(core):
    from bot import ConversationNotFound

    asker = ASKERS["county_own"]
    new = core.open_conversation("web", asker)
    core.reply(new.conversation.id, "会員番号1300001の送付先は", asker, "web")
    for stranger in (Asker(), ASKERS["pref_own"]):
        with pytest.raises(ConversationNotFound):
            core.history(new.conversation.id, new.token, stranger)
        with pytest.raises(ConversationNotFound):
            core.reply(new.conversation.id, "会員番号1300001の送付先は", stranger, "web")


# -- one-time link codes ------------------------------------------------------------------------------------------


def issue_in_chat(core, asker, number="1300001"):
    conversation = core.open_conversation("test", asker).conversation.id
    assert core.reply(conversation, "連携コードの発行", asker, "test").reply.kind == "lookup_prompt"
    turn = core.reply(conversation, number, asker, "test")
    return conversation, turn


def test_link_code_lifecycle(core, clock, audit_db, tmp_path):
    staff = ASKERS["county_own"]
    conversation, turn = issue_in_chat(core, staff)
    assert turn.reply.kind == "link_code"
    code = re.search(r"連携コード: ([A-Z0-9]{8})", turn.reply.text).group(1)
    assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{8}", code)
    assert "有効期限: 2026年11月25日 10:15 まで（1回限り）" in turn.reply.text
    # Shown once: neither the stored message, its replay, nor the desk's transcript holds it.
    stored = core.history(conversation, asker=staff)[-1]
    assert code not in stored.text and code not in json.dumps(stored.reply.to_dict(), ensure_ascii=False)
    assert "＊＊＊＊＊＊＊＊" in stored.text
    assert all(code not in m.text for m in core.transcript(conversation))
    with sqlite3.connect(core.store.path) as conn:
        dump = "\n".join(conn.iterdump())
    assert code not in dump and code.lower() not in dump
    assert ("staff:county:13001(chiyoda)", "link_code_issue", "13***01", "allowed") in audit_rows(audit_db)

    with pytest.raises(LinkCodeInvalid) as wrong:
        core.consume_link_code("ABCDEFGH", "telegram", "555")
    assert wrong.value.reason == "unknown"
    link = core.consume_link_code(code[:4].lower() + "-" + code[4:], "telegram", "555")  # typed loosely
    assert (link.channel, link.external_user_id, link.member_number) == ("telegram", "555", "1300001")
    with pytest.raises(LinkCodeInvalid) as reused:
        core.consume_link_code(code, "telegram", "666")
    assert reused.value.reason == "used"
    assert core.linked_asker("telegram", "666") == Asker(account="telegram:666")  # one owner before and after

    # The linked account asks as the member: their own records, nobody else's.
    doctor = core.linked_asker("telegram", "555")
    assert (doctor.role, doctor.member_number) == ("member", "1300001")
    assert "山田　太郎 先生（会員番号 1300001）の送付区分です。" in ask(core, doctor, "私の送付先を教えて").text
    assert ask(core, doctor, "会員番号1300004の送付先は").text == UNAVAILABLE_JA

    # Expiry: valid until the 15th minute, not after.
    issued = core.issue_link_code(staff, "1300004")
    clock.now = NOW + timedelta(minutes=15)
    with pytest.raises(LinkCodeInvalid) as expired:
        core.consume_link_code(issued.code, "telegram", "777")
    assert expired.value.reason == "expired"
    assert LinkCodeInvalid.message_ja.startswith("連携コードが正しくないか、有効期限が切れています。")


def test_link_codes_are_issued_only_within_scope(core):
    with pytest.raises(RecordUnavailable):
        core.issue_link_code(ASKERS["county_other_pref"], "1300001")
    with pytest.raises(RecordUnavailable):
        core.issue_link_code(ASKERS["county_other_pref"], "1399999")
    _conversation, turn = issue_in_chat(core, ASKERS["pref_other"])
    assert turn.reply.text == UNAVAILABLE_JA
    assert ask(core, ASKERS["member_self"], "会員番号1300001の連携コードを発行して").text.startswith(
        "連携コードは医師会事務局の職員が発行します。")
    assert core.issue_link_code(ASKERS["pref_own"], "1300003").member_number == "1300003"


# -- buttons any channel can draw ------------------------------------------------------------------------------


class LongSearcher:
    """The real search, plus one article whose slug and title are longer than any button id may be,
    so that the 「もしかして」 buttons of both kinds (kb:<slug>, choice:<n>) are exercised."""

    SLUG = "a-very-long-article-slug-that-does-not-fit-into-telegram-callback-data-at-all"

    def __init__(self, real):
        from kb.results import SearchResult

        self.real = real
        self.long = SearchResult(slug=self.SLUG, title="とても長い記事のタイトル" * 6, kind="faq", audience="all",
                                 updated=None, event_date=None, passage="本文です。", section=None, score=1.0,
                                 confidence=0.3)

    def search(self, query, k=5):
        found = self.real.search(query, k=k)
        if "長い記事" in query:
            return [self.long, *[r for r in found if r.confidence < 0.5]][:k]
        return found

    def article(self, slug):
        return self.real.article(slug)


def test_every_button_the_core_draws_has_a_short_id_that_it_resolves(searcher, demo_db, audit_db, tmp_path, clock):
    records = Records(demo_db, audit_db, today=lambda: clock().date())
    store = Store(tmp_path / "buttons.sqlite")
    core = Core(LongSearcher(searcher), store, clock, records=records)
    staff = ASKERS["county_own"]
    family, _numbers = namesakes(demo_db)
    script = [
        (staff, "こんにちは"), (staff, "使い方"), (Asker(), "長い記事について"), (Asker(), "パスワードを忘れた"),
        (Asker(), "明日の天気を教えて"), (Asker(), "担当者と話したい"), (Asker(), "会員番号1300001の送付先は"),
        (staff, "会員番号1300001の会員情報"), (staff, f"{family}先生の送付先は"), (staff, "山田太朗先生の送付先は"),
        (staff, "千代田やまだ内科はマスタに載っていますか"), (staff, "送付先の確認"), (staff, "ありがとう"),
        (staff, "日医ニュースの送付先を自宅に変更したい"),
    ]
    seen_kinds, pressed = set(), 0
    try:
        for asker, text in script:
            cid = core.open_conversation("test", asker).conversation.id
            reply = core.reply(cid, text, asker, "test").reply
            seen_kinds.add(reply.kind)
            buttons = list(reply.buttons) + [a.button for a in reply.actions if hasattr(a, "button")]
            for button in buttons:
                assert 0 < len(button.id.encode("utf-8")) <= 64, (reply.kind, button)
            for button in buttons:  # each one, pressed right after it was shown, means something
                again = core.open_conversation("test", asker).conversation.id
                shown = core.reply(again, text, asker, "test").reply
                assert button in list(shown.buttons) + [a.button for a in shown.actions if hasattr(a, "button")]
                answer = core.reply(again, None, asker, "test", button=button.id).reply
                assert answer.text != "この選択肢は使えなくなりました。お手数ですが、もう一度ご質問を入力してください。"
                pressed += 1
        answer = core.reply(cid, "日医ニュースの送付先を自宅に変更したい", staff, "test")
        next_step = core.next_step(answer.answer.id)
        seen_kinds.add(next_step.reply.kind)
        assert all(len(b.id.encode()) <= 64 for b in next_step.reply.buttons)
    finally:
        records.close()
        store.close()
    assert seen_kinds == {"greeting", "help", "choices", "unknown", "out_of_scope", "handoff", "sign_in_required",
                          "lookup", "lookup_choices", "lookup_prompt", "thanks", "answer", "next_step"}
    assert pressed >= 15


# -- institutions by their exact name -------------------------------------------------------------------------


@pytest.mark.parametrize("question, topic", [
    ("丸の内メディカルクリニックはマスタに載っていますか", "institution"),  # の inside the name
    ("丸の内メディカルクリニック", "institution"),                          # the name alone
    ("かかりつけ医機能報告の状況を教えて 千代田やまだ内科クリニック", "report"),  # the name after the topic
])
def test_an_institution_named_exactly_is_that_institution(core, question, topic):
    asker = ASKERS["county_own"]
    request = core.lookups.wants(question, asker)
    assert (request.topic, request.institution) == (topic, question.split(" ")[-1].split("は")[0])
    reply = ask(core, asker, question)
    assert reply.kind == "lookup" and reply.buttons == ()
    assert reply.text.startswith(MARK + request.institution)


def test_an_institution_answer_says_its_status_once_and_dates_the_japanese_way(core):
    reply = ask(core, ASKERS["pref_own"], "「神田ひだまり在宅クリニック」はマスタに載っていますか")
    assert reply.text.count("厚生局の登録待ち") == 1
    assert not re.search(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", reply.full_text)
    assert "の厚生局への届出から見ると、2026年11月28日〜2027年1月10日の週末夜間のマスタ更新で反映される見込みです（目安）。" in reply.text


def test_a_name_shared_by_two_institutions_offers_both_own_area_first(core, demo_db):
    conn = sqlite3.connect(demo_db)
    try:
        shared = conn.execute("SELECT name FROM institutions GROUP BY name HAVING count(*) > 1 ORDER BY name").fetchall()
        rows = {name: conn.execute("SELECT institution_code, prefecture_code FROM institutions WHERE name = :n",
                                   {"n": name}).fetchall() for (name,) in shared}
    finally:
        conn.close()
    for name, places in rows.items():
        prefectures = sorted({p for _code, p in places})
        if len(prefectures) < 2:
            continue
        asker = staff_asker("osaka" if "27" in prefectures else "tokyo")
        own = asker.association_code
        reply = ask(core, asker, f"{name}はマスタに載っていますか")
        assert (reply.kind, reply.text) == ("lookup_choices", "該当しそうな医療機関が複数あります。どの医療機関についてお調べしますか。")
        assert len(reply.choices) == len(places) and all(c.name == name for c in reply.choices)
        prefecture_of = dict(places)
        first = [prefecture_of[c.code] == own for c in reply.choices]
        assert first == sorted(first, reverse=True) and first[0]  # the asker's own prefecture first
        return
    pytest.skip("the demo has no institution name shared across prefectures")


def test_the_bots_own_prompts_name_nobody():
    """The look-up prompts say 「会員番号（7桁）または先生のお名前」: 「または」 is no name, so the desk's
    transcript shows the prompt as the user saw it (it read 「ま＊＊先生のお名前」)."""
    from bot.lookups.replies import PROMPTS
    from bot.privacy.redaction import redact

    asking_names = [p for p in PROMPTS.values() if "または先生" in p]
    assert len(asking_names) == 3
    for prompt in asking_names:
        assert "または先生のお名前" in redact(prompt)
    assert redact("山田太郎先生の会員番号") != "山田太郎先生の会員番号"  # a real name still is masked


def test_buttons_under_an_earlier_reply_keep_their_choices(core):
    """Telegram's /status answers twice (the member record with two buttons, then the admission); the
    buttons under the first answer still mean its choices, not 「この選択肢は使えなくなりました」."""
    doctor = member("1300001")
    conversation = core.open_conversation("test", doctor).conversation.id
    record = core.reply(conversation, "私の会員情報", doctor, "test").reply
    assert [b.label for b in record.buttons] == ["入会手続きの状況", "送付先の確認"]
    core.reply(conversation, "私の入会手続きの状況", doctor, "test")
    pressed = core.reply(conversation, None, doctor, "test", button=record.buttons[1].id)
    assert pressed.question.text == "会員番号1300001の送付先"
    assert pressed.reply.kind == "lookup" and "送付" in pressed.reply.text


def test_the_core_marks_record_replies_personal_and_the_mark_survives_storage(core):
    """Which replies a group may see is the core's rule (`Reply.personal`), not a channel's list of
    kinds: a record, a prompt for a number, a refusal and the request to sign in are personal, a
    knowledge-base answer is not; stored and read back, the mark is kept, and a reply stored before
    the mark existed is read as personal by its kind."""
    from bot.model import Reply

    staff = ASKERS["county_own"]
    personal = [ask(core, staff, LOOKUPS["application"][0]), ask(core, staff, "送付先の確認"),
                ask(core, ASKERS["county_other_pref"], LOOKUPS["application"][0]),
                ask(core, Asker(), LOOKUPS["delivery_by_name"][0])]
    assert [r.kind for r in personal] == ["lookup", "lookup_prompt", "lookup", "sign_in_required"]
    assert all(r.personal for r in personal)
    assert not ask(core, staff, "パスワードを忘れました").personal
    conversation = core.open_conversation("test", staff).conversation.id
    core.reply(conversation, LOOKUPS["application"][0], staff, "test", idempotency_key="k1")
    replayed = core.reply(conversation, LOOKUPS["application"][0], staff, "test", idempotency_key="k1")
    assert replayed.replayed and replayed.reply.personal
    old = personal[0].to_dict()
    del old["personal"]
    assert Reply.from_dict(old).personal and not Reply.from_dict({"text": "はい", "kind": "answer"}).personal
