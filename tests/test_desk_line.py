"""The desk's phone line, days and hours come from the settings wherever the bot speaks (issue 23).

With DESK_DAYS, DESK_HOURS and DESK_PHONE set to something other than the defaults, every sentence that
sends the user to the desk (the core's replies, the handoff offer and the after-hours notice, the phone
and desk buttons, Telegram's /help, the web pages' footer) names the configured line, never the default
「平日9:00〜17:00」 and 0120-110-030.
"""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import httpx
import pytest

from bot import JST, Asker, Core, Reply, Store
from bot.conversation.actions import CallDesk, OfferEscalation
from bot.desk.handoff import Handoff
from bot.privacy.redaction import redact
from bot.desk.tickets import TicketStore
from bot.desk.hours import BusinessHours
from bot.lookups.replies import institution_next
from tests.telegram_harness import fake  # noqa: F401  (the fake Bot API, a fixture)

LINE = {"DESK_DAYS": ["mon", "tue", "wed", "thu", "fri", "sat"], "DESK_HOURS": "09:30-18:00",
        "DESK_PHONE": "03-3942-6139"}
CONTACT = "MAMIS運営事務局（電話 03-3942-6139、月〜土 9:30〜18:00）"
PHONE_ACTION = {"type": "handoff", "label": "MAMIS運営事務局に電話する", "desk": "MAMIS運営事務局",
                "phone": "03-3942-6139", "tel": "tel:0339426139", "hours": "月〜土 9:30〜18:00"}
DESK_ACTION = {"type": "offer_escalation", "label": "担当者に問い合わせる", "id": "handoff",
               "payload": "担当者と話したい", "desk": "MAMIS運営事務局", "phone": "03-3942-6139"}
WEDNESDAY, SUNDAY = datetime(2026, 11, 25, 10, tzinfo=JST), datetime(2026, 11, 29, 10, tzinfo=JST)


def says_only_the_configured_line(text: str) -> bool:
    return "平日" not in text and "9:00〜17:00" not in text and "0120" not in text


@pytest.mark.parametrize("settings, label, contact", [
    ({}, "平日9:00〜17:00（土日祝日・年末年始を除く）", "MAMIS運営事務局（フリーダイヤル 0120-110-030、平日9:00〜17:00）"),
    (LINE, "月〜土 9:30〜18:00（祝日・年末年始を除く）", CONTACT),
    ({"DESK_DAYS": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "DESK_CLOSED_ON_HOLIDAYS": False,
      "DESK_CLOSED_DAYS": "", "DESK_HOURS": "08:00-20:00"},
     "毎日8:00〜20:00", "MAMIS運営事務局（フリーダイヤル 0120-110-030、毎日8:00〜20:00）"),
    # 平日 means Monday to Friday without holidays: open on holidays, the days are named instead.
    ({"DESK_CLOSED_ON_HOLIDAYS": False}, "月〜金 9:00〜17:00（年末年始を除く）",
     "MAMIS運営事務局（フリーダイヤル 0120-110-030、月〜金 9:00〜17:00）"),
    ({"DESK_DAYS": ["mon", "wed", "fri"], "DESK_CLOSED_DAYS": "08-13..08-15", "DESK_PHONE": "0800-123-4567"},
     "月・水・金 9:00〜17:00（祝日・所定の休業日を除く）", "MAMIS運営事務局（フリーダイヤル 0800-123-4567、月・水・金 9:00〜17:00）"),
    ({"DESK_DAYS": ["mon", "tue", "wed", "fri", "sat"]}, "月〜水・金・土 9:00〜17:00（祝日・年末年始を除く）",
     "MAMIS運営事務局（フリーダイヤル 0120-110-030、月〜水・金・土 9:00〜17:00）"),
])
def test_the_label_and_the_contact_say_the_configured_days(settings, label, contact):
    hours = BusinessHours.from_settings(settings)
    assert (hours.label(), hours.contact()) == (label, contact)


