"""The store's half for what users make of the answers: 役に立った/役に立たなかった, the next step
offered after an unhelpful answer, and the log of questions the knowledge base could not answer.

A mixin of `bot.store.database.Store` (it uses the store's connection and transaction).
"""
from __future__ import annotations

from bot.errors import ConversationNotFound, MessageNotFound, NotAReply
from bot.model import Message, Reply

#: Only answers are rated: a prompt, a refusal or "not found" has nothing to be helpful about.
RATED_KINDS = ("answer",)


class Feedback:
    # -- feedback and the unanswered log ----------------------------------------------------------------

    UPSERT_FEEDBACK_SQL = """
        INSERT INTO feedback (message_id, helpful, created_at) VALUES (:message_id, :helpful, :created_at)
        ON CONFLICT (message_id) DO UPDATE SET helpful = excluded.helpful, created_at = excluded.created_at
    """

    def set_feedback(self, message_id: int, helpful: bool, created_at: str, token: str | None = None) -> Message:
        """Record 役に立った/役に立たなかった; the last click counts, so a user can change their mind."""
        message = self.message(message_id)
        try:
            self.conversation(message.conversation_id, token)
        except ConversationNotFound:
            raise MessageNotFound(message_id) from None
        if message.role != "bot" or (message.reply is not None and message.reply.kind not in RATED_KINDS):
            raise NotAReply(message_id)
        with self.transaction() as conn:
            conn.execute(self.UPSERT_FEEDBACK_SQL,
                         {"message_id": message_id, "helpful": int(helpful), "created_at": created_at})
        return self.message(message_id)

    UNANSWERED_SQL = """
        SELECT id, conversation_id, message_id, text, confidence, channel, asker_role, created_at
        FROM unanswered ORDER BY id DESC LIMIT :limit
    """

    def unanswered(self, limit: int = 100) -> list[dict]:
        """Newest first: what people asked that the knowledge base could not answer."""
        return [dict(r) for r in self.conn.execute(self.UNANSWERED_SQL, {"limit": limit})]

    FOLLOW_UP_SQL = "SELECT id FROM messages WHERE in_reply_to = :id AND role = 'bot' ORDER BY id LIMIT 1"

    def follow_up_of(self, message_id: int) -> Message | None:
        """The bot message already stored in reply to bot message `message_id` (its next step), if any."""
        row = self.conn.execute(self.FOLLOW_UP_SQL, {"id": message_id}).fetchone()
        return self.message(row["id"]) if row else None

    def add_bot_message(self, conversation_id: str, reply: Reply, created_at: str, in_reply_to: int,
                        redacted: str | None = None) -> Message:
        """Store a bot message that answers no question of its own (the next step after feedback);
        once per `in_reply_to`, even when two requests race."""
        kept = reply.stored()
        with self.transaction() as conn:
            done = self.follow_up_of(in_reply_to)
            if done is not None:
                return done
            mid = self.insert_bot_message(conn, conversation_id, kept, created_at, in_reply_to, redacted)
        return Message(mid, conversation_id, "bot", reply.full_text, created_at, in_reply_to=in_reply_to, reply=reply)
