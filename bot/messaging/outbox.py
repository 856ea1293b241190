"""What a messaging channel received and what it still has to send, kept in the help desk database.

A messaging adapter (the Telegram bot) must answer every update exactly once even if its process is
killed in the middle: the Bot API confirms updates by offset before they are processed, and a send can
fail. So each update is written to the inbox when it arrives; its answers are written to the outbox
together with the inbox row's `done` mark, in one transaction; then they are sent and marked sent. On a
restart the unfinished updates are processed again (the core replays a stored answer under the same
idempotency key) and unsent outbox rows are sent. Other processes (a member-data sync, the indexer)
write notifications to the same outbox, and the bot process drains it.

Rows are claimed by the sending process's run id, so the drain never sends a row that a handler of the
same run is sending; a row claimed by an earlier run (a killed process) is free again. One bot process
per channel is assumed (the Bot API allows one poller per token anyway).

The chats table keeps what the channel knows of a chat beyond conversations: whether it asked for
notifications (/notify, off by default) and whether the user blocked the bot (then nothing more is sent
to it until it writes again). `meta` caches small facts (the bot's username for deep links) so that the
web process never has to call the channel's API.

A row's payload says its format: `"format": "plain"` is text as the core wrote it (a desk agent's
reply), which the channel's adapter draws in its own markup when it sends it; a payload without a
format is already in the channel's markup (what the adapter rendered itself, and desk rows queued by
versions before the mark, which were escaped for Telegram then and must not be escaped twice).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

PLAIN = "plain"  # a payload's `format`: text for the channel to draw (see the module doc)

BACKLOG_SQL = """
    SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL AND failed IS NULL
