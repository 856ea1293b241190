"""Handing a conversation to the desk through the core, for every way of asking, and every state move.

The core is built by helpdesk.services (as every process builds it), so its desk hook is the real one;
SQLite is a real file. The browser and a real server are in test_desk_browser.py / test_desk_server.py.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest

from bot import Asker
from bot.desk.actions import Agent
from bot.desk.handoff import CANCEL_BUTTON, CONFIRM_BUTTON
from bot.desk.hours import JST, BusinessHours, BadHours
from tests.conftest import NOW, build_instance

UNANSWERABLE = ("ぴよぴよほげほげ", "ふがふがもげもげ")
YAMADA, SATO = Agent("yamada", "運営事務局 山田"), Agent("sato", "運営事務局 佐藤")


@pytest.fixture
def services(tmp_path):
    from helpdesk.services import build_services
    from helpdesk.settings import load_settings

    instance = build_instance(tmp_path / "instance")
    services = build_services(instance.path, load_settings(instance.path))
    yield services
    services.close()


@pytest.fixture
def core(services):
    return services.core()


@pytest.fixture
def desk(core, services):
    return services.desk().desk


def rows(core, sql, *params):
    conn = sqlite3.connect(core.store.path)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def state(core, cid):
    return core.store.state(cid)


def open_web(core, asker=Asker()):
    return core.open_conversation("web", asker).conversation.id


def say(core, cid, text=None, button=None, asker=Asker(), key=None, channel="web"):
    return core.reply(cid, text, asker, channel, button=button, idempotency_key=key)


def confirm_button(turn):
    return next(b.id for b in turn.reply.buttons if b.id.startswith(CONFIRM_BUTTON))


def test_asking_in_words_offers_then_confirming_makes_the_ticket(core):
    cid = open_web(core)
    say(core, cid, UNANSWERABLE[0])
    offer = say(core, cid, "担当者と話したい")
    assert offer.reply.kind == "handoff_offer"
    assert [b.label for b in offer.reply.buttons] == ["担当者に問い合わせる", "やめる"]
    assert state(core, cid) == "bot" and rows(core, "SELECT count(*) FROM tickets") == [(0,)]
    done = say(core, cid, "担当者に問い合わせる", button=confirm_button(offer))
    assert done.reply.kind == "ticket" and "お問い合わせ番号 #1001" in done.reply.text
    assert state(core, cid) == "waiting_desk"
    assert rows(core, "SELECT number, reason, state FROM tickets") == [(1001, "words", "new")]


def test_pressing_confirm_twice_makes_one_ticket(core):
    cid = open_web(core)
    offer = say(core, cid, "担当者と話したい")
    first = say(core, cid, "担当者に問い合わせる", button=confirm_button(offer), key="k1")
    replay = say(core, cid, "担当者に問い合わせる", button=confirm_button(offer), key="k1")
    second = say(core, cid, "担当者に問い合わせる", button=confirm_button(offer), key="k2")
    assert replay.replayed and replay.answer.id == first.answer.id
    assert second.reply is None or second.reply.kind == "desk_ack"
    assert rows(core, "SELECT count(*) FROM tickets") == [(1,)]


def test_cancel_keeps_the_bot(core):
    cid = open_web(core)
    say(core, cid, "担当者と話したい")
    cancelled = say(core, cid, "やめる", button=CANCEL_BUTTON)
    assert cancelled.reply.kind == "handoff_cancelled" and state(core, cid) == "bot"
    assert rows(core, "SELECT count(*) FROM tickets") == [(0,)]
    assert say(core, cid, "日医ニュースの送付先を変更したい").reply.kind in ("answer", "choices")


def test_the_line_typed_after_the_offer_becomes_the_note(core):
    cid = open_web(core)
    say(core, cid, "担当者と話したい")
    done = say(core, cid, "会員番号1234567の先生の件で急ぎです")
    assert done.reply.kind == "ticket"
    assert rows(core, "SELECT note FROM tickets") == [("会員番号12***67の先生の件で急ぎです",)]


def test_the_human_command_and_the_desk_button(core):
    cid = open_web(core)
    offer = say(core, cid, "/human", channel="telegram")
    say(core, cid, None, button=confirm_button(offer), channel="telegram")
    other = open_web(core)
    offer = say(core, other, None, button="handoff")
    say(core, other, None, button=confirm_button(offer))
    assert rows(core, "SELECT reason FROM tickets ORDER BY number") == [("command",), ("button",)]


def test_two_unanswered_in_a_row_then_the_offer_records_why(core):
    cid = open_web(core)
    for text in UNANSWERABLE:
        assert say(core, cid, text).reply.kind in ("unknown", "out_of_scope")
    offer = say(core, cid, None, button="handoff")
    assert offer.reply.text.startswith("続けてお答えできず申し訳ありません。")
    say(core, cid, None, button=confirm_button(offer))
    ticket = rows(core, "SELECT reason, unfound FROM tickets")[0]
    assert ticket[0] == "unanswered" and json.loads(ticket[1]) == list(UNANSWERABLE)


def test_after_not_helpful_the_offer_records_why(core):
    cid = open_web(core)
    answer = say(core, cid, "日医ニュースの送付先を自宅に変更したい")
    assert answer.reply.kind == "answer"
    core.feedback(answer.answer.id, False)
    step = core.next_step(answer.answer.id)
    assert step.reply.kind == "next_step"
    offer = say(core, cid, None, button="handoff")
    assert offer.reply.text.startswith("お役に立てず申し訳ありません。")
    say(core, cid, None, button=confirm_button(offer))
    reason, articles = rows(core, "SELECT reason, articles FROM tickets")[0]
    assert reason == "not_helpful"
    assert answer.reply.sources[0].slug in [a["slug"] for a in json.loads(articles)]


def test_every_state_move_and_no_loop(core, desk):
    cid = open_web(core)
    say(core, cid, UNANSWERABLE[0])
    offer = say(core, cid, "担当者と話したい")
    say(core, cid, None, button=confirm_button(offer))
    assert state(core, cid) == "waiting_desk"
    ack = say(core, cid, "追加の情報です")
    assert ack.reply.text == "担当者にお伝えしました。返信をお待ちください。"
    # Asking for a person again while waiting: no second offer, no second ticket, no second ack.
    again = say(core, cid, "担当者と話したい")
    assert again.reply is None and rows(core, "SELECT count(*) FROM tickets") == [(1,)]
    desk.reply(1001, YAMADA, "担当の山田です。")
    assert state(core, cid) == "with_agent"
    # With an agent the bot never talks: not even to a question it could answer.
    assert say(core, cid, "日医ニュースの送付先を変更したい").reply is None
    assert rows(core, "SELECT state FROM tickets") == [("open",)]  # the user wrote: open again
    desk.resolve(1001, YAMADA)
    assert state(core, cid) == "closed"
    fresh = say(core, cid, "日医ニュースの送付先を変更したい")
    assert state(core, cid) == "bot" and fresh.reply.kind in ("answer", "choices")
    # Asking for a person after closing starts with the offer again, never straight into a ticket.
    assert say(core, cid, "担当者と話したい").reply.kind == "handoff_offer"
    assert rows(core, "SELECT count(*) FROM tickets") == [(1,)]


def test_a_ticket_closed_while_the_desk_held_the_conversation_hands_it_back_to_the_bot(core, desk):
    """Closing (not resolving) an active ticket ends the desk's hold as resolving does: the user is told,
    their next question is the bot's, and asking for a person again makes a new ticket."""
    cid = open_web(core)
    offer = say(core, cid, "担当者と話したい")
    say(core, cid, None, button=confirm_button(offer))
    desk.close(1001, YAMADA)
    assert (state(core, cid), rows(core, "SELECT number, state FROM tickets")) == ("closed", [(1001, "closed")])
    assert rows(core, "SELECT text FROM messages WHERE role = 'bot' ORDER BY id DESC LIMIT 1")[0][0].startswith(
        "担当者が対応を終了しました。お問い合わせ番号 #1001。")
    fresh = say(core, cid, "会員情報の確認方法")
    assert state(core, cid) == "bot" and fresh.reply.kind in ("answer", "choices")
    created = core.desk.create(cid, Asker(), "web", reason="api")
    assert (created.created, created.ticket.number, created.ticket.state) == (True, 1002, "new")
    assert state(core, cid) == "waiting_desk"
    assert core.desk.create(cid, Asker(), "web", reason="api").created is False  # asked twice: the same ticket


