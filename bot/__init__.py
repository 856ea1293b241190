"""The conversation core, shared by every channel (web chat, Telegram, the desk console).

It imports neither Flask nor telegram: an adapter turns its request into `Core.reply(...)` and the
returned `Turn`/`Reply` back into its own format.
"""
from bot.conversation.core import Core, JST, system_clock
from bot.errors import (
    ConversationNotFound, EmptyMessage, HelpdeskError, IdempotencyConflict, IndexMissing, MessageNotFound,
    MessageTooLong, NotAReply,
)
from bot.conversation.buttons import ARTICLE_PAYLOAD, HANDOFF_PAYLOAD, Button
from bot.model import Asker, Conversation, Message, NewConversation, Reply, Source, Turn
from bot.store.database import Store

__all__ = [
    "Core", "JST", "system_clock", "Store",
    "Asker", "Button", "Conversation", "Message", "NewConversation", "Reply", "Source", "Turn",
    "ARTICLE_PAYLOAD", "HANDOFF_PAYLOAD",
    "HelpdeskError", "ConversationNotFound", "EmptyMessage", "IdempotencyConflict", "IndexMissing", "MessageNotFound",
    "MessageTooLong", "NotAReply",
]
