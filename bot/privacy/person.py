"""One person's data, on request: export it all, or delete it all (`helpdesk person export|delete`).

Japan's personal-information law (APPI) lets a person ask what is held about them and have it deleted
once it is no longer needed. A person is named by their member number or their Telegram user id; from
either we find the rest: the member links between them, the Telegram chats of the user, the
conversations of those chats with their messages, feedback and unanswered entries, the tickets of those
conversations with their events, the updates and outbox items of those chats, and the link codes issued
for the member number.

Deleting is one transaction. The access log then records *that* a person's data was exported or
deleted, naming the person by masked identifier only, and nothing of what was deleted. The member data
itself (records.sqlite) is a copy of MAMIS and is not changed here: the next sync would bring it back;
it is corrected or deleted in MAMIS by the member's association.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from storage.sqlite import connect, transaction

from bot.channels import TELEGRAM
from bot.privacy.retention import tables


@dataclass
class Found:
    """Every key that leads to the person's rows."""
    member_numbers: set[str] = field(default_factory=set)
    telegram_users: set[str] = field(default_factory=set)
    chats: set[str] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)
    tickets: set[int] = field(default_factory=set)


def _marks(prefix: str, values) -> tuple[str, dict]:
    """`(:p0, :p1, …)` and its parameters: the set is ours, the values are bound, never spliced."""
    values = sorted(values)
    names = [f"{prefix}{i}" for i in range(len(values))]
    return "(" + ", ".join(f":{n}" for n in names) + ")", dict(zip(names, values))


def _select(conn, sql: str, prefix: str, values) -> list[sqlite3.Row]:
    """Rows of `sql` for the values (`{marks}`); `:channel` is the Telegram channel's name."""
    if not values:
        return []
    marks, params = _marks(prefix, values)
    return conn.execute(sql.format(marks=marks), params | {"channel": TELEGRAM}).fetchall()


def find(conn: sqlite3.Connection, *, member_number: str | None = None, telegram_user: str | None = None) -> Found:
    present = tables(conn)
    found = Found()
    if member_number:
        found.member_numbers.add(member_number)
        found.telegram_users |= {r[0] for r in _select(
            conn, "SELECT external_user_id FROM member_links WHERE channel = :channel AND member_number IN {marks}",
            "m", found.member_numbers)}
    if telegram_user:
        found.telegram_users.add(str(telegram_user))
        found.member_numbers |= {r[0] for r in _select(
            conn, "SELECT member_number FROM member_links WHERE channel = :channel AND external_user_id IN {marks}",
            "u", found.telegram_users)}
    # A private chat's id is the user's id; chats the bot recorded for the user count as well.
    found.chats = set(found.telegram_users)
    if "channel_chats" in present:
        found.chats |= {r[0] for r in _select(
            conn, "SELECT chat_id FROM channel_chats WHERE channel = :channel AND user_id IN {marks}",
            "u", found.telegram_users)}
    columns = {r[1] for r in conn.execute("PRAGMA table_info(conversations)")}
    if "external_chat_id" in columns:
        found.conversations = {r[0] for r in _select(
            conn, "SELECT id FROM conversations WHERE channel = :channel AND external_chat_id IN {marks}",
            "c", found.chats)}
    # Earlier conversations of the user's private chat (set aside when the linked member changed) are
    # no longer the chat's, but still the user's own.
    if "owner" in columns:
        found.conversations |= {r[0] for r in _select(
            conn, "SELECT id FROM conversations WHERE channel = :channel AND owner IN {marks}",
            "o", {f"{TELEGRAM}:{u}" for u in found.telegram_users})}
    if "tickets" in present:
        found.tickets = {r[0] for r in _select(
            conn, "SELECT number FROM tickets WHERE conversation_id IN {marks}", "v", found.conversations)}
    return found


def _rows(conn, sql: str, prefix: str, values) -> list[dict]:
    return [dict(r) for r in _select(conn, sql, prefix, values)]


