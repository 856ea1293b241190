"""`helpdesk purge` (dry run by default, then for real) and `helpdesk person export|delete`, on a real
instance with rows on both sides of every age."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from bot.model import Reply
from bot.store.database import Store
from handlers.cli.main import cli
from records.access import AccessLog, Asker
from tests.conftest import NOW, build_instance

TODAY = datetime.fromisoformat(NOW)


def ago(days: float) -> str:
    return (TODAY - timedelta(days=days)).isoformat(timespec="seconds")


def turn(store, cid, text, days, key=None):
    question, answer, _ = store.save_turn(cid, text, Reply("回答です", "answer"), ago(days), idempotency_key=key)
    return question.id, answer.id


def ticket(conn, number, cid, state, closed_days):
    conn.execute(
        "INSERT INTO tickets (number, conversation_id, state, channel, asker_role, reason, subject, transcript, "
        "articles, unfound, created_at, updated_at, closed_at) VALUES (:n, :cid, :state, 'web', 'anonymous', "
        "'button', '件名', '記録', '[]', '[]', :at, :at, :closed)",
        {"n": number, "cid": cid, "state": state, "at": ago(closed_days + 1),
         "closed": ago(closed_days) if state == "closed" else None})
    conn.execute("INSERT INTO ticket_events (ticket_number, at, actor, kind) VALUES (:n, :at, 'agent', 'created')",
                 {"n": number, "at": ago(closed_days + 1)})


@pytest.fixture
def instance(tmp_path):
    """Old and new rows of every kind; the comments say which a 365/1825/365/1825/30-day purge removes."""
    instance = build_instance(tmp_path / "instance")
    store = Store(instance.helpdesk_db)
    old = store.create_conversation("web", "anonymous", ago(400)).conversation.id       # goes
    q, a = turn(store, old, "古い質問", 400)                                             # 2 messages go
    store.set_feedback(a, True, ago(400))                                                # 1 feedback goes
    with store.transaction() as conn:
        conn.execute("INSERT INTO unanswered (conversation_id, message_id, text, confidence, channel, asker_role, "
                     "created_at) VALUES (:c, :m, '古い質問', 0.1, 'web', 'anonymous', :at)",
                     {"c": old, "m": q, "at": ago(400)})                                # 1 unanswered goes
    new = store.create_conversation("web", "anonymous", ago(10)).conversation.id       # stays
    turn(store, new, "新しい質問", 10)
    chat = store.create_conversation("telegram", "member", ago(500), external_chat_id="777").conversation.id
    turn(store, chat, "会員番号1300001です", 500)                                         # 2 messages go
    turn(store, chat, "最近の質問", 5)                                                    # conversation stays
    held = store.create_conversation("web", "anonymous", ago(3000)).conversation.id    # open ticket: stays
    turn(store, held, "担当者と話したい", 3000)
    closed = store.create_conversation("web", "anonymous", ago(3000)).conversation.id  # old closed ticket: goes
    turn(store, closed, "解決済み", 3000)                                                # 2 messages go
    with store.transaction() as conn:
        ticket(conn, 1, held, "open", 0)
        ticket(conn, 2, closed, "closed", 2000)                                          # ticket + 1 event go
        codes = [("h1", ago(60), None), ("h2", ago(60), ago(59)), ("h3", ago(1), None)]
        for i, (code_hash, issued, used) in enumerate(codes, 1):
            conn.execute("INSERT INTO link_codes (id, code_hash, member_number, issued_by, issued_at, expires_at, "
                         "used_at, used_channel) VALUES (:id, :h, '1300001', 'staff:county:13001', :issued, "
                         ":issued, :used, :channel)", {"id": i, "h": code_hash, "issued": issued, "used": used,
                                                        "channel": "telegram" if used else None})
        conn.execute("INSERT INTO member_links (channel, external_user_id, member_number, link_code_id, linked_at) "
                     "VALUES ('telegram', '777', '1300001', 2, :at)", {"at": ago(59)})  # code 2 anonymised
    store.close()
    log = AccessLog(instance.audit_db)
    log.write(Asker.anonymous(), "lookup", "13***01", False)
    log.close()
    with sqlite3.connect(instance.audit_db) as conn:
        conn.execute("INSERT INTO access_log (at, asker, action, outcome) VALUES (:at, 'x', 'lookup', 'allowed')",
                     {"at": ago(2000)})                                                  # 1 access-log entry goes
    return instance


EXPECTED = {"conversations": 2, "messages": 6, "feedback": 1, "unanswered": 1, "tickets": 1, "ticket_events": 1,
            "channel_updates": 0, "outbox": 0, "link_codes_deleted": 1, "link_codes_anonymised": 1, "access_log": 1}


def run(instance, *args):
    result = CliRunner().invoke(cli, ["--instance", str(instance.path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def snapshot(instance) -> dict:
    counts = {}
    with sqlite3.connect(instance.helpdesk_db) as conn:
        for table in ("conversations", "messages", "feedback", "unanswered", "tickets", "ticket_events",
                      "link_codes", "member_links"):
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    with sqlite3.connect(instance.audit_db) as conn:
        counts["access_log"] = conn.execute("SELECT count(*) FROM access_log").fetchone()[0]
    return counts


def test_purge_is_a_dry_run_by_default_then_deletes_exactly_what_it_counted(instance):
    before = snapshot(instance)
    dry = json.loads(run(instance, "purge", "--json"))
    assert dry == {"applied": False, "counts": EXPECTED}
    assert snapshot(instance) == before
    assert "試行（何も削除していません。削除するには --apply）" in run(instance, "purge")

    done = json.loads(run(instance, "purge", "--apply", "--json"))
    assert done == {"applied": True, "counts": EXPECTED}
    after = snapshot(instance)
    assert after == {**before, "conversations": before["conversations"] - 2, "messages": before["messages"] - 6,
                     "feedback": 0, "unanswered": 0, "tickets": 1, "ticket_events": 1, "link_codes": 2,
                     "access_log": before["access_log"] - 1 + 1}  # the purge itself is logged
    with sqlite3.connect(instance.helpdesk_db) as conn:
        assert conn.execute("SELECT code_hash, issued_by FROM link_codes WHERE id = 2").fetchone() == ("purged:2", "-")
        texts = [r[0] for r in conn.execute("SELECT text FROM messages ORDER BY id")]
        assert "古い質問" not in texts and "会員番号1300001です" not in texts and "最近の質問" in texts
    with sqlite3.connect(instance.audit_db) as conn:
        assert conn.execute("SELECT asker, action FROM access_log ORDER BY id DESC LIMIT 1").fetchone() == (
            "operator(helpdesk cli)", "retention_purge")
    assert json.loads(run(instance, "purge", "--json"))["counts"] == dict.fromkeys(EXPECTED, 0)


def test_person_export_and_delete_by_member_number(instance):
    exported = json.loads(run(instance, "person", "export", "--member", "1300001"))
    assert exported["person"] == {"member_numbers": ["1300001"], "telegram_users": ["777"]}
    assert [link["external_user_id"] for link in exported["member_links"]] == ["777"]
    assert len(exported["link_codes"]) == 3 and "code_hash" not in exported["link_codes"][0]
    [conversation] = exported["conversations"]
    assert [m["text"] for m in conversation["messages"] if m["role"] == "user"] == ["会員番号1300001です", "最近の質問"]

    before = snapshot(instance)
    assert "削除の対象" in run(instance, "person", "delete", "--member", "1300001", "--yes")
    after = snapshot(instance)
    assert after["member_links"] == 0 and after["link_codes"] == 0
    assert after["conversations"] == before["conversations"] - 1 and after["messages"] == before["messages"] - 4
    with sqlite3.connect(instance.audit_db) as conn:
        rows = conn.execute("SELECT action, record FROM access_log WHERE asker = 'operator(helpdesk cli)' "
                            "ORDER BY id").fetchall()
    assert rows == [("person_export", "member:13***01"), ("person_delete", "member:13***01")]
    assert json.loads(run(instance, "person", "export", "--telegram", "777"))["conversations"] == []


def test_person_delete_by_telegram_user_asks_first_and_refuses_bad_input(instance):
    result = CliRunner().invoke(cli, ["--instance", str(instance.path), "person", "delete", "--telegram", "777"],
                                input="n\n")
    assert result.exit_code == 1 and snapshot(instance)["member_links"] == 1
    run(instance, "person", "delete", "--telegram", "777", "--yes")
    assert snapshot(instance)["member_links"] == 0
    bad = CliRunner().invoke(cli, ["--instance", str(instance.path), "person", "export", "--member", "12"])
    assert bad.exit_code == 2 and "会員番号は7桁の数字です。" in bad.output
