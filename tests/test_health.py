"""/healthz and /readyz: every part of readiness fails on its own and is named; only the parts a chat
cannot do without answer 503, the others report the instance as degraded (and as gauges)."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from handlers.web.health import IMPORTED_KINDS
from handlers.web.app import create_app
from records.schema import connect_writer, set_meta
from tests.conftest import build_instance

TOKEN = "123456:ABC-test-token"


def fresh_sync(instance, hours_ago: float = 1, keys=("last_sync",)) -> None:
    at = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).isoformat(timespec="seconds")
    conn = connect_writer(instance.records_db)
    try:
        for key in keys:
            set_meta(conn, key, json.dumps({"mode": "diff", "file": "m.csv", "at": at}))
    finally:
        conn.close()


def no_imports(instance):
    """Members synced, the other kinds never imported: degraded parts, never failing ones."""
    conn = connect_writer(instance.records_db)
    try:
        conn.execute("DELETE FROM meta WHERE key LIKE 'last_sync_%'")
        conn.commit()
    finally:
        conn.close()
    return {}, {"institutions_data", "applications_data", "reports_data"}


@pytest.fixture
def ready(tmp_path):
    """An instance where every part is ready, and a function making a client over it with settings."""
    instance = build_instance(tmp_path / "instance")
    fresh_sync(instance, keys=["last_sync", *(key for _kind, _label, key in IMPORTED_KINDS.values())])
    apps = []

    def client(**config):
        apps.append(create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True, **config}))
        return apps[-1].test_client()

    yield instance, client
    for app in apps:
        app.extensions["helpdesk"].close()


def outbox_row(instance, minutes_ago: float, sent: bool = False) -> None:
    created = (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")
    with sqlite3.connect(instance.helpdesk_db) as conn:
        conn.execute("INSERT INTO outbox (channel, chat_id, key, kind, payload, created_at, sent_at) "
                     "VALUES ('telegram', '42', :key, 'reply', '{}', :created, :sent)",
                     {"key": f"k{time.monotonic_ns()}", "created": created, "sent": created if sent else None})


def test_healthz_answers_without_any_database(tmp_path):
    instance = build_instance(tmp_path / "instance")
    app = create_app({"INSTANCE_PATH": str(instance.path), "TESTING": True})
    try:
        instance.kb_index.unlink()
        r = app.test_client().get("/healthz")
        assert r.status_code == 200 and r.get_json() == {"status": "ok", "pid": os.getpid()}
    finally:
        app.extensions["helpdesk"].close()


def test_readyz_when_everything_is_ready(ready):
    instance, client = ready
    r = client().get("/readyz")
    body = r.get_json()
    assert (r.status_code, body["status"], body["failing"], body["degraded"]) == (200, "ok", [], [])
    assert set(body["checks"]) == {"databases", "migrations", "index", "vectors", "member_data", "telegram",
                                   "outbox", "institutions_data", "applications_data", "reports_data"}
    assert body["checks"]["vectors"] == {"ok": True, "source": "ja_ginza-5.3.0", "index": "ja_ginza-5.3.0"}
    assert body["checks"]["index"]["articles"] > 0 and body["checks"]["index"]["age_seconds"] >= 0
    assert body["checks"]["member_data"]["mode"] == "diff"
    assert body["checks"]["telegram"] == {"ok": True, "state": "disabled"}
    assert r.headers["Cache-Control"] == "no-store"


def break_database(instance):
    garbage = instance.path / "garbage"
    garbage.write_bytes(b"not a database at all" * 400)
    os.replace(garbage, instance.helpdesk_db)
    return {}, {"databases", "migrations", "outbox"}  # every part that reads the file says so


def break_migrations(instance):
    with sqlite3.connect(instance.helpdesk_db) as conn:
        conn.execute("DELETE FROM migrations WHERE name = (SELECT max(name) FROM migrations)")
    return {}, {"migrations"}


def records_not_yet_migrated(instance):
    """After an upgrade the records database waits for its next import to be migrated: the chat (and
    the look-ups, which fall back) still work, so member data is degraded, not the instance failing."""
    with sqlite3.connect(instance.records_db) as conn:
        conn.execute("DELETE FROM migrations WHERE name = (SELECT max(name) FROM migrations)")
    return {}, {"member_data"}


def break_index(instance):
    instance.kb_index.unlink()
    return {}, {"index"}


def stale_member_data(instance):
    fresh_sync(instance, hours_ago=72)
    return {}, {"member_data"}


def no_member_data(instance):
    instance.records_db.unlink()  # no records at all: no kind was ever imported either
    return {}, {"member_data", *IMPORTED_KINDS}


def telegram_never_polled(instance):
    return {"TELEGRAM_BOT_TOKEN": TOKEN}, {"telegram"}


def telegram_silent(instance):
    from handlers.web.health import touch_heartbeat

    touch_heartbeat(instance.path)
    old = time.time() - 600
    os.utime(instance.path / "telegram.heartbeat", (old, old))
    return {"TELEGRAM_BOT_TOKEN": TOKEN}, {"telegram"}


def outbox_stuck(instance):
    outbox_row(instance, minutes_ago=5, sent=True)
    outbox_row(instance, minutes_ago=60)
    return {}, {"outbox"}


def vectors_missing(instance):
    os.environ["HELPDESK_VECTORS_PATH"] = str(instance.path / "not-fetched")  # undone by the test
    return {}, {"vectors"}


@pytest.mark.parametrize("breaks", [break_database, break_migrations, break_index, stale_member_data,
                                    no_member_data, telegram_never_polled, telegram_silent, outbox_stuck,
                                    vectors_missing, no_imports, records_not_yet_migrated])
def test_readyz_names_the_failing_part(ready, breaks, monkeypatch):
    from handlers.web.health import REQUIRED

    monkeypatch.setenv("HELPDESK_VECTORS_PATH", os.environ.get("HELPDESK_VECTORS_PATH", ""))
    instance, client = ready
    http = client()  # the app (and its database) exists before the part breaks, as on a live server
    config, broken = breaks(instance)
    http = client(**config) if config else http
    r = http.get("/readyz")
    body = r.get_json()
    failing, degraded = broken & set(REQUIRED), broken - set(REQUIRED)
    assert (set(body["failing"]), set(body["degraded"])) == (failing, degraded)
    # Only what every chat needs takes the instance out of the load balancer's rotation.
    assert (r.status_code, body["status"]) == ((503, "fail") if failing else (200, "degraded"))
    for part in broken:
        assert body["checks"][part]["ok"] is False and body["checks"][part]["error"]
    gauges = http.get("/metrics").get_data(as_text=True)
    for part in body["checks"]:
        assert f'helpdesk_ready{{part="{part}"}} {0.0 if part in broken else 1.0}' in gauges


def test_member_data_and_telegram_ages_are_gauges(ready):
    instance, client = ready
    from handlers.web.health import touch_heartbeat

    fresh_sync(instance, hours_ago=72)
    touch_heartbeat(instance.path)
    gauges = client(TELEGRAM_BOT_TOKEN=TOKEN).get("/metrics").get_data(as_text=True)
    member = float(next(l for l in gauges.splitlines() if l.startswith("helpdesk_member_data_age_seconds ")).split()[1])
    heartbeat = float(next(l for l in gauges.splitlines()
                           if l.startswith("helpdesk_telegram_heartbeat_age_seconds ")).split()[1])
    assert 72 * 3600 - 5 <= member <= 72 * 3600 + 60 and 0 <= heartbeat < 5


def test_readyz_recovers_when_the_part_is_fixed(ready):
    instance, client = ready
    from handlers.web.health import touch_heartbeat

    http = client(TELEGRAM_BOT_TOKEN=TOKEN)
    assert http.get("/readyz").get_json()["degraded"] == ["telegram"]
    touch_heartbeat(instance.path)
    outbox_row(instance, minutes_ago=2)
    body = http.get("/readyz").get_json()
    assert body["failing"] == body["degraded"] == [] and body["status"] == "ok"
    assert body["checks"]["outbox"]["backlog"] == 1 and body["checks"]["outbox"]["oldest_age_seconds"] >= 100
    assert body["checks"]["telegram"]["last_poll_age_seconds"] <= 5


def test_readyz_counts_the_outbox_as_the_bot_writes_it(ready):
    """Rows queued, sent and given up on through bot/messaging/outbox.py itself, in two channels: only what still
    waits counts, and the oldest of it gives the age (the same SQL the outbox keeps, not a guess)."""
    from bot.messaging.outbox import Outbox, backlog
    from bot.store.database import Store

    instance, client = ready
    jst = timezone(timedelta(hours=9))
    ago = lambda minutes: (datetime.now(jst) - timedelta(minutes=minutes)).isoformat(timespec="seconds")  # noqa: E731
    store = Store(instance.helpdesk_db)
    try:
        telegram, other = Outbox(store, "telegram"), Outbox(store, "line")
        telegram.set_notify("42", "7", True, ago(100))  # notifications go only to chats that asked
        assert telegram.notify("42", "sent", {"text": "済"}, ago(90))
        assert telegram.notify("42", "refused", {"text": "拒否"}, ago(80))
        waiting_since = ago(12)
        assert telegram.notify("43", "waiting", {"text": "待ち"}, waiting_since)
        assert other.notify("44", "waiting", {"text": "待ち"}, ago(3))
        ids = {r.key: r.id for r in telegram.due("run-1", time.time())}
        telegram.sent([ids["sent"]], ago(89))
        telegram.failed(ids["refused"], "forbidden")
        assert backlog(store.conn) == (2, waiting_since)
    finally:
        store.close()
    outbox = client().get("/readyz").get_json()["checks"]["outbox"]
    assert outbox["backlog"] == 2 and 12 * 60 - 5 <= outbox["oldest_age_seconds"] <= 12 * 60 + 60
    assert outbox["ok"] is True
    outbox = client(READY_OUTBOX_MAX_MINUTES=10).get("/readyz").get_json()["checks"]["outbox"]
    assert outbox["ok"] is False and outbox["backlog"] == 2
