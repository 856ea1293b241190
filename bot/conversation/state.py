"""The states of a conversation and the moves between them, declared in one place.

A conversation starts with the bot (`bot`). Asking for a person puts it in the desk's queue
(`waiting_desk`); an agent takes it (`with_agent`) and may hand it back to the queue (another agent,
a shift change); either the queue or the agent closes it (`closed`). A new question in a closed
conversation starts afresh with the bot. While the desk holds a conversation (`waiting_desk`,
`with_agent`) the bot stays silent: the user's messages are stored for the agent and answered by them.

Every move goes through one function, the store's `move_state` (bot/store/conversations.py), whether the
core or the desk makes it: a move not listed here raises `TransitionNotAllowed` (a move to the state
the conversation is already in changes nothing), and a move made from a state the conversation has
already left (two agents taking it at once) raises `StateChanged`, so exactly one of two racing moves
wins.
"""
from __future__ import annotations

from bot.errors import HelpdeskError

BOT = "bot"
WAITING_DESK = "waiting_desk"
WITH_AGENT = "with_agent"
CLOSED = "closed"

STATES = (BOT, WAITING_DESK, WITH_AGENT, CLOSED)

TRANSITIONS: dict[str, frozenset[str]] = {
    BOT: frozenset({WAITING_DESK}),
    WAITING_DESK: frozenset({WITH_AGENT, CLOSED}),
    WITH_AGENT: frozenset({CLOSED, WAITING_DESK}),
    CLOSED: frozenset({BOT}),
}

#: States in which the bot does not answer: a person holds the conversation.
DESK_HOLDS = frozenset({WAITING_DESK, WITH_AGENT})


class TransitionNotAllowed(HelpdeskError):
    """A move that TRANSITIONS does not list (closing a conversation the bot still holds, …)."""

    def __init__(self, conversation_id: str, current: str, wanted: str):
        self.conversation_id, self.current, self.wanted = conversation_id, current, wanted
        super().__init__(f"conversation {conversation_id!r}: {current} → {wanted} is not allowed")


class StateChanged(HelpdeskError):
    """The conversation was no longer in the state the move started from (someone else moved it)."""

    def __init__(self, conversation_id: str, expected: str, current: str):
        self.conversation_id, self.expected, self.current = conversation_id, expected, current
        super().__init__(f"conversation {conversation_id!r} is {current}, not {expected}")


def allowed(current: str, wanted: str) -> bool:
    return wanted in TRANSITIONS.get(current, frozenset())


def check(conversation_id: str, current: str, wanted: str) -> None:
    """Raise TransitionNotAllowed unless `current` → `wanted` is declared above."""
    if wanted not in STATES or not allowed(current, wanted):
        raise TransitionNotAllowed(conversation_id, current, wanted)
