"""What one bad update can do to the bot: nothing to the others.

A text with a lone UTF-16 surrogate, and an update the library cannot parse, used to stop the polling
bot for everyone (and log whole batches, users' texts included, ~100 times a second at CRITICAL),
while the heartbeat kept /readyz green. Run against the real `helpdesk telegram` process, whose log
lines are what an operator would read.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from tests.conftest import build_instance
from tests.telegram_fake import FakeTelegram
from tests.telegram_harness import BotProcess, InProcessBot, wait_until

SECRET_WORDS = ("ひみつの相談", "カワカミ")


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


def unreadable_poll(fake, chat_id: int) -> int:
    """A message with a poll this library cannot read (fields it requires are missing)."""
    poll = {"id": "p1", "question": SECRET_WORDS[0], "options": [], "total_voter_count": 0, "is_closed": False,
            "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}
    msg = fake.message_dict(chat_id, None, poll=poll)
    msg["from"]["first_name"] = SECRET_WORDS[1]
    return fake.offer({"message": msg})


def test_a_lone_surrogate_and_an_unreadable_update_stop_nobody_and_reach_no_log(tmp_path, fake):
    instance = build_instance(tmp_path / "instance")
    bot = BotProcess(instance.path, fake.url).start()
    try:
        fake.wait_for("setMyCommands", timeout=30)
        surrogate = fake.message(3001, f"{SECRET_WORDS[0]}\ud800です")
        bad = unreadable_poll(fake, 3002)
        after = fake.message(3003, "こんにちは")  # in the same batch, most likely
        assert "MAMIS" in fake.wait_for("sendMessage", 3003, timeout=20)[0].params["text"]
        fake.wait_for("sendMessage", 3001, timeout=10)  # answered, with U+FFFD in place of the surrogate
        fake.wait_confirmed(after)
        fake.message(3003, "ありがとう")  # and the bot goes on
        fake.wait_for("sendMessage", 3003, 2, timeout=10)
        time.sleep(0.5)
        lines = [line for line in bot.output.splitlines() if line.strip()]
    finally:
        bot.stop()
    assert not any(word in line for line in lines for word in SECRET_WORDS), lines
    assert len(lines) < 20, lines[:5]  # not the batch over and over
    assert not any(json.loads(line)["level"] == "CRITICAL" and "withheld" not in line for line in lines)
    from bot import Store

    store = Store(instance.helpdesk_db)
    try:
        rows = {r["update_id"]: r for r in store.conn.execute(
            "SELECT update_id, payload, done_at FROM channel_inbox WHERE update_id IN (:a, :b)",
            {"a": surrogate, "b": bad})}
        question = store.conn.execute(
            "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.external_chat_id = '3001' AND m.role = 'user'").fetchone()[0]
    finally:
        store.close()
    assert json.loads(rows[bad]["payload"]) == {"update_id": bad, "set_aside": "unreadable", "kinds": ["message"]}
    assert rows[bad]["done_at"] and rows[surrogate]["done_at"]
    assert question == f"{SECRET_WORDS[0]}\ufffdです"


def test_the_heartbeat_stops_while_an_update_waits_unanswered(tmp_path, fake, monkeypatch):
    """Readiness must see a bot that hears Telegram but answers nobody: no heartbeat while an update
    has waited longer than `stuck_after`, and again once it is answered."""
    from handlers.web.health import TELEGRAM_HEARTBEAT

    instance = build_instance(tmp_path / "instance")
    bot = InProcessBot(instance.path, fake.url, TELEGRAM_WORKERS=0).start()
    heartbeat = instance.path / TELEGRAM_HEARTBEAT
    release = threading.Event()
    core = bot.desk.core
    real = core.reply

    def stuck(conversation_id, text, *a, **k):
        if text == "止まる質問":
            release.wait(20)
        return real(conversation_id, text, *a, **k)

    monkeypatch.setattr(core, "reply", stuck)
    bot.desk.stuck_after = 0.5
    try:
        wait_until(heartbeat.exists, what="the first heartbeat")
        fake.message(3101, "止まる質問")
        time.sleep(1.0)  # the update has waited longer than stuck_after; polls go on meanwhile
        heartbeat.unlink()
        time.sleep(2.5)  # a poll returns every second: each would have touched it
        assert not heartbeat.exists()
        fake.message(3102, "こんにちは")  # other chats are still answered…
        fake.wait_for("sendMessage", 3102, timeout=10)
        assert not heartbeat.exists()  # …but the stuck one keeps readiness red
        release.set()
        fake.wait_for("sendMessage", 3101, timeout=10)
        wait_until(heartbeat.exists, 5, what="the heartbeat once the update is answered")
    finally:
        release.set()
        bot.stop()


def test_a_lone_surrogate_posted_to_the_webhook_is_answered(tmp_path, fake):
    """The webhook's updates reach the inbox parsed (not as Telegram's bytes): repaired there."""
    import urllib.request

    from tests.conftest import free_port

    instance = build_instance(tmp_path / "instance")
    port, secret = free_port(), "s3cret-token_2"
    url = f"http://127.0.0.1:{port}/telegram"
    bot = InProcessBot(instance.path, fake.url, TELEGRAM_WEBHOOK_SECRET=secret, TELEGRAM_WEBHOOK_URL=url,
                       TELEGRAM_WORKERS=0)
    bot.start(webhook={"listen": "127.0.0.1", "port": port, "url_path": "telegram", "webhook_url": url,
                       "secret_token": secret})
    try:
        fake.wait_for("setWebhook", timeout=15)
        update = {"update_id": 999_301, "message": fake.message_dict(3201, "こんにちは\ud800")}
        body = json.dumps(update).encode()  # ASCII, the surrogate escaped
        request = urllib.request.Request(url, body, {"Content-Type": "application/json",
                                                      "X-Telegram-Bot-Api-Secret-Token": secret})
        wait_until(lambda: _post(request) == 200, 10, what="the webhook taking the update")
        fake.wait_for("sendMessage", 3201, timeout=10)
        kept = bot.services.store.conn.execute(
            "SELECT payload FROM channel_inbox WHERE update_id = 999301").fetchone()["payload"]
        assert json.loads(kept)["message"]["text"] == "こんにちは\ufffd"
    finally:
        bot.stop()


def _post(request) -> int | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_an_unreadable_update_posted_to_the_webhook_is_set_aside_and_the_next_answered(tmp_path, fake):
    """The library's webhook answered an update it cannot parse with 400 (and logged it whole at
    CRITICAL): Telegram, as the fake does, sends it again and again and holds every later update
    behind it. It is set aside as a polled one is, answered 200, and the next update answered; the
    secret token is still required."""
    from tests.conftest import free_port

    instance = build_instance(tmp_path / "instance")
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    bot = BotProcess(instance.path, fake.url, args=["--webhook", "--port", str(port)],
                     env={"HELPDESK_TELEGRAM_WEBHOOK_URL": url, "HELPDESK_TELEGRAM_WORKERS": "0"}).start()
    try:
        secret = fake.wait_for("setWebhook", timeout=30)[0].params["secret_token"]
        bad = unreadable_poll(fake, 3301)
        after = fake.command(3302, "/start")
        assert "MAMIS" in fake.wait_for("sendMessage", 3302, timeout=20)[0].params["text"]
        fake.wait_confirmed(after)
        assert fake.sent(3301) == []
        update = json.dumps({"update_id": 999_401, "message": fake.message_dict(3303, "こんにちは")}).encode()
        headers = {"Content-Type": "application/json"}
        assert _post(urllib.request.Request(url, update, headers)) == 403
        assert _post(urllib.request.Request(url, b"{not json", {**headers, "X-Telegram-Bot-Api-Secret-Token":
                                                                secret})) == 400
        time.sleep(0.5)
        lines = [line for line in bot.output.splitlines() if line.strip()]
    finally:
        bot.stop()
    assert fake.sent(3303) == []
    assert not any(word in line for line in lines for word in SECRET_WORDS), lines
    from bot import Store

    store = Store(instance.helpdesk_db)
    try:
        kept = store.conn.execute("SELECT payload, done_at FROM channel_inbox WHERE update_id = :id",
                                  {"id": bad}).fetchone()
    finally:
        store.close()
    assert json.loads(kept["payload"]) == {"update_id": bad, "set_aside": "unreadable", "kinds": ["message"]}
    assert kept["done_at"]
