"""Running for real: 4 gunicorn workers and a second writer process (standing in for the Telegram
process) share the databases under load, with no "database is locked" and nothing lost; /metrics sums
every process; rate limits hold across workers; a backup taken under load holds everything committed
before it started and restores; and the server's log lines are JSON without a member number, a name
or a link code in them."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, build_instance
from tests.staff import PASSWORD, add_records_and_staff, build_demo

WEB_CLIENTS, WEB_MESSAGES = 6, 12
BOT_MESSAGES = 150
QUESTIONS = ["マスタはいつ更新されますか", "日医ニュースの送付先を変えたい", "API連携の申し込み方法", "こんにちは"]

# The bot's stand-in: its own process, writing telegram turns into the same database through the
# store, counting them in the shared metrics folder like the Telegram process does.
WRITER = r"""
import sys
from datetime import datetime, timezone
from bot.model import Reply
from bot.store import Store
from handlers import metrics

instance, count = sys.argv[1], int(sys.argv[2])
metrics.use_instance_dir(instance)
store = Store(instance + "/helpdesk.sqlite")
now = lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
done = 0
for i in range(count):
    new = store.create_conversation("telegram", "anonymous", now(), external_chat_id=str(9000 + i % 10)) \
        if i < 10 else None
    cid = new.conversation.id if new else cids[i % 10]
    if new:
        cids = globals().setdefault("cids", [])
        cids.append(cid)
    store.save_turn(cid, f"質問 {i}", Reply("回答です", "answer"), now(), idempotency_key=f"tg-{i}")
    metrics.record_turn("telegram", "answer")
    done += 1
print(done)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    demo = build_demo(tmp_path_factory.mktemp("demo") / "records.sqlite")
    instance = build_instance(tmp_path_factory.mktemp("ops"), {"RATELIMIT_STORAGE_URI": "helpdesk-sqlite://"})
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


def test_workers_and_a_second_writer_share_the_databases(served, tmp_path):
    instance, server = served
    acknowledged, errors = [], []
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(instance.path), str(BOT_MESSAGES)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before_backup: list[int] = []
    backup_dir = tmp_path / "backup"

    def backup_midway():
        while len(acknowledged) < WEB_CLIENTS * WEB_MESSAGES // 3:
            time.sleep(0.01)
        before_backup.extend(acknowledged)  # every one of these was committed before the backup starts
        subprocess.run([sys.executable, "-m", "handlers.serve_main", "--instance", str(instance.path),
                        "backup", str(backup_dir)], cwd=ROOT, check=True, capture_output=True)

    backup_thread = threading.Thread(target=backup_midway)
    backup_thread.start()
    with ThreadPoolExecutor(WEB_CLIENTS) as pool:
        list(pool.map(lambda n: web_client(server.url, n, acknowledged, errors), range(WEB_CLIENTS)))
    out, err = writer.communicate(timeout=120)
    backup_thread.join(timeout=120)

    assert errors == [] and writer.returncode == 0, (errors, err)
    assert int(out) == BOT_MESSAGES
    assert "database is locked" not in server.output + err
    with sqlite3.connect(instance.helpdesk_db) as conn:
        web = {r[0] for r in conn.execute("SELECT m.id FROM messages m JOIN conversations c ON c.id = "
                                          "m.conversation_id WHERE c.channel = 'web' AND m.role = 'user'")}
        bot = conn.execute("SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                           "WHERE c.channel = 'telegram' AND m.role = 'user'").fetchone()[0]
    assert web == set(acknowledged) and len(web) == WEB_CLIENTS * WEB_MESSAGES
    assert bot == BOT_MESSAGES

    # The backup taken halfway holds everything acknowledged before it began, and is sound.
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["databases"]["helpdesk.sqlite"]["integrity"] == "ok"
    with sqlite3.connect(backup_dir / "helpdesk.sqlite") as conn:
        copied = {r[0] for r in conn.execute("SELECT id FROM messages WHERE role = 'user'")}
    assert set(before_backup) <= copied and len(before_backup) >= WEB_CLIENTS * WEB_MESSAGES // 3

    # /metrics from any worker counts every worker and the writer process.
    pids = {httpx.get(server.url + "/healthz").json()["pid"] for _ in range(40)}
    assert len(pids) >= 2
    for _ in range(4):
        text = httpx.get(server.url + "/metrics").text
        messages = {line for line in text.splitlines() if line.startswith("helpdesk_messages_total")}
        assert messages == {f'helpdesk_messages_total{{channel="web"}} {float(WEB_CLIENTS * WEB_MESSAGES)}',
                            f'helpdesk_messages_total{{channel="telegram"}} {float(BOT_MESSAGES)}'}, \
            (messages, sorted(p.name for p in (instance.path / "metrics").iterdir()))
        assert 'helpdesk_request_seconds_count{method="POST",route="/api/conversations",status="2xx"} ' \
               f'{float(WEB_CLIENTS)}' in text


def test_restore_brings_back_the_backup(served, tmp_path):
    instance, server = served
    source = tmp_path / "copy"
    run = lambda *args: subprocess.run([sys.executable, "-m", "handlers.serve_main", "--instance",  # noqa: E731
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
