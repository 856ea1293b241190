"""The Telegram bot end to end: the real Application (build_telegram_app) polling the fake Bot API.

One bot serves the module; every test talks in chats of its own, so they do not see each other.
"""
from __future__ import annotations

import html
import json
import re
import time
from datetime import datetime

from tests.conftest import NOW
from tests.telegram_fake import BOT_ID, BOT_USERNAME
import pytest

from tests.telegram_harness import PUBLIC_URL, InProcessBot, bot, demo_instance, fake, wait_settled, wait_until  # noqa: F401

APOLOGY = "一時的なエラーが発生しました。しばらくしてからもう一度お試しください。"
BOT_SETTINGS = {"TELEGRAM_RATE_LIMIT": "4 per minute"}


@pytest.fixture
def threaded(demo_instance):
    """A second bot, answering in threads of this process (TELEGRAM_WORKERS = 0) with a fake of its own,
    for the tests that patch its core: the module's bot answers in worker processes, out of a patch's reach."""
    from tests.telegram_fake import FakeTelegram

    server = FakeTelegram().start()
    running = InProcessBot(demo_instance.path, server.url, TELEGRAM_WORKERS=0).start()
    yield running, server
    running.stop()
    server.stop()


def issue_code(bot, number: str) -> str:
    return bot.desk.core.links.issue(number, "test", datetime.fromisoformat(NOW)).code


def texts(fake, chat_id) -> list[str]:
    return [m["text"] for m in fake.sent(chat_id)]


