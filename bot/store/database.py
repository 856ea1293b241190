"""The help desk's own SQLite database: conversations, messages, feedback, unanswered questions, staff
accounts and member links (their queries live beside the code that runs them: bot/accounts/staff.py,
bot/accounts/linking.py).

One file, opened in WAL mode so that readers never wait for the writer. Each thread gets its own
connection (sqlite3 connections must not be shared across threads, nor carried over a fork), and the
schema is brought up to date by the numbered migrations of bot/store/migrations.py, each applied in one
transaction together with the row that records it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from storage.sqlite import (ThreadConnections, applied_migrations, apply_migrations, begin, connect, transaction,
                            while_locked)

from bot.store.conversations import ConversationStates
from bot.errors import ConversationNotFound, IdempotencyConflict, MessageNotFound
from bot.store.feedback import Feedback
from bot.store.migrations import MIGRATIONS
from bot.model import Conversation, Message, NewConversation, Reply
from bot.conversation.state import BOT, StateChanged


def hash_token(token: str) -> str:
    """SHA-256 is enough for random secrets (conversation tokens, link codes): see bot/accounts/linking.py."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store(ConversationStates, Feedback):
    """Reads and writes the help desk database at `path`; safe to share between threads.

    Conversation states, chat identities and agent messages are in bot/store/conversations.py; feedback,
    the next step after an unhelpful answer and the unanswered log in bot/store/feedback.py.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._connections = ThreadConnections(self._open)
        self._write_lock = threading.Lock()
        self.migrate()

    # -- connections -------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so a transaction is exactly what we wrote.
        # WAL, synchronous NORMAL, foreign keys and the busy timeout: the same for every database.
        return connect(self.path, row_factory=sqlite3.Row)

    @property
    def conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        """Close every connection this store opened, in any thread (call before forking or at exit)."""
        self._connections.close()

    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None):
        """BEGIN IMMEDIATE takes the write lock up front, so a check-then-insert cannot race.

        Threads of one process queue on a lock; other processes (gunicorn workers) are waited for by
        `_begin`, never by SQLite's own busy handler.
        """
        conn = conn or self.conn
        with self._write_lock, transaction(conn, start=self._begin):
            yield conn

    @staticmethod
    def _begin(conn: sqlite3.Connection, wait: float = 10.0) -> None:
        """BEGIN IMMEDIATE, retrying every fraction of a millisecond while another process writes
        (storage.sqlite.while_locked): SQLite's busy handler sleeps 1, 2, 5, 10 … 100 ms between tries,
        so under load a writer would wait up to ~200 ms for a lock that is held for well under one."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            while_locked(lambda: begin(conn), wait)
        finally:
            conn.execute("PRAGMA busy_timeout = 10000")

    # -- migrations --------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; return their names.

        Uses its own short-lived connection so that no connection is left open in a process that is
        about to fork its workers.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open()
        try:
            return apply_migrations(conn, MIGRATIONS)
        finally:
            conn.close()

    def applied_migrations(self) -> list[str]:
        return applied_migrations(self.conn)

    # -- conversations -----------------------------------------------------------------------------

    INSERT_CONVERSATION_SQL = """
        INSERT INTO conversations (id, token_hash, channel, asker_role, created_at, owner, external_chat_id)
        VALUES (:id, :token_hash, :channel, :asker_role, :created_at, :owner, :external_chat_id)
    """

    def create_conversation(self, channel: str, asker_role: str, created_at: str,
                            owner: str | None = None, external_chat_id: str | None = None,
                            conn: sqlite3.Connection | None = None) -> NewConversation:
        """Open a conversation; the id is public, the token is the holder's proof and is never stored.

        `conn` is given by a caller already inside a transaction (bot/store/conversations.py).
        """
        cid, token = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        params = {"id": cid, "token_hash": hash_token(token), "channel": channel, "asker_role": asker_role,
                  "created_at": created_at, "owner": owner, "external_chat_id": external_chat_id}
        if conn is not None:
            conn.execute(self.INSERT_CONVERSATION_SQL, params)
        else:
            with self.transaction() as conn:
                conn.execute(self.INSERT_CONVERSATION_SQL, params)
        return NewConversation(Conversation(cid, channel, created_at, owner, BOT, external_chat_id), token)

    CONVERSATION_SQL = """
        SELECT id, token_hash, channel, created_at, owner, state, external_chat_id FROM conversations WHERE id = :id
    """

    @staticmethod
    def _conversation(row) -> Conversation:
        return Conversation(row["id"], row["channel"], row["created_at"], row["owner"], row["state"],
                            row["external_chat_id"])

    def conversation(self, conversation_id: str, token: str | None = None) -> Conversation:
        """Return the conversation, checking `token` unless it is None (trusted internal callers).

        A wrong token raises the same error as an unknown id, so a caller learns nothing.
        """
        row = self.conn.execute(self.CONVERSATION_SQL, {"id": conversation_id}).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        if token is not None and not hmac.compare_digest(row["token_hash"], hash_token(token)):
            raise ConversationNotFound(conversation_id)
        return self._conversation(row)

    # -- messages ----------------------------------------------------------------------------------

    MESSAGE_COLUMNS = """
        m.id, m.conversation_id, m.role, m.text, m.reply, m.in_reply_to, m.idempotency_key,
        m.created_at, f.helpful, m.redacted, m.author, m.button
    """
    MESSAGES_SQL = f"""
        SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN feedback f ON f.message_id = m.id
        WHERE m.conversation_id = :conversation_id ORDER BY m.id
    """
    MESSAGE_SQL = f"""
        SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN feedback f ON f.message_id = m.id
        WHERE m.id = :id
    """
    BY_KEY_SQL = """
        SELECT id FROM messages
        WHERE conversation_id = :conversation_id AND idempotency_key = :key AND role = 'user'
    """
    ANSWER_OF_SQL = "SELECT id FROM messages WHERE in_reply_to = :id AND role = 'bot'"
    INSERT_MESSAGE_SQL = """
        INSERT INTO messages (conversation_id, role, text, reply, in_reply_to, idempotency_key, created_at, redacted,
                              author, button)
        VALUES (:conversation_id, :role, :text, :reply, :in_reply_to, :idempotency_key, :created_at, :redacted,
                :author, :button)
    """
    INSERT_UNANSWERED_SQL = """
        INSERT INTO unanswered (conversation_id, message_id, text, confidence, channel, asker_role, created_at)
        VALUES (:conversation_id, :message_id, :text, :confidence, :channel, :asker_role, :created_at)
    """

    @staticmethod
    def _message(row) -> Message:
        return Message(
            id=row["id"],
            conversation_id=row["conversation_id"],
            role=row["role"],
            text=row["text"],
            created_at=row["created_at"],
            idempotency_key=row["idempotency_key"],
            in_reply_to=row["in_reply_to"],
            reply=Reply.from_dict(json.loads(row["reply"])) if row["reply"] else None,
            feedback=None if row["helpful"] is None else bool(row["helpful"]),
            author=row["author"],
            button=row["button"],
        )

    def messages(self, conversation_id: str) -> list[Message]:
        rows = self.conn.execute(self.MESSAGES_SQL, {"conversation_id": conversation_id})
        return [self._message(r) for r in rows]

    def message(self, message_id: int) -> Message:
        row = self.conn.execute(self.MESSAGE_SQL, {"id": message_id}).fetchone()
        if row is None:
            raise MessageNotFound(message_id)
        return self._message(row)

    def answered(self, conversation_id: str, key: str | None, text: str | None, button: str | None = None):
        """The stored (question, answer) for an idempotency key, or None if the key is new. The answer
        is None when the bot stayed silent (the desk held the conversation).

        Raises IdempotencyConflict when the key was used for a different text (or another button:
        a pressed button is compared by its id, its text being whatever the channel showed).
        """
        if key is None:
            return None
        row = self.conn.execute(self.BY_KEY_SQL, {"conversation_id": conversation_id, "key": key}).fetchone()
        if row is None:
            return None
        question = self.message(row["id"])
        if (question.button != button) or (button is None and question.text != text):
            raise IdempotencyConflict(key)
        answer = self.conn.execute(self.ANSWER_OF_SQL, {"id": question.id}).fetchone()
        return question, (self.message(answer["id"]) if answer else None)

    def save_turn(self, conversation_id: str, text: str, reply: Reply | None, created_at: str, *,
                  idempotency_key: str | None = None, unanswered: dict | None = None,
                  redacted_question: str | None = None, redacted_answer: str | None = None,
                  button: str | None = None, state: str | None = None):
        """Store a question and its answer atomically; return (question, answer, replayed).

        The reply was computed outside the lock, so if another request stored the same idempotency
        key in the meantime, theirs wins and ours is dropped: one stored message, one answer.
        `reply` None stores the question alone (the bot is silent while the desk holds the
        conversation). `state` is the state the reply was decided in: if the conversation has left it
        since (the desk took it), StateChanged is raised and nothing is stored.
        The answer is stored without its concealed secrets (`Reply.stored`), and the unanswered log
        gets the redacted question when one is given, since that log is read beyond the asker.
        """
        kept = reply.stored() if reply is not None else None
        with self.transaction() as conn:
            done = self.answered(conversation_id, idempotency_key, text, button)
            if done:
                return (*done, True)
            if state is not None:
                current = self.conversation(conversation_id).state
                if current != state:
                    raise StateChanged(conversation_id, state, current)
            qid = conn.execute(self.INSERT_MESSAGE_SQL, {
                "conversation_id": conversation_id, "role": "user", "text": text, "reply": None,
                "in_reply_to": None, "idempotency_key": idempotency_key, "created_at": created_at,
                "redacted": redacted_question, "author": None, "button": button,
            }).lastrowid
            question = Message(qid, conversation_id, "user", text, created_at, idempotency_key, button=button)
            if kept is None:
                return question, None, False
            aid = self.insert_bot_message(conn, conversation_id, kept, created_at, qid, redacted_answer)
            if unanswered is not None:
                conn.execute(self.INSERT_UNANSWERED_SQL, {
                    "conversation_id": conversation_id, "message_id": qid,
                    "text": text if redacted_question is None else redacted_question,
                    "created_at": created_at, **unanswered,
                })
        # Built from what was just written rather than read back, to keep the write lock short.
        answer = Message(aid, conversation_id, "bot", reply.full_text, created_at, in_reply_to=qid, reply=reply)
        return question, answer, False

    def insert_bot_message(self, conn, conversation_id: str, kept: Reply, created_at: str, in_reply_to: int,
                           redacted: str | None) -> int:
        """Write a bot message inside the caller's transaction; `kept` is the reply as it may be stored."""
        return conn.execute(self.INSERT_MESSAGE_SQL, {
            "conversation_id": conversation_id, "role": "bot", "text": kept.full_text,
            "reply": json.dumps(kept.to_dict(), ensure_ascii=False), "in_reply_to": in_reply_to,
            "idempotency_key": None, "created_at": created_at, "redacted": redacted, "author": None, "button": None,
        }).lastrowid

    def redacted_messages(self, conversation_id: str) -> list[tuple[Message, str | None]]:
        """Every message with its redacted text (None for messages stored before redaction existed)."""
        rows = self.conn.execute(self.MESSAGES_SQL, {"conversation_id": conversation_id})
        return [(self._message(r), r["redacted"]) for r in rows]

    LAST_BOT_SQL = """
        SELECT reply FROM messages
        WHERE conversation_id = :conversation_id AND role = 'bot' ORDER BY id DESC LIMIT :limit
    """
    LAST_QUESTION_SQL = """
        SELECT q.text FROM messages q JOIN messages a ON a.in_reply_to = q.id
        WHERE q.conversation_id = :conversation_id AND json_extract(a.reply, '$.kind') = 'choices'
        ORDER BY q.id DESC LIMIT 1
    """

    def recent_replies(self, conversation_id: str, limit: int = 3) -> list[Reply]:
        """The last few bot replies, newest first: the core's short-term memory of the conversation."""
        rows = self.conn.execute(self.LAST_BOT_SQL, {"conversation_id": conversation_id, "limit": limit})
        return [Reply.from_dict(json.loads(r["reply"])) for r in rows]

    def last_choice_question(self, conversation_id: str) -> str | None:
        """The question that last led to 「もしかして」, to pick the right passage when a choice is taken."""
        row = self.conn.execute(self.LAST_QUESTION_SQL, {"conversation_id": conversation_id}).fetchone()
        return row["text"] if row else None
