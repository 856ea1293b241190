"""`helpdesk telegram` as a real process: start-up errors, --check, webhook mode, SIGKILL and restart."""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import build_instance, free_port
from tests.telegram_fake import BOT_USERNAME, FakeTelegram
from tests.telegram_harness import BotProcess, InProcessBot, wait_settled, wait_until


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    return build_instance(tmp_path_factory.mktemp("telegram-process") / "instance")


def test_rejected_token_is_one_japanese_line(instance, fake):
    bot = BotProcess(instance.path, fake.url, token="999:WRONG").start()
    try:
        assert bot.wait() == 1
        lines = [line for line in bot.output.splitlines() if line.strip()]
        assert lines == ["Telegram がボットのトークンを受け付けませんでした。環境変数 TELEGRAM_BOT_TOKEN を確認してください。"]
    finally:
        bot.stop()


def test_missing_token_is_one_japanese_line(instance, fake):
    bot = BotProcess(instance.path, fake.url, token="").start()
    try:
        assert bot.wait() == 1
        assert bot.output.strip().splitlines() == [
            "Telegram ボットのトークンが設定されていません。BotFather が発行したトークンを環境変数 "
            "TELEGRAM_BOT_TOKEN に設定してから起動してください。"]
    finally:
        bot.stop()


def test_check_prints_name_webhook_pending_updates_and_last_error(instance, fake):
    fake.message(2001, "こんにちは")
    fake.last_error = (1764000000, "Connection refused")
    bot = BotProcess(instance.path, fake.url, args=["--check"]).start()
    try:
        assert bot.wait() == 0
        out = bot.output
        assert f"ボット: @{BOT_USERNAME}（MAMIS）" in out
        assert "Webhook: 未設定（ロングポーリングで受け取ります）" in out
        assert "待機中の更新: 1 件" in out
        assert "最後のエラー: " in out and "Connection refused" in out
    finally:
        bot.stop()


def test_sigkill_mid_update_then_restart_answers_each_update_exactly_once(instance, fake):
    """Kill while answers are stored but their sends hang, and while other updates are in flight."""
    bot = BotProcess(instance.path, fake.url).start()
    try:
        fake.wait_for("setMyCommands", timeout=30)
        fake.hold("sendMessage")
        chats = list(range(2101, 2109))
        ids = [fake.message(chat, "日医ニュースの送付先を自宅に変更したい") for chat in chats]
        fake.wait_confirmed(ids[-1])  # the bot asked for later updates: Telegram will not offer these again
        wait_until(lambda: fake.held >= 1, what="a send hanging")
        bot.kill()
        # Sends the bot wrote just before it died may still wait, unread, in the fake's sockets: let its
        # threads read (and hold) them, or one read after the release would count as delivered, which
        # is the one duplicate no bot can rule out (docs/telegram.md, "Never twice, never lost").
        time.sleep(1.0)
        fake.release(deliver=False)  # the hanging sends never reached Telegram
        assert all(fake.sent(chat) == [] for chat in chats)
        bot = BotProcess(instance.path, fake.url).start()
        for chat in chats:
            fake.wait_for("sendMessage", chat, timeout=30)
        wait_settled(fake, instance.helpdesk_db, *chats)  # any duplicate would have been sent by now
        assert [len(fake.sent(chat)) for chat in chats] == [1] * len(chats)
        assert all("delivery-settings" in fake.sent(chat)[0]["text"] or "送付" in fake.sent(chat)[0]["text"]
                   for chat in chats)
    finally:
        bot.stop()
    from bot import Store

    store = Store(instance.helpdesk_db)
    try:
        questions = store.conn.execute(
            "SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.channel = 'telegram' AND m.role = 'user' AND c.external_chat_id BETWEEN '2101' AND '2108'"
        ).fetchone()[0]
    finally:
        store.close()
    assert questions == len(chats)  # each question stored once, answered once