"""


def backlog(conn) -> tuple[int, str | None]:
    """How many messages of every channel still wait to be sent (neither sent nor given up on), and when
    the oldest of them was queued (None: nothing waits). A function of a connection, not of `Outbox`,
    because /readyz (handlers/web/health.py) reads the file read-only without opening a store."""
    count, oldest = conn.execute(BACKLOG_SQL).fetchone()
    return count, oldest


@dataclass(frozen=True)
class OutboxRow:
    id: int
    chat_id: str
    key: str
    kind: str
    payload: dict
    attempts: int


@dataclass(frozen=True)
class Subscriber:
    chat_id: str
    user_id: str | None
    member_number: str | None  # None: not linked to a member


class Outbox:
    """The inbox, outbox, chats and meta of one channel, in the database of `store` (a bot.store.database.Store)."""

    def __init__(self, store, channel: str):
        self.store, self.channel = store, channel

    # -- inbox --------------------------------------------------------------------------------------

    RECEIVE_SQL = """
        INSERT INTO channel_inbox (channel, update_id, chat_id, payload, received_at)
        VALUES (:channel, :update_id, :chat_id, :payload, :now) ON CONFLICT DO NOTHING
    """
    DONE_SQL = """
        UPDATE channel_inbox SET done_at = :now
        WHERE channel = :channel AND update_id = :update_id AND done_at IS NULL
    """
    IS_DONE_SQL = "SELECT done_at FROM channel_inbox WHERE channel = :channel AND update_id = :update_id"
    UNFINISHED_SQL = """
        SELECT payload FROM channel_inbox WHERE channel = :channel AND done_at IS NULL ORDER BY update_id
    """

    def receive(self, update_id: int, chat_id, payload: dict, now: str) -> None:
        """Keep an update before the channel is told it arrived (a second delivery changes nothing)."""
        with self.store.transaction() as conn:
            conn.execute(self.RECEIVE_SQL, {"channel": self.channel, "update_id": update_id,
                                            "chat_id": None if chat_id is None else str(chat_id),
                                            "payload": json.dumps(payload, ensure_ascii=False), "now": now})

    def is_done(self, update_id: int) -> bool:
        row = self.store.conn.execute(self.IS_DONE_SQL, {"channel": self.channel, "update_id": update_id}).fetchone()
        return row is not None and row["done_at"] is not None

    def unfinished(self) -> list[dict]:
        """Updates received but not answered (the process stopped in between), oldest first."""
        return [json.loads(r["payload"]) for r in self.store.conn.execute(self.UNFINISHED_SQL,
                                                                          {"channel": self.channel})]

    # -- outbox -------------------------------------------------------------------------------------

    ENQUEUE_SQL = """
        INSERT INTO outbox (channel, chat_id, key, kind, payload, created_at, claimed_by)
        VALUES (:channel, :chat_id, :key, :kind, :payload, :now, :claimed_by) ON CONFLICT DO NOTHING
    """
    ROWS_SQL = """
        SELECT id, chat_id, key, kind, payload, attempts FROM outbox
        WHERE channel = :channel AND key IN (SELECT value FROM json_each(:keys)) ORDER BY id
    """

    def answer(self, update_id: int | None, chat_id, messages: Iterable[dict], now: str,
               claimed_by: str | None) -> list[OutboxRow]:
        """Store the messages answering an update and mark it done, atomically; return the rows
        still to send (a replayed update returns its earlier rows that were not sent)."""
        keys = []
        with self.store.transaction() as conn:
            for n, payload in enumerate(messages):
                key = f"u{update_id}:{n}" if update_id is not None else f"x{now}:{chat_id}:{n}"
                keys.append(key)
                conn.execute(self.ENQUEUE_SQL, {"channel": self.channel, "chat_id": str(chat_id), "key": key,
                                                "kind": "reply", "payload": json.dumps(payload, ensure_ascii=False),
                                                "now": now, "claimed_by": claimed_by})
            if update_id is not None:
                conn.execute(self.DONE_SQL, {"channel": self.channel, "update_id": update_id, "now": now})
            rows = conn.execute(self.ROWS_SQL, {"channel": self.channel, "keys": json.dumps(keys)}).fetchall()
        return [self._row(r) for r in rows]

    def done(self, update_id: int, now: str) -> None:
        """Mark an update handled that needs no answer."""
        with self.store.transaction() as conn:
            conn.execute(self.DONE_SQL, {"channel": self.channel, "update_id": update_id, "now": now})

    UNANSWERED_SQL = """
        UPDATE channel_inbox SET done_at = :now,
            payload = CASE WHEN json_extract(payload, '$.set_aside') IS NOT NULL THEN payload  -- already bare
                      ELSE json_object('update_id', update_id, 'unanswered', 1) END
        WHERE channel = :channel AND update_id = :update_id AND done_at IS NULL
    """

    def unanswered(self, update_id: int, now: str) -> None:
        """Mark an update handled that got no answer, and keep nothing of it but its id: a group message
        not meant for the bot carries others' words and names, which the help desk has no reason to hold."""
        with self.store.transaction() as conn:
            conn.execute(self.UNANSWERED_SQL, {"channel": self.channel, "update_id": update_id, "now": now})

    def notify(self, chat_id, key: str, payload: dict, now: str) -> bool:
        """Queue a notification once per key; True if it is new."""
        with self.store.transaction() as conn:
            return conn.execute(self.ENQUEUE_SQL, {
                "channel": self.channel, "chat_id": str(chat_id), "key": key, "kind": "notification",
                "payload": json.dumps(payload, ensure_ascii=False), "now": now, "claimed_by": None,
            }).rowcount > 0

    DUE_SQL = """
        SELECT o.id, o.chat_id, o.key, o.kind, o.payload, o.attempts FROM outbox o
        LEFT JOIN channel_chats c ON c.channel = o.channel AND c.chat_id = o.chat_id
        WHERE o.channel = :channel AND o.sent_at IS NULL AND o.failed IS NULL
          AND (o.claimed_by IS NULL OR o.claimed_by != :run) AND o.not_before <= :now
          AND c.unreachable_at IS NULL AND (o.kind = 'reply' OR c.notify = 1)
        ORDER BY o.id LIMIT :limit
    """
    CLAIM_SQL = """
        UPDATE outbox SET claimed_by = :run
        WHERE id = :id AND sent_at IS NULL AND failed IS NULL AND (claimed_by IS NULL OR claimed_by != :run)
    """
    SENT_SQL = """
        UPDATE outbox SET sent_at = :now, attempts = attempts + 1 WHERE id IN (SELECT value FROM json_each(:ids))
    """
    FAILED_SQL = "UPDATE outbox SET failed = :reason, attempts = attempts + 1 WHERE id = :id"
    LATER_SQL = """
        UPDATE outbox SET claimed_by = NULL, not_before = :not_before, attempts = attempts + 1 WHERE id = :id
    """
    DROP_UNWANTED_SQL = """
        UPDATE outbox SET failed = 'unwanted' WHERE channel = :channel AND sent_at IS NULL AND failed IS NULL
          AND chat_id IN (SELECT chat_id FROM channel_chats WHERE channel = :channel
                          AND (unreachable_at IS NOT NULL OR (notify = 0 AND outbox.kind = 'notification')))
    """

    def due(self, run: str, now: float, limit: int = 100) -> list[OutboxRow]:
        """Rows to send now, oldest first: not sent, not claimed by this run, not before their time."""
        rows = self.store.conn.execute(self.DUE_SQL, {"channel": self.channel, "run": run, "now": now,
                                                      "limit": limit})
        return [self._row(r) for r in rows]

    def claim(self, row_id: int, run: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute(self.CLAIM_SQL, {"id": row_id, "run": run}).rowcount > 0

    def sent(self, row_ids: Iterable[int], now: str) -> None:
        """Mark rows sent, in one write (the messages answering one update)."""
        with self.store.transaction() as conn:
            conn.execute(self.SENT_SQL, {"ids": json.dumps(list(row_ids)), "now": now})

    def failed(self, row_id: int, reason: str) -> None:
        """Give up on a row (the channel refused it for good); kept for the record."""
        with self.store.transaction() as conn:
            conn.execute(self.FAILED_SQL, {"id": row_id, "reason": reason})

    PROGRESS_SQL = "UPDATE outbox SET payload = json_set(payload, '$.parts_sent', :parts) WHERE id = :id"

    def progress(self, row_id: int, parts_sent: int) -> None:
        """Note how many parts of a row sent in parts have gone, so a retry sends only the rest."""
        with self.store.transaction() as conn:
            conn.execute(self.PROGRESS_SQL, {"id": row_id, "parts": parts_sent})

    def later(self, row_id: int, not_before: float) -> None:
        """Release a row to be tried again at `not_before` (a monotonic-free epoch time in seconds)."""
        with self.store.transaction() as conn:
            conn.execute(self.LATER_SQL, {"id": row_id, "not_before": not_before})

    def drop_unwanted(self) -> int:
        """Give up rows for chats that blocked the bot, and notifications nobody wants any more."""
        with self.store.transaction() as conn:
            return conn.execute(self.DROP_UNWANTED_SQL, {"channel": self.channel}).rowcount

    @staticmethod
    def _row(r) -> OutboxRow:
        return OutboxRow(r["id"], r["chat_id"], r["key"], r["kind"], json.loads(r["payload"]), r["attempts"])

    # -- chats ----------------------------------------------------------------------------------------

    UPSERT_CHAT_SQL = """
        INSERT INTO channel_chats (channel, chat_id, user_id, notify, updated_at)
        VALUES (:channel, :chat_id, :user_id, :notify, :now)
        ON CONFLICT (channel, chat_id) DO UPDATE SET
            user_id = excluded.user_id, notify = excluded.notify, updated_at = excluded.updated_at
    """
    CHAT_SQL = "SELECT notify, unreachable_at FROM channel_chats WHERE channel = :channel AND chat_id = :chat_id"
    UNREACHABLE_SQL = """
        INSERT INTO channel_chats (channel, chat_id, unreachable_at, updated_at)
        VALUES (:channel, :chat_id, :now, :now)
        ON CONFLICT (channel, chat_id) DO UPDATE SET unreachable_at = :now, updated_at = :now
    """
    REACHABLE_SQL = """
        UPDATE channel_chats SET unreachable_at = NULL, updated_at = :now
        WHERE channel = :channel AND chat_id = :chat_id AND unreachable_at IS NOT NULL
    """
    ALL_UNREACHABLE_SQL = "SELECT chat_id FROM channel_chats WHERE channel = :channel AND unreachable_at IS NOT NULL"
    SUBSCRIBERS_SQL = """
        SELECT c.chat_id, c.user_id, l.member_number FROM channel_chats c
        LEFT JOIN member_links l ON l.channel = c.channel AND l.external_user_id = c.user_id
        WHERE c.channel = :channel AND c.notify = 1 AND c.unreachable_at IS NULL ORDER BY c.chat_id
    """

    def set_notify(self, chat_id, user_id, on: bool, now: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(self.UPSERT_CHAT_SQL, {"channel": self.channel, "chat_id": str(chat_id),
                                                "user_id": str(user_id), "notify": int(on), "now": now})

    def notify_on(self, chat_id) -> bool:
        row = self.store.conn.execute(self.CHAT_SQL, {"channel": self.channel, "chat_id": str(chat_id)}).fetchone()
        return bool(row and row["notify"])

    def unreachable(self, chat_id, now: str) -> None:
        """The user blocked the bot: send nothing more to this chat until it writes again."""
        with self.store.transaction() as conn:
            conn.execute(self.UNREACHABLE_SQL, {"channel": self.channel, "chat_id": str(chat_id), "now": now})

    def reachable(self, chat_id, now: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(self.REACHABLE_SQL, {"channel": self.channel, "chat_id": str(chat_id), "now": now})

    def unreachable_chats(self) -> set[str]:
        return {r["chat_id"] for r in self.store.conn.execute(self.ALL_UNREACHABLE_SQL, {"channel": self.channel})}

    def subscribers(self) -> list[Subscriber]:
        """Chats that asked for notifications and can be reached, with the member each is linked to."""
        rows = self.store.conn.execute(self.SUBSCRIBERS_SQL, {"channel": self.channel})
        return [Subscriber(r["chat_id"], r["user_id"], r["member_number"]) for r in rows]

    # -- meta -----------------------------------------------------------------------------------------

    GET_META_SQL = "SELECT value FROM channel_meta WHERE channel = :channel AND key = :key"
    SET_META_SQL = """
        INSERT INTO channel_meta (channel, key, value) VALUES (:channel, :key, :value)
        ON CONFLICT (channel, key) DO UPDATE SET value = excluded.value
    """

    def meta(self, key: str) -> str | None:
        row = self.store.conn.execute(self.GET_META_SQL, {"channel": self.channel, "key": key}).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(self.SET_META_SQL, {"channel": self.channel, "key": key, "value": value})
