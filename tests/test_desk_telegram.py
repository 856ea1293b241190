"""The desk through Telegram: the real Application polling the fake Bot API (tests/telegram_harness.py).

A doctor asks for a person with the inline buttons, the agent's reply reaches the chat through the
outbox that the bot process drains (HTML from the agent arrives as text), and a chat that blocked the
bot shows on the ticket as undelivered.
"""
from __future__ import annotations

import pytest

from bot.desk.actions import Agent
from tests.telegram_harness import bot, demo_instance, fake, wait_until  # noqa: F401 (fixtures)

YAMADA = Agent("yamada", "運営事務局 山田")


def buttons(message: dict) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {}
    return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row]


@pytest.fixture
def desk(bot):
    return bot.services.desk().desk  # the bot process's own desk (helpdesk/services.py)


def hand_over(fake, chat_id: int, earlier: int = 0) -> int:
    """Ask for a person and confirm; `earlier`: how many messages the chat has been sent before."""
    fake.message(chat_id, "担当者と話したい")
    offer = fake.wait_for("sendMessage", chat_id, earlier + 1)[earlier].params
    assert ("担当者に問い合わせる", "handoff:yes:words") in buttons(offer) and ("やめる", "handoff:no") in buttons(offer)
    fake.press(chat_id, "handoff:yes:words", message_id=5)
    done = fake.wait_for("sendMessage", chat_id, earlier + 2)[earlier + 1].params["text"]
    assert "お問い合わせ番号 #" in done
    return int(done.split("#", 1)[1].split(" ", 1)[0])


def test_a_doctor_hands_over_and_the_agents_reply_arrives_as_text(bot, fake, desk):
    number = hand_over(fake, 3001)
    fake.message(3001, "会員証の再発行について")
    assert fake.wait_for("sendMessage", 3001, 3)[2].params["text"] == "担当者にお伝えしました。返信をお待ちください。"
    mid = desk.reply(number, YAMADA, "<b>確認します</b> & お待ちください")
    sent = fake.wait_for("sendMessage", 3001, 4)[3].params
    assert sent["text"] == "【運営事務局 山田（MAMIS運営事務局）】\n&lt;b&gt;確認します&lt;/b&gt; &amp; お待ちください"
    assert sent["parse_mode"] == "HTML"
    wait_until(lambda: desk.outbox.status([mid]) == {mid: "sent"}, what="the reply marked sent")
    fake.message(3001, "ありがとうございます")  # with an agent: no bot answer, no second acknowledgement
    store = bot.services.core().store
    wait_until(lambda: store.conn.execute("SELECT 1 FROM messages WHERE text = 'ありがとうございます'").fetchone(),
               what="the message stored for the agent")
    desk.resolve(number, YAMADA)
    closed = fake.wait_for("sendMessage", 3001, 5)[4].params["text"]
    assert closed.startswith("担当者が対応を終了しました。")


def test_a_chat_that_blocked_the_bot_shows_as_undelivered(bot, fake, desk):
    number = hand_over(fake, 3002)
    fake.fail("sendMessage", 403, chat_id=3002)
    mid = desk.reply(number, YAMADA, "ご確認ください")
    wait_until(lambda: desk.outbox.status([mid]) == {mid: "unreachable"}, what="the refusal recorded")