def test_webhook_mode_refuses_updates_without_the_secret(instance, fake):
    port = free_port()
    secret = "s3cret-token_1"
    bot = InProcessBot(instance.path, fake.url, TELEGRAM_WEBHOOK_SECRET=secret,
                       TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram")
    bot.start(webhook={"listen": "127.0.0.1", "port": port, "url_path": "telegram",
                       "webhook_url": f"http://127.0.0.1:{port}/telegram", "secret_token": secret})
    try:
        hook = fake.wait_for("setWebhook", timeout=15)[0].params
        assert hook["secret_token"] == secret
        wait_until(lambda: _listening(port), what="the webhook server listening")
        update = {"update_id": 999_001, "message": fake.message_dict(2201, "こんにちは")}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/telegram", json.dumps(update).encode(),
                                          {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403
        fake.message(2202, "こんにちは")  # pushed by the fake with the secret
        assert "MAMIS" in fake.wait_for("sendMessage", 2202, timeout=10)[0].params["text"]
        wait_settled(fake, instance.helpdesk_db, 2201, 2202)
        assert fake.sent(2201) == []
    finally:
        bot.stop()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_running_bot_is_seen_by_readiness_logs_json_and_counts_in_the_metrics(tmp_path, fake):
    """What an operator watches of the bot process: its heartbeat after each successful long poll
    (/readyz), one JSON object per log line, and its answers in the metrics the web workers serve.
    Ctrl-C (SIGINT to the whole process group, as under `make run`) stops it cleanly, workers too."""
    from handlers.web.health import TELEGRAM_HEARTBEAT, check_telegram
    from helpdesk.instance import Instance

    instance = build_instance(tmp_path / "instance")
    heartbeat = Instance.at(instance.path).path / TELEGRAM_HEARTBEAT
    assert check_telegram(instance, True, 180)["ok"] is False  # enabled but never heard from
    bot = BotProcess(instance.path, fake.url).start()
    try:
        fake.wait_for("setMyCommands", timeout=30)
        wait_until(heartbeat.exists, what="the first successful poll noted")
        assert check_telegram(instance, True, 180)["ok"] is True
        fake.message(2301, "日医ニュースの送付先を自宅に変更したい")
        fake.wait_for("sendMessage", 2301, timeout=15)
        metrics = list((instance.path / "metrics").glob("counter_*.db"))
        assert metrics, "the bot process counts into the instance's metrics folder"
        os.killpg(bot.proc.pid, signal.SIGINT)
        assert bot.wait() == 0
        lines = [line for line in bot.output.splitlines() if line.strip()]
    finally:
        bot.stop()
    assert lines and all(json.loads(line)["level"] for line in lines)


def test_webhook_without_a_secret_makes_one_and_forged_private_updates_get_no_record(tmp_path, fake):
    """`--webhook` with only HELPDESK_TELEGRAM_WEBHOOK_URL set: the bot makes a secret token, keeps it
    (0600) and gives it to setWebhook; a POST without it is refused, and an update with the secret
    whose private chat is not its sender's (chat 5799999 claiming a linked doctor) gets nothing."""
    from datetime import datetime

    from bot import Store
    from bot.accounts.linking import LinkCodes
    from handlers.cli.telegram import WEBHOOK_SECRET_FILE
    from records.demo import generate_demo

    instance = build_instance(tmp_path / "instance")
    generate_demo(instance.records_db, members=10)
    store = Store(instance.helpdesk_db)
    try:
        codes = LinkCodes(store)
        code = codes.issue("1300002", "test", datetime.now()).code
        codes.consume(code, "telegram", "2401", datetime.now())  # doctor 2401 is linked
    finally:
        store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    bot = BotProcess(instance.path, fake.url, args=["--webhook", "--port", str(port)],
                     env={"HELPDESK_TELEGRAM_WEBHOOK_URL": url}).start()
    try:
        hook = fake.wait_for("setWebhook", timeout=30)[0].params
        kept = instance.path / WEBHOOK_SECRET_FILE
        assert hook["secret_token"] and hook["secret_token"] == kept.read_text().strip()
        assert len(hook["secret_token"]) >= 32 and kept.stat().st_mode & 0o777 == 0o600
        assert hook["allowed_updates"] == ["message", "edited_message", "callback_query"]
        wait_until(lambda: _listening(port), what="the webhook server listening")

        def post(update: dict, secret: str | None) -> int:
            headers = {"Content-Type": "application/json"}
            if secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = secret
            request = urllib.request.Request(url, json.dumps(update).encode(), headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as e:
                return e.code

        status = {"message_id": 1, "date": int(time.time()), "text": "/status",
                  "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
                  "chat": {"id": 5799999, "type": "private"},
                  "from": {"id": 2401, "is_bot": False, "first_name": "x"}}
        assert post({"update_id": 999_101, "message": status}, None) == 403
        assert post({"update_id": 999_102, "message": status}, hook["secret_token"]) == 200
        own = {**status, "chat": {"id": 2401, "type": "private"}}
        assert post({"update_id": 999_103, "message": own}, hook["secret_token"]) == 200
        answers = fake.wait_for("sendMessage", 2401, 2, timeout=15)  # the doctor's own chat: their record
        assert "佐藤" in answers[0].params["text"]
        wait_settled(fake, instance.helpdesk_db, 5799999, 2401)
        assert fake.sent(5799999) == []
    finally:
        bot.stop()


def test_the_webhook_url_is_spelled_one_way_and_its_variable_named_as_it_is(instance):
    """https://…/telegram everywhere; the shipped nginx location takes it with or without the slash
    (a prefix location answers the other spelling with a 301, which Telegram does not follow); and the
    CLI names the environment variable that really sets it."""
    import re
    from pathlib import Path

    from click.testing import CliRunner

    from handlers.cli.main import cli

    result = CliRunner().invoke(cli, ["--instance", str(instance.path), "telegram", "--webhook"],
                                env={"TELEGRAM_BOT_TOKEN": "123456:TEST-token", "HELPDESK_TELEGRAM_WEBHOOK_URL": ""})
    assert result.exit_code == 1
    assert "HELPDESK_TELEGRAM_WEBHOOK_URL" in result.output and "https://…/telegram " in result.output
    root = Path(__file__).resolve().parent.parent
    docs = "\n".join(p.read_text() for p in [*(root / "docs").glob("*.md"), root / "README.md"])
    spelled = set(re.findall(r"https://[^\s\"`]*?/telegram/?(?=[\s\"`）])", docs))
    assert spelled and all(not s.endswith("/") for s in spelled), spelled
    nginx = (root / "deploy" / "nginx.conf").read_text()
    locations = re.findall(r"location\s+(~\s+\S+|=\s+\S+|\S+)\s*\{[^}]*proxy_pass http://127\.0\.0\.1:8443", nginx)
    assert len(locations) == 1
    kind, _, pattern = locations[0].partition(" ")
    assert kind == "~" and all(re.search(pattern.strip(), path) for path in ("/telegram", "/telegram/"))
    assert not re.search(pattern.strip(), "/telegramx")


def _children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_a_sigkilled_bot_leaves_no_worker_or_resource_tracker_behind(instance, fake):
    """Only the bot's own process is killed (not its group): its worker and the resource tracker it
    started must not live on without it."""
    bot = BotProcess(instance.path, fake.url).start()
    children: set[int] = set()
    try:
        fake.wait_for("setMyCommands", timeout=30)
        fake.message(2501, "こんにちは")
        fake.wait_for("sendMessage", 2501, timeout=15)  # a worker has answered
        # (and only the update types the bot answers are asked for)
        assert fake.calls_of("getUpdates")[-1].params["allowed_updates"] == ["message", "edited_message",
                                                                             "callback_query"]
        children = _children(bot.proc.pid)
        assert len(children) >= 2  # the worker(s) and multiprocessing's resource tracker
        os.kill(bot.proc.pid, signal.SIGKILL)
        bot.proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        for pid in children:  # (what the old code left behind: not left to slow down other tests)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        bot.stop()
