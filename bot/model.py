"""Values that cross the boundary between the core and its channels.

They are plain frozen dataclasses so that the web adapter, the Telegram adapter and the tests all see
the same thing, and so that a reply can be stored as JSON and read back unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("anonymous", "staff", "member", "desk")
CHANNELS = ("web", "telegram", "console", "test")

# Button payloads are sent back as the text of the next message, so a channel only has to echo them,
# and they read naturally when shown as the user's message: a 「もしかして」 choice sends the article's
# title (the core maps it back to the article), the desk button sends 「担当者と話したい」.
ARTICLE_PAYLOAD = "kb:"  # "kb:<slug>" also answers that article directly (deep links, Telegram)
HANDOFF_PAYLOAD = "担当者と話したい"

DESK_NAME = "MAMIS運営事務局"
DESK_PHONE = "0120-110-030"


@dataclass(frozen=True)
class Asker:
    """Who is asking. Only the role matters for knowledge-base answers; lookups (issue 5) use the rest."""

    role: str = "anonymous"
    display_name: str | None = None
    association_code: str | None = None
    member_number: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")


@dataclass(frozen=True)
class Source:
    slug: str
    title: str
    url: str
    updated: str

    @classmethod
    def of(cls, slug: str, title: str, updated: str) -> "Source":
        return cls(slug=slug, title=title, url=f"/kb/{slug}", updated=updated)


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """What the core says back: the channel decides how to draw it, never what it says.

    `topic` is the slug the reply was about, and `choices` the slugs behind a 「もしかして」 reply's
    buttons (in the same order). Both are the core's memory, stored with the reply so that the next
    message can be read against them (「それはいつですか」, or a pressed choice); adapters ignore them.
    """

    text: str
    kind: str  # answer | choices | unknown | greeting | thanks | help | handoff
    sources: tuple[Source, ...] = ()
    buttons: tuple[Button, ...] = ()
    actions: tuple[dict, ...] = ()
    confidence: float | None = None
    topic: str | None = None
    choices: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "kind": self.kind,
            "sources": [s.__dict__.copy() for s in self.sources],
            "buttons": [b.__dict__.copy() for b in self.buttons],
            "actions": [dict(a) for a in self.actions],
            "confidence": self.confidence,
            "topic": self.topic,
            "choices": list(self.choices),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Reply":
        return cls(
            text=d["text"],
            kind=d["kind"],
            sources=tuple(Source(**s) for s in d.get("sources", ())),
            buttons=tuple(Button(**b) for b in d.get("buttons", ())),
            actions=tuple(dict(a) for a in d.get("actions", ())),
            confidence=d.get("confidence"),
            topic=d.get("topic"),
            choices=tuple(d.get("choices", ())),
        )


@dataclass(frozen=True)
class Message:
    """One stored message of a conversation; bot messages carry the reply they were."""

    id: int
    conversation_id: str
    role: str  # user | bot
    text: str
    created_at: str
    idempotency_key: str | None = None
    in_reply_to: int | None = None
    reply: Reply | None = None
    feedback: bool | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    channel: str
    created_at: str


@dataclass(frozen=True)
class Turn:
    """The result of one call to `Core.reply`: both stored messages and the reply value.

    `replayed` is true when the same idempotency key had already been answered, so the adapter can
    say 200 instead of 201 and nothing was stored twice.
    """

    question: Message
    answer: Message
    replayed: bool = False

    @property
    def reply(self) -> Reply:
        return self.answer.reply


@dataclass(frozen=True)
class NewConversation:
    """A freshly opened conversation and its secret token, which is shown exactly once."""

    conversation: Conversation
    token: str = field(repr=False)
