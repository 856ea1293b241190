"""Keep personal data no longer than allowed: `helpdesk purge` and its ages.

What is old enough (each age a setting, RETENTION_*_DAYS) is deleted:
- messages of a conversation older than the conversation age, with their feedback and unanswered
  entries, and a conversation once nothing of it is left; the Telegram updates and outbox items
  handled that long ago (they carry the same text);
- tickets resolved or closed longer ago than the ticket age, with their events; a conversation with a
  ticket that is still kept is kept whole, since the ticket's thread is in it;
- unanswered questions older than their age (they are kept shorter or longer than the conversation);
- access-log entries older than their age;
- link codes used or expired longer ago than their age. A used code still behind a member link is
  anonymised instead (its hash and issuer blanked), since the link refers to it.

`purge(..., apply=False)` runs the very same statements inside a transaction and rolls it back, so the
dry run's counts are exactly what a real run would delete. Tables that do not exist in this
installation (no desk yet, no Telegram yet) are skipped.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from storage.sqlite import connect, transaction

from bot.desk.tickets import STATE_PARAMS


@dataclass(frozen=True)
class Ages:
    conversation_days: int = 365
    ticket_days: int = 1825
    unanswered_days: int = 365
    access_log_days: int = 1825
    link_code_days: int = 30

    @classmethod
    def from_settings(cls, settings) -> "Ages":
        return cls(int(settings["RETENTION_CONVERSATION_DAYS"]), int(settings["RETENTION_TICKET_DAYS"]),
                   int(settings["RETENTION_UNANSWERED_DAYS"]), int(settings["RETENTION_ACCESS_LOG_DAYS"]),
                   int(settings["RETENTION_LINK_CODE_DAYS"]))


def cutoff(now: datetime, days: int) -> str:
    """The moment `days` before `now`. Stored times carry their own offset (+09:00 or +00:00), so every
    comparison goes through julianday(), which reads the offset, never through text order."""
    return (now - timedelta(days=days)).astimezone(timezone.utc).isoformat(timespec="seconds")


def tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- the help desk database -------------------------------------------------------------------------

_OLD_TICKETS = """
CREATE TEMP TABLE doomed_tickets AS
SELECT number FROM tickets
WHERE state IN (:resolved, :closed) AND julianday(coalesce(closed_at, resolved_at, updated_at)) < julianday(:ticket_cutoff)
"""
_KEPT_CONVERSATIONS = """
CREATE TEMP TABLE kept_conversations AS
SELECT DISTINCT conversation_id AS id FROM tickets WHERE number NOT IN (SELECT number FROM doomed_tickets)
"""
_NO_TICKETS = "CREATE TEMP TABLE kept_conversations (id TEXT PRIMARY KEY)"
_OLD_MESSAGES = """
CREATE TEMP TABLE doomed_messages AS
SELECT id FROM messages
WHERE julianday(created_at) < julianday(:conversation_cutoff) AND conversation_id NOT IN (SELECT id FROM kept_conversations)
"""
_DELETE_TICKET_EVENTS = "DELETE FROM ticket_events WHERE ticket_number IN (SELECT number FROM doomed_tickets)"
_DELETE_TICKETS = "DELETE FROM tickets WHERE number IN (SELECT number FROM doomed_tickets)"
_UNLINK_REPLIES = """
UPDATE messages SET in_reply_to = NULL
WHERE in_reply_to IN (SELECT id FROM doomed_messages) AND id NOT IN (SELECT id FROM doomed_messages)
"""
_DELETE_FEEDBACK = "DELETE FROM feedback WHERE message_id IN (SELECT id FROM doomed_messages)"
_DELETE_UNANSWERED_OF = "DELETE FROM unanswered WHERE message_id IN (SELECT id FROM doomed_messages)"
_DELETE_MESSAGES = "DELETE FROM messages WHERE id IN (SELECT id FROM doomed_messages)"
_DELETE_EMPTY_CONVERSATIONS = """
DELETE FROM conversations
WHERE julianday(created_at) < julianday(:conversation_cutoff) AND id NOT IN (SELECT id FROM kept_conversations)
  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id)
  AND NOT EXISTS (SELECT 1 FROM unanswered u WHERE u.conversation_id = conversations.id)