def buttons(message: dict) -> list[tuple[str, str]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


def test_start_registers_japanese_commands_and_greets(bot, fake):
    commands = fake.wait_for("setMyCommands")[0].params["commands"]
    assert [c["command"] for c in commands] == ["start", "help", "link", "unlink", "status", "delivery",
                                                "human", "notify"]
    assert all(re.search(r"[ぁ-んァ-ン一-龥]", c["description"]) for c in commands)
    fake.command(1001, "/start")
    first = fake.wait_for("sendMessage", 1001)[0].params
    assert first["text"].startswith("MAMISヘルプデスクです。")
    assert first["parse_mode"] == "HTML"


def test_question_is_answered_with_its_absolute_source_link_and_feedback_buttons(bot, fake):
    fake.message(1002, "日医ニュースの送付先を自宅に変更したい")
    answer = fake.wait_for("sendMessage", 1002)[0].params
    assert f'<a href="{PUBLIC_URL}/kb/delivery-settings">' in answer["text"]
    assert "更新）" in answer["text"]
    feedback = buttons(answer)
    assert [label for label, _ in feedback] == ["役に立った", "役に立たなかった"]
    fake.press(1002, feedback[0][1])
    ack = fake.wait_for("answerCallbackQuery")[-1].params
    assert ack["text"] == "ご評価ありがとうございます。"
    message_id = int(feedback[0][1].rsplit(":", 1)[1])
    wait_until(lambda: bot.services.store.message(message_id).feedback is True, what="feedback stored")


def test_unhelpful_answer_is_followed_by_the_next_step_with_the_desk(bot, fake):
    fake.message(1031, "日医ニュースの送付先を自宅に変更したい")
    answer = fake.wait_for("sendMessage", 1031)[0].params
    unhelpful = dict(buttons(answer))["役に立たなかった"]
    fake.press(1031, unhelpful)
    step = fake.wait_for("sendMessage", 1031, 2)[1].params
    assert ("担当者に問い合わせる", "handoff") in buttons(step)
    assert "役に立った" not in dict(buttons(step))  # a next step is not itself rated


def test_text_from_users_and_articles_is_escaped(bot, fake):
    fake.message(1003, "<b>マスタ</b> & <script>")
    sent = texts(fake, 1003) or [m.params["text"] for m in fake.wait_for("sendMessage", 1003)]
    assert "<script>" not in sent[0] and "<b>" not in sent[0]


def test_low_confidence_question_offers_the_desk_and_the_press_is_acknowledged(bot, fake):
    fake.message(1004, "あいうえおかきくけこ")
    offer = fake.wait_for("sendMessage", 1004)[0].params
    assert ("担当者に問い合わせる", "handoff") in buttons(offer)
    before = len(fake.calls_of("answerCallbackQuery"))
    fake.press(1004, "handoff", message_id=77)
    # the press carries no keyboard here, so the label comes from the id; the desk answers either way
    handoff = fake.wait_for("sendMessage", 1004, 2)[1].params
    assert "MAMIS運営事務局" in handoff["text"]
    assert len(fake.calls_of("answerCallbackQuery")) == before + 1


def test_status_before_and_after_link_and_a_reused_code(bot, fake):
    fake.command(1005, "/status")
    assert "連携コード" in fake.wait_for("sendMessage", 1005)[0].params["text"]
    code = issue_code(bot, "1300002")
    fake.command(1005, f"/link {code}")
    assert "会員番号 1300002" in fake.wait_for("sendMessage", 1005, 2)[1].params["text"]
    fake.command(1005, "/status")
    answers = [c.params["text"] for c in fake.wait_for("sendMessage", 1005, 4)[2:]]
    assert "佐藤" in answers[0] and "入会手続中" in answers[0]
    assert "A2026-000001" in answers[1] and "差戻し" in answers[1]
    fake.command(1006, f"/link {code}")  # someone else, same code
    refused = fake.wait_for("sendMessage", 1006)[0].params["text"]
    assert refused == html.escape("連携コードが正しくないか、有効期限が切れています。医師会事務局に新しいコードの発行を依頼してください。",
                                  quote=False)
    fake.command(1006, "/status")
    assert "連携コード" in fake.wait_for("sendMessage", 1006, 2)[1].params["text"]


def test_deep_link_start_links_the_account(bot, fake):
    code = issue_code(bot, "1300001")
    fake.command(1007, f"/start {code}")
    assert "会員番号 1300001" in fake.wait_for("sendMessage", 1007)[0].params["text"]
    fake.command(1007, "/delivery")
    assert "送付" in fake.wait_for("sendMessage", 1007, 2)[1].params["text"]


def test_group_answers_only_when_addressed_and_never_shows_records(bot, fake, demo_instance):
    group = -100500
    fake.message(group, "日医ニュースの送付先は？", user_id=1008, chat_type="supergroup")
    mention = f"@{BOT_USERNAME}"
    fake.message(group, f"{mention} 日医ニュースの送付先は？", user_id=1008, chat_type="supergroup",
                 entities=[{"type": "mention", "offset": 0, "length": len(mention)}])
    answered = fake.wait_for("sendMessage", group)[0].params["text"]
    assert "delivery-settings" in answered
    fake.command(group, "/status", user_id=1008, chat_type="supergroup")
    assert "個別のチャット" in fake.wait_for("sendMessage", group, 2)[1].params["text"]
    reply_to = fake.message_dict(group, "…", user_id=BOT_ID, chat_type="supergroup")
    fake.message(group, "会員番号1300001の入会手続きの状況", user_id=1008, chat_type="supergroup", reply_to=reply_to)
    third = fake.wait_for("sendMessage", group, 3)[2].params["text"]
    assert "個別のチャット" in third and "山田" not in third
    wait_settled(fake, demo_instance.helpdesk_db, group)
    assert len(fake.sent(group)) == 3  # the first, unaddressed message got nothing


def test_sticker_photo_and_edited_message_get_one_short_answer(bot, fake, demo_instance):
    fake.message(1009, None, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                      "width": 1, "height": 1, "is_animated": False, "is_video": False})
    fake.message(1009, None, photo=[{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}])
    fake.message(1009, "直しました", kind="edited_message", edit_date=int(time.time()))
    sent = [c.params["text"] for c in fake.wait_for("sendMessage", 1009, 3)]
    assert sent[0] == sent[1] and "スタンプ" in sent[0]
    assert "編集" in sent[2]
    wait_settled(fake, demo_instance.helpdesk_db, 1009)
    assert len(fake.sent(1009)) == 3


def test_long_answer_is_split_at_a_paragraph_boundary(threaded, monkeypatch):
    from bot.model import Reply

    bot, fake = threaded
    paragraphs = [f"{i}番目の段落。" + "あ" * 990 for i in range(5)]  # 5 × ~1,000 = ~5,000 characters
    core = bot.desk.core
    real = core.decide
    monkeypatch.setattr(core, "decide", lambda text, *a, **k: Reply("\n\n".join(paragraphs), "answer")
                        if text == "長い答え" else real(text, *a, **k))
    fake.message(1010, "長い答え")
    first, second = [c.params["text"] for c in fake.wait_for("sendMessage", 1010, 2)]
    assert len(first) <= 4096 and len(second) <= 4096
    assert first.split("\n\n") == paragraphs[:4] and second.split("\n\n") == paragraphs[4:]


