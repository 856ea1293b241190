"""Running for real: 4 gunicorn workers and the Telegram process (`helpdesk telegram`, polling a fake
Bot API) share the databases under load, with no "database is locked" and nothing lost; /metrics sums
every process; rate limits hold across workers; a backup taken under load holds everything committed
before it started and restores; and the server's log lines are JSON without a member number, a name
or a link code in them."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, build_instance
from tests.staff import PASSWORD, add_records_and_staff, build_demo
from tests.telegram_fake import FakeTelegram
from tests.telegram_harness import BotProcess, wait_until

pytestmark = [pytest.mark.server, pytest.mark.slow]  # four workers and a bot process under load

WEB_CLIENTS, WEB_MESSAGES = 6, 12
CHATS, CHAT_MESSAGES = 10, 15
FIRST_CHAT = 9000
QUESTIONS = ["マスタはいつ更新されますか", "日医ニュースの送付先を変えたい", "API連携の申し込み方法", "こんにちは"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    demo = build_demo(tmp_path_factory.mktemp("demo") / "records.sqlite")
    instance = build_instance(tmp_path_factory.mktemp("ops"), {"RATELIMIT_STORAGE_URI": "helpdesk-sqlite://",
                                                               "TELEGRAM_RATE_LIMIT": "10000 per minute"})
    add_records_and_staff(instance, demo)
    server = ServerProcess(instance.path, workers=4, threads=2).start(timeout=60)
    yield instance, server
    server.stop()


def web_client(base: str, n: int, acknowledged: list, errors: list) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        created = http.post("/api/conversations", json={}).json()
        auth = {"Authorization": f"Bearer {created['token']}"}
        for i in range(WEB_MESSAGES):
            r = http.post(f"/api/conversations/{created['id']}/messages",
                          json={"text": QUESTIONS[(n + i) % len(QUESTIONS)], "idempotency_key": f"w{n}-{i}"},
                          headers=auth)
            (acknowledged.append(r.json()["message"]["id"]) if r.status_code == 201
             else errors.append((r.status_code, r.text)))


def telegram_chat(fake: FakeTelegram, chat: int, offered: dict) -> None:
    """One chat's messages, each sent once the bot answered the one before (a person waiting for it)."""
    for k in range(CHAT_MESSAGES):
        text = QUESTIONS[(chat + k) % len(QUESTIONS)]
        offered.setdefault(chat, []).append((fake.message(chat, text), text))
        fake.wait_for("sendMessage", chat, k + 1, timeout=60)