def test_a_ticket_whose_chat_was_linked_again_to_another_member_takes_no_reply(bot, fake, desk):
    """Linking the account to another member detaches the chat from its conversation (one transcript never
    mixes two members): a reply to the old ticket would reach the other member, so it is refused, said on
    the ticket, and nothing is queued; a note and resolving still work, and send nothing."""
    from datetime import datetime

    from bot.desk.actions import ChatDetached
    from helpdesk.errors import by_code
    from tests.conftest import NOW

    def code_for(number: str) -> str:
        return bot.desk.core.links.issue(number, "test", datetime.fromisoformat(NOW)).code

    fake.command(3005, f"/link {code_for('1300005')}")
    fake.wait_for("sendMessage", 3005)
    number = hand_over(fake, 3005, earlier=1)
    ticket = desk.tickets.get(number)
    assert not desk.channel(ticket, YAMADA).detached
    fake.command(3005, f"/link {code_for('1300006')}")
    asked = fake.wait_for("sendMessage", 3005, 4)[3].params
    fake.press(3005, dict(buttons(asked))["切り替える"])
    fake.wait_for("sendMessage", 3005, 5)
    assert bot.desk.core.links.linked_member("telegram", "3005").member_number == "1300006"
    sent = len(fake.sent(3005))

    conn = bot.services.core().store.conn
    queued = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert desk.channel(ticket, YAMADA).detached
    with pytest.raises(ChatDetached):
        desk.reply(number, YAMADA, "1300005 の先生、ご確認ください")
    assert "別の会員として連携し直されました" in by_code("desk_chat_detached").message
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == queued
    assert conn.execute("SELECT count(*) FROM messages WHERE role = 'agent' AND conversation_id = :id",
                        {"id": ticket.conversation_id}).fetchone()[0] == 0
    desk.note(number, YAMADA, "再連携のため返信不可")
    desk.resolve(number, YAMADA)
    assert desk.tickets.get(number).state == "resolved"
    fake.message(3005, "こんにちは")  # the chat's next message is answered in a new conversation
    fake.wait_for("sendMessage", 3005, sent + 1)
    assert not any("1300005 の先生" in m["text"] or "対応を終了" in m["text"] for m in fake.sent(3005)[sent:])


def test_a_reply_over_telegrams_limit_in_the_outbox_arrives_in_parts(bot, fake, desk):
    """3,900 characters with emoji are 4,327 UTF-16 units (what Telegram counts), which Telegram
    refuses whole. The console refuses such a reply where the agent types (tests/test_security_desk.py);
    one that reaches the outbox all the same (queued by an older version, say) is split as bot answers
    are, at paragraphs, and every part arrives in order."""
    number = hand_over(fake, 3003)
    paragraphs = [f"{i}. " + "お知らせ😀" * 77 for i in range(10)]
    text = "\n\n".join(paragraphs)
    assert len(text) <= 4000 and len(text.encode("utf-16-le")) // 2 > 4096
    conversation = desk.tickets.get(number).conversation_id
    with desk.store.transaction() as conn:
        at = desk.now()
        mid = desk.handoff.add_message(conn, conversation, "agent", text, at, author=YAMADA.display_name)
        desk.outbox.enqueue_reply(conn, conversation, mid, text, YAMADA.display_name, at)
    parts = [c.params["text"] for c in fake.wait_for("sendMessage", 3003, 4)[2:]]
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert "\n\n".join(parts) == "【運営事務局 山田（MAMIS運営事務局）】\n" + text
    wait_until(lambda: desk.outbox.status([mid]) == {mid: "sent"}, what="the reply marked sent")


def test_a_desk_row_queued_escaped_by_an_older_version_is_not_escaped_twice(bot, fake, desk):
    """Before the outbox said its format, the core queued a desk reply already escaped for Telegram.
    Such a row, still unsent after an upgrade, arrives as it was meant; a new row beside it (plain
    text) is escaped once, by the adapter."""
    import json

    from bot.messaging.outbox import Outbox

    number = hand_over(fake, 3004)
    conversation = desk.tickets.get(number).conversation_id
    chat = desk.store.conn.execute("SELECT external_chat_id FROM conversations WHERE id = ?",
                                   (conversation,)).fetchone()[0]
    old = {"text": "【運営事務局 山田（MAMIS運営事務局）】\n&lt;b&gt;前の版&lt;/b&gt; &amp; 確認します",
           "desk_message_id": 999999}
    with desk.store.transaction() as conn:
        conn.execute(Outbox.ENQUEUE_SQL, {"channel": "telegram", "chat_id": chat, "key": "desk:999999",
                                          "kind": "reply", "payload": json.dumps(old, ensure_ascii=False),
                                          "now": desk.now(), "claimed_by": None})
    assert fake.wait_for("sendMessage", 3004, 3)[2].params["text"] == old["text"]
    desk.reply(number, YAMADA, "<i>新しい版</i> & 確認します")
    assert fake.wait_for("sendMessage", 3004, 4)[3].params["text"] == (
        "【運営事務局 山田（MAMIS運営事務局）】\n&lt;i&gt;新しい版&lt;/i&gt; &amp; 確認します")