def test_two_agents_replying_both_kept_the_first_claims(core, desk):
    cid = open_web(core)
    offer = say(core, cid, "担当者と話したい")
    say(core, cid, None, button=confirm_button(offer))
    desk.reply(1001, SATO, "佐藤です")
    desk.reply(1001, YAMADA, "山田です")
    assert rows(core, "SELECT author, text FROM messages WHERE role = 'agent' ORDER BY id") == [
        ("運営事務局 佐藤", "佐藤です"), ("運営事務局 山田", "山田です")]
    assert rows(core, "SELECT assignee FROM tickets") == [("sato",)]


def test_a_telegram_reply_goes_to_the_outbox_as_plain_text_and_a_block_shows(core, desk):
    """The core queues what the agent typed as plain text; Telegram's adapter escapes it when it sends
    (tests/test_desk_telegram.py), so the core writes no channel's markup."""
    asker = core.linked_asker("telegram", "777")
    conversation = core.conversation_for_chat("telegram", "777", asker)
    cid = conversation.id
    offer = say(core, cid, "担当者と話したい", asker=asker, channel="telegram")
    say(core, cid, None, button=confirm_button(offer), asker=asker, channel="telegram")
    mid = desk.reply(1001, YAMADA, "<b>太字</b> & 確認します")
    (payload,) = [json.loads(p) for (p,) in rows(core, "SELECT payload FROM outbox WHERE key = ?", f"desk:{mid}")]
    assert payload["format"] == "plain"
    assert payload["text"] == "【運営事務局 山田（MAMIS運営事務局）】\n<b>太字</b> & 確認します"
    assert desk.outbox.status([mid]) == {mid: "queued"}
    from bot.messaging.outbox import Outbox

    outbox = Outbox(core.store, "telegram")
    outbox.unreachable("777", NOW)
    outbox.failed(rows(core, "SELECT id FROM outbox")[0][0], "forbidden")
    assert desk.outbox.status([mid]) == {mid: "unreachable"}