def test_a_handler_exception_is_logged_and_apologised_for(threaded, monkeypatch, caplog):
    bot, fake = threaded
    core = bot.desk.core
    real = core.reply

    secret = "".join(("1300", "001"))  # a member number, which must not reach the log

    def broken(conversation_id, text, *a, **k):
        if secret in text:
            raise RuntimeError(f"failed on {text}")
        return real(conversation_id, text, *a, **k)

    monkeypatch.setattr(core, "reply", broken)
    fake.message(1011, f"壊れる質問 {secret}")
    assert fake.wait_for("sendMessage", 1011)[0].params["text"] == APOLOGY
    assert "RuntimeError" in caplog.text and secret not in caplog.text
    fake.message(1011, "こんにちは")  # the bot goes on
    assert "MAMIS" in fake.wait_for("sendMessage", 1011, 2)[1].params["text"]


def test_403_marks_the_chat_unreachable_until_it_writes_again(bot, fake):
    fake.fail("sendMessage", 403, chat_id=1012)
    fake.message(1012, "こんにちは")
    wait_until(lambda: "1012" in bot.desk.outbox.unreachable_chats(), what="chat marked unreachable")
    bot.desk.outbox.set_notify(1012, 1012, True, NOW)
    bot.desk.outbox.notify(1012, "test:403", {"text": "お知らせ"}, NOW)
    # The drain takes due rows oldest first: once a later notification to a reachable chat has arrived,
    # the one to 1012 has been passed over.
    bot.desk.outbox.set_notify(10120, 10120, True, NOW)
    bot.desk.outbox.notify(10120, "test:403-after", {"text": "お知らせ"}, NOW)
    fake.wait_for("sendMessage", 10120)
    assert len(fake.sent(1012)) == 1  # the refused answer; the notification was not tried
    fake.message(1012, "ありがとう")
    wait_until(lambda: len(fake.sent(1012)) >= 2, what="answer after unblocking")
    assert "1012" not in bot.desk.outbox.unreachable_chats()


def test_429_waits_retry_after_and_sends_once(bot, fake, demo_instance):
    fake.fail("sendMessage", 429, retry_after=1, chat_id=1013)
    started = time.monotonic()
    fake.message(1013, "こんにちは")
    calls = fake.wait_for("sendMessage", 1013, 2, timeout=10)
    assert calls[1].at - calls[0].at >= 0.9
    wait_settled(fake, demo_instance.helpdesk_db, 1013)
    assert len(fake.sent(1013)) == 2 and time.monotonic() - started < 8  # one refused, one delivered


def test_wait_settled_waits_for_a_send_still_to_come(bot, fake, demo_instance):
    """The harness's wait before counting: a send due a second later (after a 429) is waited for,
    where a short sleep would count too early and so miss a late duplicate."""
    fake.fail("sendMessage", 429, retry_after=1, chat_id=1020)
    fake.message(1020, "こんにちは")
    fake.wait_for("sendMessage", 1020)  # refused; the answer waits in the outbox
    wait_settled(fake, demo_instance.helpdesk_db, 1020)
    assert len(fake.sent(1020)) == 2


def test_messages_of_one_chat_are_answered_in_order(bot, fake):
    questions = ["日医ニュースの送付先を自宅に変更したい", "連絡協議会はいつですか", "医療機関マスタはいつ更新されますか"]
    expected = [bot.services.searcher().search(q, k=1)[0].slug for q in questions]
    for q in questions:
        fake.message(1014, q)
    sent = [c.params["text"] for c in fake.wait_for("sendMessage", 1014, 3)]
    assert [re.search(r"/kb/([a-z0-9-]+)", t).group(1) for t in sent] == expected


def test_per_user_rate_limit_is_polite_and_said_once(bot, fake, demo_instance):
    for i in range(6):
        fake.message(1015, f"こんにちは{i}")
    sent = [c.params["text"] for c in fake.wait_for("sendMessage", 1015, 5)]
    wait_settled(fake, demo_instance.helpdesk_db, 1015)
    assert len(fake.sent(1015)) == 5
    assert sent[4] == "短い時間にたくさんのメッセージが届きました。1分ほどおいてから、もう一度お送りください。"


def test_notify_is_off_by_default_and_toggles(bot, fake):
    fake.command(1016, "/notify")
    state = fake.wait_for("sendMessage", 1016)[0].params
    assert "オフ" in state["text"]
    assert [d for _, d in buttons(state)] == ["tg:notify:on", "tg:notify:off"]
    fake.press(1016, "tg:notify:on")
    assert "オンにしました" in fake.wait_for("sendMessage", 1016, 2)[1].params["text"]
    assert bot.desk.outbox.notify_on(1016)