def test_a_closed_date_outside_the_year_end_is_not_called_the_year_end():
    hours = BusinessHours.from_settings({"DESK_CLOSED_DAYS": "08-14"})
    assert hours.closed_reason(datetime(2026, 8, 14).date()) == "休業日"
    assert BusinessHours().closed_reason(datetime(2026, 12, 30).date()) == "年末年始の休業日"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "helpdesk.sqlite")
    yield s
    s.close()


def make_core(searcher, store, now=WEDNESDAY, desk=True) -> Core:
    hours = BusinessHours.from_settings(LINE)
    handoff = Handoff(store, TicketStore(store), hours, lambda: now, redact) if desk else None
    return Core(searcher, store, lambda: now, hours=hours, desk=handoff)


def ask(core, text=None, button=None, conversation=None):
    conversation = conversation or core.open_conversation("test", Asker()).conversation.id
    return core.reply(conversation, text, Asker(), "test", button=button)


def test_every_reply_of_the_core_that_names_the_desk_names_the_configured_line(searcher, store):
    core = make_core(searcher, store)
    help_ = ask(core, "使い方").reply
    assert help_.kind == "help" and help_.text.endswith(f"「担当者と話したい」と入力してください。{CONTACT}をご案内します。")
    unknown = ask(core, "パスワードを忘れた").reply
    assert unknown.kind == "unknown" and [a.to_dict() for a in unknown.actions] == [DESK_ACTION]
    assert unknown.text.endswith(f"別の言葉で言い換えていただくか、{CONTACT}へお問い合わせください。")
    outside = ask(core, "明日の天気を教えて").reply
    assert outside.kind == "out_of_scope" and outside.text.endswith(f"ご不明な点は{CONTACT}へお問い合わせください。")
    stale = ask(core, None, button="choice:7").reply
    assert [a.to_dict() for a in stale.actions] == [DESK_ACTION]

    new = core.open_conversation("test", Asker())
    answer = core.reply(new.conversation.id, "雑誌の送り先を勤務先にしたい", Asker(), "test")
    core.feedback(answer.answer.id, False, new.token)
    step = core.next_step(answer.answer.id, new.token).reply
    assert step.kind == "next_step" and f"解決しない場合は、{CONTACT}へお問い合わせください。" in step.text
    assert [a.to_dict() for a in step.actions] == [DESK_ACTION]

    for reply in (help_, unknown, outside, step):
        assert says_only_the_configured_line(reply.text), reply.text


def test_the_handoff_texts_name_the_configured_line(searcher, store):
    # Without a desk the core gives the number; with one it offers a ticket and the phone beside it.
    bare = ask(make_core(searcher, store, desk=False), "電話で相談したい").reply
    assert bare.text == f"担当者へのご相談は、{CONTACT}で承ります。お電話でお問い合わせください。"
    assert [a.to_dict() for a in bare.actions] == [PHONE_ACTION]

    core = make_core(searcher, store, now=SUNDAY)
    conversation = core.open_conversation("test", Asker()).conversation.id
    offer = ask(core, "担当者と話したい", conversation=conversation).reply
    assert offer.kind == "handoff_offer" and [a.to_dict() for a in offer.actions] == [PHONE_ACTION]
    assert offer.text.endswith("お電話（MAMIS運営事務局 電話 03-3942-6139、月〜土 9:30〜18:00）でもご相談いただけます。")
    assert offer.text.startswith("MAMIS運営事務局の担当者にお問い合わせを送りますか。")
    ticket = ask(core, None, button=offer.buttons[0].id, conversation=conversation).reply
    assert ticket.kind == "ticket"
    assert ticket.text.endswith(
        "本日は日曜日のため、ただいま受付時間外です。受付時間は月〜土 9:30〜18:00（祝日・年末年始を除く）です。"
        "担当者からの返信は11月30日（月）9:30以降になります。お急ぎの場合は、受付時間内に"
        "MAMIS運営事務局 電話 03-3942-6139 へお電話ください。")
    for reply in (bare, offer, ticket):
        assert says_only_the_configured_line(reply.text), reply.text