def test_a_web_reply_is_not_queued_for_a_channel(core, desk):
    cid = open_web(core)
    offer = say(core, cid, "担当者と話したい")
    say(core, cid, None, button=confirm_button(offer))
    desk.reply(1001, YAMADA, "返信です")
    assert rows(core, "SELECT count(*) FROM outbox") == [(0,)]


def test_a_staff_asker_carries_role_and_association_and_nothing_else(core):
    staff = Asker(role="staff", display_name="千代田区医師会 事務局", association_code="13001",
                  association_level="county", account="chiyoda")
    cid = open_web(core, staff)
    offer = say(core, cid, "担当者と話したい", asker=staff)
    say(core, cid, None, button=confirm_button(offer), asker=staff)
    assert rows(core, "SELECT asker_role, asker_name, association_code, association_name FROM tickets") == [
        ("staff", "千代田区医師会 事務局", "13001", "千代田区医師会")]


# -- business hours ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("moment, open_, next_open", [
    ("2026-11-25T10:00", True, "2026-11-25T10:00"),   # a Wednesday
    ("2026-11-25T08:59", False, "2026-11-25T09:00"),
    ("2026-11-25T17:00", False, "2026-11-26T09:00"),
    ("2026-11-23T10:00", False, "2026-11-24T09:00"),  # 勤労感謝の日 (Monday)
    ("2026-11-21T10:00", False, "2026-11-24T09:00"),  # Saturday, then Sunday, then the holiday
    ("2026-12-28T18:00", False, "2027-01-04T09:00"),  # the year end: 12/29–1/3
    ("2027-01-11T10:00", False, "2027-01-12T09:00"),  # 成人の日
])
def test_business_hours(moment, open_, next_open):
    hours = BusinessHours.from_settings({})
    at = datetime.fromisoformat(moment).replace(tzinfo=JST)
    assert hours.is_open(at) is open_
    assert hours.next_open(at) == datetime.fromisoformat(next_open).replace(tzinfo=JST)


def test_business_hours_from_settings():
    hours = BusinessHours.from_settings({"DESK_DAYS": ["mon", "tue", "wed", "thu", "fri", "sat"],
                                         "DESK_HOURS": "10:00-16:00", "DESK_CLOSED_ON_HOLIDAYS": False,
                                         "DESK_CLOSED_DAYS": "05-01"})
    saturday, holiday, may_day = (datetime(2026, 11, 21, 10, tzinfo=JST), datetime(2026, 11, 23, 10, tzinfo=JST),
                                  datetime(2026, 5, 1, 10, tzinfo=JST))
    assert hours.is_open(saturday) and hours.is_open(holiday) and not hours.is_open(may_day)
    assert not hours.is_open(datetime(2026, 11, 25, 9, 30, tzinfo=JST))
    with pytest.raises(BadHours):
        BusinessHours.parse("17:00-09:00")
    with pytest.raises(BadHours):
        BusinessHours.parse("09:00-17:00", "13-40")


def test_the_notice_on_a_holiday():
    notice = BusinessHours().notice(datetime(2026, 11, 23, 10, tzinfo=JST))
    assert notice == ("本日は祝日（勤労感謝の日）のため、ただいま受付時間外です。受付時間は平日9:00〜17:00（土日祝日・年末年始を除く）"
                      "です。担当者からの返信は11月24日（火）9:00以降になります。お急ぎの場合は、受付時間内に"
                      "MAMIS運営事務局 フリーダイヤル 0120-110-030 へお電話ください。")
    assert BusinessHours().notice(datetime(2026, 11, 25, 10, tzinfo=JST)) is None