@pytest.mark.telegram
def test_workers_and_the_telegram_process_share_the_databases(served, tmp_path):
    """Web clients and Telegram chats at once, against 4 gunicorn workers and the real bot process,
    with a backup taken midway."""
    from handlers.telegram.updates import APOLOGY

    instance, server = served
    chats = range(FIRST_CHAT, FIRST_CHAT + CHATS)
    acknowledged, errors = [], []
    offered: dict[int, list[tuple[int, str]]] = {}  # chat -> (update id, text), in the order offered
    before_backup: list[int] = []
    answered_before_backup: dict[int, int] = {}
    backup_dir = tmp_path / "backup"

    def backup_midway():
        wait_until(lambda: len(acknowledged) >= WEB_CLIENTS * WEB_MESSAGES // 3
                   and len(fake.calls_of("sendMessage")) >= CHATS * CHAT_MESSAGES // 10,
                   timeout=120, what="a third of the web messages and a tenth of the updates answered")
        # Every one of these was committed before the backup starts (the bot stores a turn before sending).
        before_backup.extend(acknowledged)
        answered_before_backup.update({chat: len(fake.sent(chat)) for chat in chats})
        subprocess.run([sys.executable, "-m", "handlers.server.main", "--instance", str(instance.path),
                        "backup", str(backup_dir)], cwd=ROOT, check=True, capture_output=True)

    fake = FakeTelegram().start()
    bot = BotProcess(instance.path, fake.url).start()
    try:
        fake.wait_for("getUpdates", timeout=60)  # the bot is up and polling
        with ThreadPoolExecutor(WEB_CLIENTS + CHATS + 1) as pool:
            backup = pool.submit(backup_midway)
            web = [pool.submit(web_client, server.url, n, acknowledged, errors) for n in range(WEB_CLIENTS)]
            telegram = [pool.submit(telegram_chat, fake, chat, offered) for chat in chats]
            for future in web:
                future.result()
            web_done = time.monotonic()
            for future in [*telegram, backup]:
                future.result()
        # The two loads overlapped: the bot answered while web clients were still posting.
        assert any(call.at < web_done for call in fake.calls_of("sendMessage"))

        # /metrics from any worker counts every web worker and the bot's worker processes (which answer).
        tasks = Path(f"/proc/{bot.proc.pid}/task").iterdir()
        bot_workers = {int(pid) for task in tasks for pid in (task / "children").read_text().split()}
        assert any((instance.path / "metrics" / f"counter_{pid}.db").exists() for pid in bot_workers)
        pids = {httpx.get(server.url + "/healthz").json()["pid"] for _ in range(40)}
        assert len(pids) >= 2
        for _ in range(4):
            text = httpx.get(server.url + "/metrics").text
            messages = {line for line in text.splitlines() if line.startswith("helpdesk_messages_total")}
            assert messages == {f'helpdesk_messages_total{{channel="web"}} {float(WEB_CLIENTS * WEB_MESSAGES)}',
                                f'helpdesk_messages_total{{channel="telegram"}} {float(CHATS * CHAT_MESSAGES)}'}, \
                (messages, sorted(p.name for p in (instance.path / "metrics").iterdir()))
            assert 'helpdesk_request_seconds_count{method="POST",route="/api/conversations",status="2xx"} ' \
                   f'{float(WEB_CLIENTS)}' in text

        bot.proc.terminate()  # a clean stop: no send can come after it, so the counts below are final
        assert bot.wait(30) == 0, bot.output
        bot_output = bot.output
    finally:
        bot.stop()
        fake.stop()

    assert errors == [], errors
    assert "database is locked" not in server.output and "database is locked" not in bot_output
    # Every Telegram update answered exactly once, and never with the apology for a failed update.
    assert [len(fake.sent(chat)) for chat in chats] == [CHAT_MESSAGES] * CHATS
    assert not [call for call in fake.calls_of("sendMessage") if APOLOGY in call.params["text"]]

    telegram_user = ("SELECT c.external_chat_id, m.idempotency_key, m.text FROM messages m JOIN conversations c "
                     "ON c.id = m.conversation_id WHERE c.channel = 'telegram' AND m.role = 'user'")
    expected = sorted((str(chat), f"tg:{update}", text) for chat in chats for update, text in offered[chat])
    with sqlite3.connect(instance.helpdesk_db) as conn:
        web = {r[0] for r in conn.execute("SELECT m.id FROM messages m JOIN conversations c ON c.id = "
                                          "m.conversation_id WHERE c.channel = 'web' AND m.role = 'user'")}
        stored = sorted(conn.execute(telegram_user).fetchall())
    assert web == set(acknowledged) and len(web) == WEB_CLIENTS * WEB_MESSAGES
    assert len(expected) == CHATS * CHAT_MESSAGES and stored == expected  # one stored message per update

    # The backup taken halfway holds everything acknowledged or answered before it began, and is sound.
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["databases"]["helpdesk.sqlite"]["integrity"] == "ok"
    with sqlite3.connect(backup_dir / "helpdesk.sqlite") as conn:
        copied = {r[0] for r in conn.execute("SELECT id FROM messages WHERE role = 'user'")}
        copied_updates = {r[1] for r in conn.execute(telegram_user)}
    assert set(before_backup) <= copied and len(before_backup) >= WEB_CLIENTS * WEB_MESSAGES // 3
    # A chat's updates are answered in the order offered, so its first n answers are its first n updates.
    answered = {f"tg:{update}" for chat, n in answered_before_backup.items() for update, _ in offered[chat][:n]}
    assert answered <= copied_updates and len(answered) >= CHATS * CHAT_MESSAGES // 10