def export(helpdesk_db: Path, *, member_number: str | None = None, telegram_user: str | None = None) -> dict:
    """Everything the help desk holds about the person, as one JSON-ready dict."""
    conn = connect(helpdesk_db, readonly=True, row_factory=sqlite3.Row)
    try:
        present = tables(conn)
        f = find(conn, member_number=member_number, telegram_user=telegram_user)
        data = {
            "person": {"member_numbers": sorted(f.member_numbers), "telegram_users": sorted(f.telegram_users)},
            "member_links": _rows(conn, "SELECT channel, external_user_id, member_number, linked_at "
                                        "FROM member_links WHERE member_number IN {marks}", "m", f.member_numbers),
            "link_codes": _rows(conn, "SELECT member_number, issued_at, expires_at, used_at, used_channel "
                                      "FROM link_codes WHERE member_number IN {marks}", "m", f.member_numbers),
            "conversations": [],
            "tickets": [],
            "notes": ["会員データ（会員情報・入会届・送付区分）は MAMIS の写しで、ここでは変更しません。"
                      "訂正・削除は所属の医師会事務局へご依頼ください。"],
        }
        if "channel_chats" in present:
            data["chats"] = _rows(conn, "SELECT channel, chat_id, user_id, notify, unreachable_at, updated_at "
                                        "FROM channel_chats WHERE chat_id IN {marks}", "c", f.chats)
        for conversation in _rows(conn, "SELECT id, channel, created_at FROM conversations WHERE id IN {marks} "
                                        "ORDER BY created_at", "v", f.conversations):
            conversation["messages"] = [dict(r) for r in conn.execute(
                "SELECT m.role, m.text, m.created_at, f.helpful FROM messages m "
                "LEFT JOIN feedback f ON f.message_id = m.id WHERE m.conversation_id = :id ORDER BY m.id",
                {"id": conversation["id"]})]
            data["conversations"].append(conversation)
        if f.tickets:
            data["tickets"] = _rows(conn, "SELECT number, state, channel, subject, note, transcript, created_at, "
                                          "resolved_at, closed_at FROM tickets WHERE number IN {marks}",
                                    "t", f.tickets)
        return data
    finally:
        conn.close()


#: (table, key column, which set of Found) in deletion order: rows that point at others go first.
_DELETIONS = (
    ("ticket_events", "ticket_number", "tickets"),
    ("tickets", "number", "tickets"),
    ("feedback", "message_id IN (SELECT id FROM messages WHERE conversation_id IN {marks})", "conversations"),
    ("unanswered", "conversation_id", "conversations"),
    ("messages", "conversation_id", "conversations"),
    ("conversations", "id", "conversations"),
    ("member_links", "member_number", "member_numbers"),
    ("member_links", "external_user_id", "telegram_users"),
    ("link_codes", "member_number", "member_numbers"),
    ("channel_inbox", "chat_id", "chats"),
    ("outbox", "chat_id", "chats"),
    ("channel_chats", "chat_id", "chats"),
)


def _delete_sql(table: str, key: str) -> str:
    condition = key if "{marks}" in key else f"{key} IN {{marks}}"
    return f"DELETE FROM {table} WHERE {condition}"


def delete(helpdesk_db: Path, *, member_number: str | None = None, telegram_user: str | None = None,
           apply: bool = True) -> dict[str, int]:
    """Delete every row of the person in one transaction; return counts by table (rolled back unless
    `apply`, so a dry run counts exactly what would go)."""
    conn = connect(helpdesk_db, row_factory=sqlite3.Row)
    try:
        with transaction(conn, commit=apply):
            conn.execute("PRAGMA defer_foreign_keys = ON")
            present = tables(conn)
            found = find(conn, member_number=member_number, telegram_user=telegram_user)
            counts: dict[str, int] = {}
            for table, key, which in _DELETIONS:
                values = getattr(found, which)
                if table not in present or not values:
                    continue
                marks, params = _marks("k", values)
                deleted = conn.execute(_delete_sql(table, key).format(marks=marks), params).rowcount
                counts[table] = counts.get(table, 0) + deleted
        return counts
    finally:
        conn.close()


def to_json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
