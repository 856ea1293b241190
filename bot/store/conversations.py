"""The store's half for conversation states, messaging chats and desk agents' messages.

A mixin of `bot.store.database.Store` (it uses the store's connection and transaction), kept in its own module
so each stays readable in one sitting. Every state move, the core's and the desk's, is `move_state`
here: checked against bot/conversation/state.py and made as a compare-and-set inside one write transaction (the
conversation must still be in the state the move starts from), so of two agents taking the same
conversation exactly one succeeds.
"""
from __future__ import annotations

from bot.errors import ConversationNotFound
from bot.model import Conversation, Message, NewConversation
from bot.conversation.state import StateChanged, check


class ConversationStates:
    STATE_SQL = "SELECT state FROM conversations WHERE id = :id"
    MOVE_SQL = "UPDATE conversations SET state = :wanted WHERE id = :id AND state = :current"

    def state(self, conversation_id: str, conn=None) -> str:
        row = (conn or self.conn).execute(self.STATE_SQL, {"id": conversation_id}).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return row[0]

    def move_state(self, conn, conversation_id: str, wanted: str, expected: str | None = None) -> str:
        """The one way a conversation changes state, inside the caller's write transaction; returns the
        state it left.

        `expected` is the state the caller saw (None: whatever it is now): StateChanged when the
        conversation has left it. A move to the state it is already in changes nothing (the desk's
        handoff asks for `waiting_desk` without knowing whether a closed ticket left it there); any
        other move must be declared in bot/conversation/state.py, else TransitionNotAllowed. The UPDATE is a
        compare-and-set on the state just read, so of two racing moves exactly one wins.
        """
        current = self.state(conversation_id, conn)
        if expected is not None and current != expected:
            raise StateChanged(conversation_id, expected, current)
        if current == wanted:
            return current
        check(conversation_id, current, wanted)
        if conn.execute(self.MOVE_SQL, {"id": conversation_id, "wanted": wanted, "current": current}).rowcount != 1:
            raise StateChanged(conversation_id, current, self.state(conversation_id, conn))
        return current

    def move(self, conversation_id: str, wanted: str, expected: str | None = None) -> Conversation:
        """Move the conversation to `wanted` in a transaction of its own (`move_state`); return it as it
        now is."""
        with self.transaction() as conn:
            self.move_state(conn, conversation_id, wanted, expected)
        return self.conversation(conversation_id)

    # -- messaging chats ---------------------------------------------------------------------------

    BY_CHAT_SQL = "SELECT id FROM conversations WHERE channel = :channel AND external_chat_id = :chat"

    DETACH_SQL = """
        UPDATE conversations SET external_chat_id = NULL WHERE channel = :channel AND external_chat_id = :chat
    """

    def detach_chat(self, channel: str, external_chat_id: str) -> bool:
        """Let the chat's next message open a new conversation; the old one keeps its messages and
        owner (by which bot/privacy/person.py still finds it)."""
        with self.transaction() as conn:
            return conn.execute(self.DETACH_SQL, {"channel": channel, "chat": external_chat_id}).rowcount > 0

    def conversation_for_chat(self, channel: str, external_chat_id: str) -> Conversation | None:
        row = self.conn.execute(self.BY_CHAT_SQL, {"channel": channel, "chat": external_chat_id}).fetchone()
        return self.conversation(row["id"]) if row else None

    def open_for_chat(self, channel: str, external_chat_id: str, asker_role: str, created_at: str,
                      owner: str | None) -> Conversation:
        """The chat's conversation, opened if it has none; two processes racing open it once (the
        unique index on channel and chat id, checked again inside the write lock)."""
        found = self.conversation_for_chat(channel, external_chat_id)
        if found is not None:
            return found
        with self.transaction() as conn:
            row = conn.execute(self.BY_CHAT_SQL, {"channel": channel, "chat": external_chat_id}).fetchone()
            if row is None:
                new: NewConversation = self.create_conversation(channel, asker_role, created_at, owner,
                                                                external_chat_id, conn=conn)
                return new.conversation
        return self.conversation(row["id"])

    # -- desk agents -------------------------------------------------------------------------------

    def add_agent_message(self, conversation_id: str, text: str, author: str, created_at: str,
                          redacted: str | None = None) -> Message:
        """Store what a desk agent wrote (role `agent`, `author` their display name)."""
        with self.transaction() as conn:
            self.conversation(conversation_id)
            mid = conn.execute(self.INSERT_MESSAGE_SQL, {
                "conversation_id": conversation_id, "role": "agent", "text": text, "reply": None,
                "in_reply_to": None, "idempotency_key": None, "created_at": created_at, "redacted": redacted,
                "author": author, "button": None,
            }).lastrowid
        return Message(mid, conversation_id, "agent", text, created_at, author=author)
