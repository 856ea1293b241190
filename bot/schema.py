"""Migrations 0005–0007 of the help desk database: conversation state, message roles, chat identities.

They are listed in `bot.store.MIGRATIONS` in order of their names like every other migration; they
live here only to keep bot/store.py readable in one sitting.
"""
from __future__ import annotations

from .state import STATES

_STATES_SQL = ", ".join(f"'{s}'" for s in STATES)

CONVERSATION_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0005_conversation_state",
        [
            # Declared in bot/state.py; every conversation so far was with the bot.
            f"ALTER TABLE conversations ADD COLUMN state TEXT NOT NULL DEFAULT 'bot' CHECK (state IN ({_STATES_SQL}))",
        ],
    ),
    (
        "0006_agent_messages",
        [
            # A CHECK constraint cannot be altered in SQLite, so `messages` is rebuilt: the rows that
            # refer to it (feedback, unanswered) are set aside, the table is copied into its new form
            # with every row and id, the old one dropped and the new one renamed, and the set-aside rows
            # put back. Foreign keys are deferred to the commit, where they must all hold again.
            "PRAGMA defer_foreign_keys = ON",
            "CREATE TEMP TABLE feedback_kept AS SELECT * FROM feedback",
            "CREATE TEMP TABLE unanswered_kept AS SELECT * FROM unanswered",
            "DELETE FROM feedback",
            "DELETE FROM unanswered",
            """
            CREATE TABLE messages_new (
                id INTEGER PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id),
                role TEXT NOT NULL CHECK (role IN ('user', 'bot', 'agent')),
                text TEXT NOT NULL,
                reply TEXT,
                in_reply_to INTEGER REFERENCES messages_new(id),
                idempotency_key TEXT,
                created_at TEXT NOT NULL,
                redacted TEXT,
                author TEXT,
                button TEXT,
                UNIQUE (conversation_id, idempotency_key)
            )
            """,
            # author: the agent's display name on agent messages; button: the button id a user pressed.
            """
            INSERT INTO messages_new (id, conversation_id, role, text, reply, in_reply_to, idempotency_key,
                                      created_at, redacted)
            SELECT id, conversation_id, role, text, reply, in_reply_to, idempotency_key, created_at, redacted
            FROM messages ORDER BY id
            """,
            "DROP TABLE messages",
            "ALTER TABLE messages_new RENAME TO messages",
            "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
            "INSERT INTO feedback SELECT * FROM feedback_kept",
            "INSERT INTO unanswered SELECT * FROM unanswered_kept",
            "DROP TABLE feedback_kept",
            "DROP TABLE unanswered_kept",
        ],
    ),
    (
        "0007_chat_identities",
        [
            # A messaging chat (a Telegram chat id) has one conversation, found by channel and chat id.
            "ALTER TABLE conversations ADD COLUMN external_chat_id TEXT",
            """
            CREATE UNIQUE INDEX conversations_by_chat ON conversations (channel, external_chat_id)
            WHERE external_chat_id IS NOT NULL
            """,
        ],
    ),
]