def test_a_stored_reply_read_back_keeps_the_line_it_named():
    reply = Reply("…", "handoff", actions=(CallDesk.of(BusinessHours.from_settings(LINE)),
                                          OfferEscalation.of(BusinessHours.from_settings(LINE))))
    assert [a.to_dict() for a in Reply.from_dict(reply.to_dict()).actions] == [PHONE_ACTION, DESK_ACTION]
    # A reply stored before the line was a setting has no phone or hours: it reads back as the default.
    stored = {"text": "…", "kind": "handoff", "actions": [{"type": "handoff", "label": "MAMIS運営事務局に電話する"}]}
    old = Reply.from_dict(stored)
    assert old.actions == (CallDesk(),) and old.actions[0].to_dict()["phone"] == "0120-110-030"


def test_a_lookup_that_sends_the_user_to_the_desk_names_it_as_told():
    unmatched = SimpleNamespace(master_status="unmatched")
    assert institution_next(unmatched, CONTACT) == (
        f"同一の医療機関とみなされない変更のため、自動では更新されません。{CONTACT}にお問い合わせください。")


# -- through the served widget's API and pages -------------------------------------------------------------


@pytest.fixture(scope="module")
def http(live_server_factory):
    with httpx.Client(base_url=live_server_factory(LINE), timeout=10) as client:
        yield client


def test_the_served_chat_and_pages_name_the_configured_line(http):
    created = http.post("/api/conversations", json={}).json()
    cid, auth = created["id"], {"Authorization": f"Bearer {created['token']}"}

    def say(text):
        return http.post(f"/api/conversations/{cid}/messages", json={"text": text}, headers=auth).json()["reply"]

    unknown = say("パスワードを忘れた")
    assert unknown["kind"] == "unknown" and unknown["actions"] == [DESK_ACTION] and CONTACT in unknown["text"]
    offer = say(unknown["actions"][0]["payload"])
    assert offer["kind"] == "handoff_offer" and offer["actions"] == [PHONE_ACTION]
    assert "お電話（MAMIS運営事務局 電話 03-3942-6139、月〜土 9:30〜18:00）" in offer["text"]
    help_ = say("使い方")
    history = http.get(f"/api/conversations/{cid}/messages", headers=auth).json()
    assert [m["actions"] for m in history if m["role"] == "bot"][:2] == [[DESK_ACTION], [PHONE_ACTION]]
    for text in (unknown["text"], offer["text"], help_["text"]):
        assert says_only_the_configured_line(text), text

    page = http.get("/kb", params={"q": "ぜんぜんかんけいのないことば"}).text
    assert 'MAMIS運営事務局（電話 <a href="tel:0339426139">03-3942-6139</a>）へお問い合わせください' in page
    assert 'お問い合わせ：MAMIS運営事務局 電話 <a href="tel:0339426139">03-3942-6139</a>' in page
    assert "0120" not in page


# -- Telegram ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def line_bot(tmp_path_factory, fake):
    from tests.conftest import build_instance
    from tests.telegram_harness import InProcessBot

    instance = build_instance(tmp_path_factory.mktemp("line") / "instance", LINE)
    running = InProcessBot(instance.path, fake.url, TELEGRAM_WORKERS=0).start()
    yield running
    running.stop()


def test_telegram_help_and_human_name_the_configured_line(line_bot, fake):
    fake.command(2301, "/help")
    help_ = fake.wait_for("sendMessage", 2301)[0].params["text"]
    assert "・/human … 担当者（MAMIS運営事務局）へのご相談。お電話は 03-3942-6139（月〜土 9:30〜18:00）" in help_
    fake.command(2301, "/human")
    offer = fake.wait_for("sendMessage", 2301, 2)[1].params["text"]
    assert "お電話（MAMIS運営事務局 電話 03-3942-6139、月〜土 9:30〜18:00）でもご相談いただけます。" in offer
    assert "電話: 03-3942-6139（月〜土 9:30〜18:00）" in offer
    for text in (help_, offer):
        assert says_only_the_configured_line(text), text
