"""A help desk database as the code before migration 0014_accounts left it: staff in `staff`, desk
agents in `agents`, their sign-ins in `staff_sessions` and `agent_sessions`.

The schema is the migrations up to 0013 (frozen, so they are what every database of that time ran);
the rows are written with the SQL bot/accounts/staff.py and bot/accounts/agents.py used then (commit 51fed11),
copied here literally, so that the migration is tested on what real instances hold rather than on
what today's code would write. tests/test_accounts_migration.py opens a copy with today's code.

The same database, made by that commit's own classes, was checked against this one by hand once
(see the commit message): the same tables, columns and rows.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from argon2 import PasswordHasher

from storage.sqlite import apply_migrations, connect

LAST = "0013_ticket_viewers"
PASSWORD = {"chiyoda": "chiyoda-password-1", "tokyo": "tokyo-password-22", "yamada": "staff-yamada-333",
            "demo-osaka": "demo-osaka-4444", "desk:yamada": "desk-yamada-55555", "desk:sato": "desk-sato-666666",
            "desk:demo-desk": "desk-demo-7777777"}

# Today's SQL (51fed11), literally: bot/accounts/staff.py StaffAccounts and bot/accounts/agents.py AgentAccounts.
STAFF_INSERT_SQL = """
    INSERT INTO staff (login_id, display_name, level, association_code, password_hash, demo, created_at)
    VALUES (:login_id, :display_name, :level, :association_code, :password_hash, :demo, :created_at)
"""
AGENT_INSERT_SQL = """
    INSERT INTO agents (login_id, display_name, password_hash, demo, created_at)
    VALUES (:login_id, :display_name, :password_hash, :demo, :created_at)
"""
STAFF_SIGNED_IN_SQL = "UPDATE staff SET last_sign_in_at = :at, password_hash = :password_hash WHERE id = :id"
STAFF_REMOVE_SQL = "DELETE FROM staff WHERE id = :id"
START_SESSION_SQL = """
    INSERT INTO {sessions} (token_hash, {owner}, created_at, last_seen_at)
    VALUES (:token_hash, :owner_id, :now, :now)
"""
END_SESSION_SQL = "UPDATE {sessions} SET ended_at = :now WHERE token_hash = :token_hash AND ended_at IS NULL"
STAFF_SESSIONS = {"sessions": "staff_sessions", "owner": "staff_id"}
AGENT_SESSIONS = {"sessions": "agent_sessions", "owner": "agent_id"}

#: (login id, display name, level, association code, demo) of the staff, in the order they were added.
STAFF = (
    ("chiyoda", "千代田区医師会 事務局", "county", "13001", 0),
    ("tokyo", "東京都医師会 事務局", "prefecture", "13", 0),
    ("gone", "削除された職員", "county", "13001", 0),  # removed again: its id stays a gap
    ("yamada", "大阪府医師会 事務局 山田", "prefecture", "27", 0),  # an agent has this login id too
    ("demo-osaka", "大阪府医師会 事務局（デモ）", "prefecture", "27", 1),
)
AGENTS = (("yamada", "運営事務局 山田", 0), ("sato", "運営事務局 佐藤", 0), ("demo-desk", "運営事務局 担当（デモ）", 1))


def build(path: Path, staff_now: datetime, desk_now: datetime) -> dict:
    """Write the database at `path`; return what a test needs to check it: the ids, password hashes
    and session tokens per account ("chiyoda", "desk:yamada"), and which tokens were signed out.

    Staff sessions start at `staff_now` (the app's NOW), agent sessions at `desk_now` (the desk
    measures its sessions on the real clock). `tokyo`'s hash is made with weaker parameters than
    today's, as an account from an older release would have: signing in must still rehash it.
    """
    from bot.store.migrations import MIGRATIONS
    from bot.store.database import hash_token

    hasher, weak = PasswordHasher(), PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    conn = connect(path, row_factory=sqlite3.Row)
    made = {"ids": {}, "hashes": {}, "tokens": {}, "ended": []}
    try:
        apply_migrations(conn, [m for m in MIGRATIONS if m[0] <= LAST])
        conn.execute("BEGIN IMMEDIATE")
        for login_id, name, level, code, demo in STAFF:
            h = (weak if login_id == "tokyo" else hasher).hash(PASSWORD.get(login_id, "a-removed-password"))
            row = conn.execute(STAFF_INSERT_SQL, {"login_id": login_id, "display_name": name, "level": level,
                                                  "association_code": code, "password_hash": h, "demo": demo,
                                                  "created_at": "2026-11-20T09:00:00+09:00"})
            made["ids"][login_id], made["hashes"][login_id] = row.lastrowid, h
        conn.execute(STAFF_REMOVE_SQL, {"id": made["ids"].pop("gone")})
        made["hashes"].pop("gone")
        conn.execute(STAFF_SIGNED_IN_SQL, {"at": "2026-11-24T09:30:00+09:00", "id": made["ids"]["chiyoda"],
                                           "password_hash": made["hashes"]["chiyoda"]})
        for login_id, name, demo in AGENTS:
            key = f"desk:{login_id}"
            h = hasher.hash(PASSWORD[key])
            row = conn.execute(AGENT_INSERT_SQL, {"login_id": login_id, "display_name": name, "password_hash": h,
                                                  "demo": demo, "created_at": "2026-11-21T09:00:00+09:00"})
            made["ids"][key], made["hashes"][key] = row.lastrowid, h
        sessions = [("chiyoda", STAFF_SESSIONS, staff_now), ("chiyoda#2", STAFF_SESSIONS, staff_now),
                    ("tokyo", STAFF_SESSIONS, staff_now), ("yamada", STAFF_SESSIONS, staff_now),
                    ("desk:yamada", AGENT_SESSIONS, desk_now), ("desk:sato", AGENT_SESSIONS, desk_now),
                    ("desk:sato#2", AGENT_SESSIONS, desk_now)]
        for key, tables, now in sessions:
            token = f"token-of-{key}-{'x' * 24}"
            at = now.astimezone(timezone.utc).isoformat(timespec="seconds")
            conn.execute(START_SESSION_SQL.format(**tables), {"token_hash": hash_token(token),
                                                              "owner_id": made["ids"][key.split("#")[0]], "now": at})
            made["tokens"][key] = token
        for key, tables in (("chiyoda#2", STAFF_SESSIONS), ("desk:sato#2", AGENT_SESSIONS)):  # signed out
            at = (staff_now + timedelta(minutes=1)).astimezone(timezone.utc).isoformat(timespec="seconds")
            conn.execute(END_SESSION_SQL.format(**tables), {"token_hash": hash_token(made["tokens"][key]), "now": at})
            made["ended"].append(key)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return made


if __name__ == "__main__":  # python -m tests.helpdesk_0013 OUT.sqlite: a copy to look at by hand
    import sys

    print(build(Path(sys.argv[1]), datetime.now(timezone.utc), datetime.now(timezone.utc)))
