"""/healthz and /readyz: every part of readiness fails on its own, answers 503 and is named."""
from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from handlers.web import create_app
from records.schema import connect_writer, set_meta
from tests.conftest import build_instance

TOKEN = "123456:ABC-test-token"


def fresh_sync(instance, hours_ago: float = 1) -> None:
    at = (datetime.now(timezone.utc) - timedelta(hours=hours_ago)).isoformat(timespec="seconds")
    conn = connect_writer(instance.records_db)
    try:
        set_meta(conn, "last_sync", json.dumps({"mode": "diff", "file": "m.csv", "at": at}))
    finally:
        conn.close()


@pytest.fixture
def ready(tmp_path):
    """An instance where every part is ready, and a function making a client over it with settings."""
    instance = build_instance(tmp_path / "instance")
    fresh_sync(instance)
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
    assert (r.status_code, body["status"], body["failing"]) == (200, "ok", [])
    assert set(body["checks"]) == {"databases", "migrations", "index", "member_data", "telegram", "outbox",
                                   "institutions_data", "applications_data", "reports_data"}
    # members only were imported: the other kinds are reported, degraded, without failing readiness
    assert body["degraded"] == ["institutions_data", "applications_data", "reports_data"]
    assert body["checks"]["institutions_data"] == {
        "ok": True, "degraded": True, "error": "医療機関マスタが取り込まれていません（helpdesk sync-institutions --full）"}
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


def break_index(instance):
    instance.kb_index.unlink()
    return {}, {"index"}


def stale_member_data(instance):
    fresh_sync(instance, hours_ago=72)
    return {}, {"member_data"}


def no_member_data(instance):
    instance.records_db.unlink()
    return {}, {"member_data"}


def telegram_never_polled(instance):
    return {"TELEGRAM_BOT_TOKEN": TOKEN}, {"telegram"}


def telegram_silent(instance):
    from handlers.health import touch_heartbeat

    touch_heartbeat(instance.path)
    old = time.time() - 600
    os.utime(instance.path / "telegram.heartbeat", (old, old))
    return {"TELEGRAM_BOT_TOKEN": TOKEN}, {"telegram"}


def outbox_stuck(instance):
    outbox_row(instance, minutes_ago=5, sent=True)
    outbox_row(instance, minutes_ago=60)
    return {}, {"outbox"}


@pytest.mark.parametrize("breaks", [break_database, break_migrations, break_index, stale_member_data,
                                    no_member_data, telegram_never_polled, telegram_silent, outbox_stuck])
def test_readyz_names_the_failing_part(ready, breaks):
    instance, client = ready
    http = client()  # the app (and its database) exists before the part breaks, as on a live server
    config, failing = breaks(instance)
    http = client(**config) if config else http
    r = http.get("/readyz")
    body = r.get_json()
    assert r.status_code == 503 and body["status"] == "fail"
    assert set(body["failing"]) == failing
    for part in failing:
        assert body["checks"][part]["ok"] is False and body["checks"][part]["error"]


def test_readyz_recovers_when_the_part_is_fixed(ready):
    instance, client = ready
    from handlers.health import touch_heartbeat

    http = client(TELEGRAM_BOT_TOKEN=TOKEN)
    assert http.get("/readyz").get_json()["failing"] == ["telegram"]
    touch_heartbeat(instance.path)
    outbox_row(instance, minutes_ago=2)
    body = http.get("/readyz").get_json()
    assert body["failing"] == []
    assert body["checks"]["outbox"]["backlog"] == 1 and body["checks"]["outbox"]["oldest_age_seconds"] >= 100
    assert body["checks"]["telegram"]["last_poll_age_seconds"] <= 5