def test_restore_brings_back_the_backup(served, tmp_path):
    instance, server = served
    source = tmp_path / "copy"
    run = lambda *args: subprocess.run([sys.executable, "-m", "handlers.server.main", "--instance",  # noqa: E731
                                        str(instance.path), *args], cwd=ROOT, capture_output=True, text=True)
    assert run("backup", str(source)).returncode == 0
    with sqlite3.connect(source / "helpdesk.sqlite") as conn:
        kept = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    created = httpx.post(server.url + "/api/conversations", json={}).json()
    httpx.post(f"{server.url}/api/conversations/{created['id']}/messages", json={"text": "後から来た質問"},
               headers={"Authorization": f"Bearer {created['token']}"})

    tampered = tmp_path / "tampered"
    subprocess.run(["cp", "-r", str(source), str(tampered)], check=True)
    with open(tampered / "audit.sqlite" if (tampered / "audit.sqlite").exists() else tampered / "records.sqlite",
              "r+b") as f:
        f.seek(5000)
        f.write(b"\xff" * 64)
    refused = run("restore", "--yes", str(tampered))
    assert refused.returncode == 1 and "一致しません" in refused.stderr

    restored = run("restore", "--yes", str(source))
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(instance.helpdesk_db) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == kept
    assert httpx.get(server.url + "/readyz").json()["checks"]["databases"]["ok"] is True


def test_rate_limits_hold_across_workers(served):
    """Sign-in attempts for one login id are limited to 5 a minute (SIGN_IN_ID_RATE_LIMIT). Each attempt
    comes on a new connection, so the four workers share them out: with counters per process, up to
    20 would pass."""
    _instance, server = served
    answers = []
    for _ in range(8):
        with httpx.Client(base_url=server.url, timeout=10) as http:
            token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
            answers.append(http.post("/api/session", json={"login_id": "rate-probe", "password": "wrong"},
                                     headers=token).status_code)
    assert answers == [401] * 5 + [429] * 3


def test_logs_are_json_lines_without_personal_data(served):
    instance, server = served
    with sqlite3.connect(instance.records_db) as conn:
        number, name = conn.execute("SELECT member_number, name FROM members WHERE member_number = '1300002'"
                                    ).fetchone()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
        assert http.post("/api/session", json={"login_id": "tokyo", "password": PASSWORD},
                         headers=token).status_code == 200
        token = {"X-CSRFToken": http.get("/api/session").json()["csrf_token"]}
        created = http.post("/api/conversations", headers=token).json()
        auth = {"Authorization": f"Bearer {created['token']}", **token}
        for text in (f"会員番号{number}の入会手続きはどこまで進んでいますか", f"{name}先生の日医ニュースの送付先は"):
            assert http.post(f"/api/conversations/{created['id']}/messages", json={"text": text},
                             headers=auth).status_code == 201
        code = http.post("/api/link-codes", json={"member_number": number}, headers=token).json()["code"]
        http.get("/api/suggest", params={"q": f"{name} {number} {code}"})
        http.get(f"/articles/{number}-{code}")  # a 404 whose path carries personal data
    time.sleep(0.5)
    lines = [line for line in server.output.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(events) == len([line for line in lines if "起動しました" not in line])  # one JSON object a line
    requests = [e for e in events if e["event"] == "request"]
    assert {"/api/link-codes", "/api/conversations/<conversation_id>/messages"} <= {e["route"] for e in requests}
    assert all(len(e["request_id"]) == 32 and e["level"] == "INFO" for e in requests)
    family = name.replace("\u3000", " ").split()[0]
    for secret in (number, family, code):
        assert secret not in server.output
