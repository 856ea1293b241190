"""Typed failures of the core. Each edge (web, Telegram) turns them into short Japanese."""


class HelpdeskError(Exception):
    """Base class so that an adapter can catch everything the core means to raise."""


class IndexMissing(HelpdeskError):
    """The knowledge-base index has not been built yet; `helpdesk index` builds it."""

    def __init__(self, path):
        self.path = path
        super().__init__(f"no knowledge-base index at {path}")


class EmptyMessage(HelpdeskError):
    def __init__(self):
        super().__init__("message is empty")


class MessageTooLong(HelpdeskError):
    def __init__(self, length: int, limit: int):
        self.length, self.limit = length, limit
        super().__init__(f"message has {length} characters, limit is {limit}")


class ConversationNotFound(HelpdeskError):
    """Unknown id or wrong token: the two are deliberately indistinguishable to the caller."""

    def __init__(self, conversation_id: str):
        self.conversation_id = conversation_id
        super().__init__(f"conversation {conversation_id!r} not found")


class MessageNotFound(HelpdeskError):
    def __init__(self, message_id):
        self.message_id = message_id
        super().__init__(f"message {message_id!r} not found")


class NotAReply(HelpdeskError):
    """Feedback was sent for the user's own message; only the bot's replies can be rated."""

    def __init__(self, message_id: int):
        self.message_id = message_id
        super().__init__(f"message {message_id} is not a bot reply")


class IdempotencyConflict(HelpdeskError):
    """The key was already used for a different text; replaying the old answer would be wrong."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"idempotency key {key!r} was used for another message")


class NotAnAgent(HelpdeskError):
    """Only a desk agent (Asker role `desk`) writes as the desk."""

    def __init__(self, role: str):
        self.role = role
        super().__init__(f"role {role!r} cannot write as the desk")