"""
_DELETE_UNANSWERED = "DELETE FROM unanswered WHERE julianday(created_at) < julianday(:unanswered_cutoff)"
_DELETE_INBOX = "DELETE FROM channel_inbox WHERE done_at IS NOT NULL AND julianday(done_at) < julianday(:conversation_cutoff)"
_DELETE_OUTBOX = """
DELETE FROM outbox WHERE (sent_at IS NOT NULL OR failed IS NOT NULL) AND julianday(created_at) < julianday(:conversation_cutoff)
"""
_DOOMED_CODES = """
CREATE TEMP TABLE doomed_codes AS
SELECT id, EXISTS (SELECT 1 FROM member_links l WHERE l.link_code_id = link_codes.id) AS linked
FROM link_codes
WHERE (used_at IS NOT NULL AND julianday(used_at) < julianday(:link_code_cutoff))
   OR (used_at IS NULL AND julianday(expires_at) < julianday(:link_code_cutoff))
"""
_DELETE_CODES = "DELETE FROM link_codes WHERE id IN (SELECT id FROM doomed_codes WHERE NOT linked)"
_ANONYMISE_CODES = """
UPDATE link_codes SET code_hash = 'purged:' || id, issued_by = '-'
WHERE id IN (SELECT id FROM doomed_codes WHERE linked) AND code_hash NOT LIKE 'purged:%'
"""
_DROP_TEMP = ("doomed_tickets", "kept_conversations", "doomed_messages", "doomed_codes")


def _purge_helpdesk(conn: sqlite3.Connection, params: dict) -> dict[str, int]:
    present = tables(conn)
    counts: dict[str, int] = {}

    def run(key: str, sql: str) -> None:
        counts[key] = counts.get(key, 0) + conn.execute(sql, params).rowcount

    if "tickets" in present:
        conn.execute(_OLD_TICKETS, {**STATE_PARAMS, **params})
        conn.execute(_KEPT_CONVERSATIONS)
        if "ticket_events" in present:
            run("ticket_events", _DELETE_TICKET_EVENTS)
        run("tickets", _DELETE_TICKETS)
    else:
        conn.execute(_NO_TICKETS)
    conn.execute(_OLD_MESSAGES, params)
    conn.execute(_UNLINK_REPLIES)
    run("feedback", _DELETE_FEEDBACK)
    run("unanswered", _DELETE_UNANSWERED_OF)
    run("messages", _DELETE_MESSAGES)
    run("unanswered", _DELETE_UNANSWERED)
    run("conversations", _DELETE_EMPTY_CONVERSATIONS)
    if "channel_inbox" in present:
        run("channel_updates", _DELETE_INBOX)
    if "outbox" in present:
        run("outbox", _DELETE_OUTBOX)
    conn.execute(_DOOMED_CODES, params)
    run("link_codes_deleted", _DELETE_CODES)
    run("link_codes_anonymised", _ANONYMISE_CODES)
    for name in _DROP_TEMP:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
    return counts


_DELETE_ACCESS_LOG = "DELETE FROM access_log WHERE julianday(at) < julianday(:access_log_cutoff)"


def _in_transaction(conn: sqlite3.Connection, apply: bool, work) -> dict[str, int]:
    """Run `work(conn)` in one write transaction; commit it only when `apply`."""
    with transaction(conn, commit=apply):
        conn.execute("PRAGMA defer_foreign_keys = ON")
        return work(conn)


def purge(helpdesk_db: Path, audit_db: Path, ages: Ages, now: datetime, *, apply: bool = False) -> dict[str, int]:
    """Delete (or, without `apply`, count) everything older than its age; return counts by kind."""
    params = {
        "conversation_cutoff": cutoff(now, ages.conversation_days),
        "ticket_cutoff": cutoff(now, ages.ticket_days),
        "unanswered_cutoff": cutoff(now, ages.unanswered_days),
        "access_log_cutoff": cutoff(now, ages.access_log_days),
        "link_code_cutoff": cutoff(now, ages.link_code_days),
    }
    counts = {"conversations": 0, "messages": 0, "feedback": 0, "unanswered": 0, "tickets": 0,
              "ticket_events": 0, "channel_updates": 0, "outbox": 0, "link_codes_deleted": 0,
              "link_codes_anonymised": 0, "access_log": 0}
    if Path(helpdesk_db).exists():
        conn = connect(helpdesk_db)
        try:
            counts.update(_in_transaction(conn, apply, lambda c: _purge_helpdesk(c, params)))
        finally:
            conn.close()
    if Path(audit_db).exists():
        conn = connect(audit_db)
        try:
            counts.update(_in_transaction(
                conn, apply, lambda c: {"access_log": c.execute(_DELETE_ACCESS_LOG, params).rowcount}))
        finally:
            conn.close()
    return counts