def test_killed_workers_are_replaced_and_the_question_is_still_answered(bot, fake):
    import multiprocessing
    import os
    import signal

    workers = multiprocessing.active_children()  # the bot runs in this process: its workers are our children
    assert workers and bot.desk.pool is not None
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)
    for worker in workers:
        worker.join(10)
    fake.message(1021, "医療機関マスタの更新はいつ反映されますか")
    first = fake.wait_for("sendMessage", 1021, timeout=30)[0].params["text"]
    assert "医療機関マスタ" in first and APOLOGY not in first
    replaced = multiprocessing.active_children()
    assert replaced and not {w.pid for w in replaced} & {w.pid for w in workers}
    fake.message(1021, "こんにちは")
    assert "MAMIS" in fake.wait_for("sendMessage", 1021, 2)[1].params["text"]


def test_a_link_code_posted_in_a_group_is_spent_and_unlink_there_is_refused(bot, fake):
    group = -100600
    code = issue_code(bot, "1300003")
    fake.command(group, f"/link {code}", user_id=1040, chat_type="supergroup")
    told = fake.wait_for("sendMessage", group)[0].params["text"]
    assert "使えなくしました" in told and "新しいコード" in told
    fake.command(1041, f"/link {code}")  # another member of the group, privately
    refused = fake.wait_for("sendMessage", 1041)[0].params["text"]
    assert refused.startswith("連携コードが正しくないか")
    assert bot.desk.core.links.linked_member("telegram", "1041") is None
    # /unlink in a group: refused like /link, the same words for a linked and an unlinked account
    fake.command(1042, f"/link {issue_code(bot, '1300004')}")
    fake.wait_for("sendMessage", 1042)
    fake.command(group, "/unlink", user_id=1042, chat_type="supergroup")
    fake.command(group, "/unlink", user_id=1043, chat_type="supergroup")
    linked, unlinked = [c.params["text"] for c in fake.wait_for("sendMessage", group, 3)[1:]]
    assert linked == unlinked == texts(fake, group)[1]
    assert "個別のチャット" in linked
    assert bot.desk.core.links.linked_member("telegram", "1042").member_number == "1300004"


def test_relinking_to_another_member_asks_first_then_starts_a_new_conversation(bot, fake):
    fake.command(1044, f"/link {issue_code(bot, '1300005')}")
    fake.message(1044, "私の会員情報")
    fake.wait_for("sendMessage", 1044, 2)
    first = bot.services.store.conversation_for_chat("telegram", "1044")
    fake.command(1044, f"/link {issue_code(bot, '1300006')}")
    asked = fake.wait_for("sendMessage", 1044, 3)[2].params
    assert "1300005" in asked["text"] and "1300006" in asked["text"]
    switch = dict(buttons(asked))
    assert set(switch) == {"切り替える", "やめる"}
    assert bot.desk.core.links.linked_member("telegram", "1044").member_number == "1300005"  # not yet
    fake.press(1044, switch["切り替える"])
    assert "会員番号 1300006" in fake.wait_for("sendMessage", 1044, 4)[3].params["text"]
    assert bot.desk.core.links.linked_member("telegram", "1044").member_number == "1300006"
    # the chat's next message opens a new conversation; the old one, about 1300005, stays the user's
    assert bot.services.store.conversation_for_chat("telegram", "1044") is None
    from bot.privacy.person import export

    exported = export(bot.services.instance.helpdesk_db, telegram_user="1044")
    assert [c["id"] for c in exported["conversations"]] == [first.id]
    assert [m["text"] for m in exported["conversations"][0]["messages"] if m["role"] == "user"] == ["私の会員情報"]


def test_human_is_recorded_as_the_command_and_a_pressed_keyboard_is_removed(bot, fake):
    fake.command(1045, "/human")
    offer = fake.wait_for("sendMessage", 1045)[0].params
    confirm = dict(buttons(offer))["担当者に問い合わせる"]
    assert confirm.endswith(":command")
    fake.press(1045, confirm, message_id=4501)
    edits = fake.wait_for("editMessageReplyMarkup", 1045)
    assert edits[0].params["message_id"] == 4501 and "reply_markup" not in edits[0].params


def test_updates_not_answered_keep_no_text_or_names(bot, fake):
    group = -100700
    update_id = fake.message(group, "山田先生の件ですが", user_id=1046, chat_type="supergroup")
    fake.wait_confirmed(update_id)

    def kept():
        row = bot.services.store.conn.execute(
            "SELECT payload, done_at FROM channel_inbox WHERE update_id = :id", {"id": update_id}).fetchone()
        return row if row and row["done_at"] else None

    row = wait_until(kept, what="the update done")
    assert json.loads(row["payload"]) == {"update_id": update_id, "unanswered": 1}
