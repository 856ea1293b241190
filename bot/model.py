"""Values that cross the boundary between the core and its channels.

They are plain frozen dataclasses so that the web adapter, the Telegram adapter and the tests all see
the same thing, and so that a reply can be stored as JSON and read back unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.conversation.actions import Action, action_from_dict
from bot.conversation.buttons import Button
from bot.conversation.choices import Choice, choice_from_dict, legacy

ROLES = ("anonymous", "staff", "member", "desk")

LEVELS = ("county", "prefecture")
# Every kind of reply the core (and the desk's part of it, bot/desk/handoff.py and bot/desk/actions.py) gives.
REPLY_KINDS = (
    "answer", "choices", "unknown", "out_of_scope", "next_step", "greeting", "thanks", "help", "handoff",
    "lookup", "lookup_choices", "lookup_prompt", "sign_in_required", "link_code",
    "handoff_offer", "handoff_cancelled", "ticket", "desk_ack", "desk_closed",
)
# Replies stored before `Reply.personal` existed are personal by their kind (record replies and what
# leads to them); new replies carry the mark the core set.
LEGACY_PERSONAL_KINDS = frozenset({"lookup", "lookup_choices", "lookup_prompt", "link_code", "sign_in_required"})


@dataclass(frozen=True)
class Asker:
    """Who is asking. Only the role matters for knowledge-base answers; record lookups use the rest.

    Staff carry their association (`association_level` county|prefecture and its code); a member
    carries the member number their messaging account is linked to; `desk` is an agent of the
    operations desk. `account` names who asks across sessions (a staff login id, "telegram:<user id>"
    for a messaging user, linked or not): conversations belong to the account that opened them, and
    the access log names it. Adapters build an Asker from their own proof of identity (the session
    cookie, the messaging user id), never from what the client claims.
    """

    role: str = "anonymous"
    display_name: str | None = None
    association_code: str | None = None
    member_number: str | None = None
    association_level: str | None = None
    account: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")
        if self.association_level is not None and self.association_level not in LEVELS:
            raise ValueError(f"unknown association level {self.association_level!r}; expected one of {LEVELS}")


@dataclass(frozen=True)
class Source:
    """The article an answer comes from. Its address is the channel's business (the web serves
    `/kb/<slug>`, Telegram links PUBLIC_URL plus that path); `updated` is None for undated articles."""

    slug: str
    title: str
    updated: str | None = None

    @classmethod
    def of(cls, slug: str, title: str, updated: str | None) -> "Source":
        return cls(slug=slug, title=title, updated=updated or None)

    def to_dict(self) -> dict:
        return {"slug": self.slug, "title": self.title, "updated": self.updated}

    @classmethod
    def from_dict(cls, d: dict) -> "Source":
        return cls(d["slug"], d["title"], d.get("updated"))  # older replies also stored a `url`


@dataclass(frozen=True)
class Table:
    """A small table in a reply (a record's fields, a history): a few rows, never a dump.

    Channels that can draw tables do (the widget, with textContent); the others show `lines()`.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def lines(self) -> list[str]:
        """Plain-text rows: 「・項目: 内容」 for two columns, 「・a / b / c」 under a header otherwise."""
        if len(self.columns) == 2:
            body = [f"・{k}: {v}" for k, v in self.rows]
        else:
            body = ["（" + " / ".join(self.columns) + "）"] + ["・" + " / ".join(row) for row in self.rows]
        return ([self.caption] if self.caption else []) + body

    def to_dict(self) -> dict:
        return {"caption": self.caption, "columns": list(self.columns), "rows": [list(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict) -> "Table":
        return cls(tuple(d["columns"]), tuple(tuple(r) for r in d["rows"]), d.get("caption", ""))


@dataclass(frozen=True)
class Reply:
    """What the core says back: the channel decides how to draw it, never what it says.

    `topic` is the slug the reply was about, `choices` the typed values behind its `choice:<n>`
    buttons (in order), and `pending` the lookup topic a prompt is waiting for. They are the core's
    memory, stored with the reply so that the next message can be read against them (「それはいつですか」,
    a pressed choice, the number a prompt asked for); adapters ignore them.

    `actions` are typed (bot/conversation/actions.py): offers, the desk's telephone, hints the channel words itself.
    `table` is an optional small table shown after `text`; `full_text` is both as plain lines.
    `redacted` is the text as it may leave the asker's own view (identifiers and names masked), for
    the desk and the logs; None means masking the identifiers in `full_text` is enough. `conceal`
    lists secrets (a one-time link code) shown to the asker once and never stored; it is not part
    of the stored form.

    `personal` says the reply carries or asks for someone's records (a lookup, its prompt, a link
    code, the request to sign in for one): the core sets it where it composes a record reply, and a
    channel that others read (a group chat) shows such a reply to nobody but the asker.
    """

    text: str
    kind: str  # one of REPLY_KINDS
    sources: tuple[Source, ...] = ()
    buttons: tuple[Button, ...] = ()
    actions: tuple[Action, ...] = ()
    confidence: float | None = None
    topic: str | None = None
    choices: tuple[Choice, ...] = ()
    table: Table | None = None
    redacted: str | None = None
    pending: str | None = None
    personal: bool = False
    conceal: tuple[str, ...] = field(default=(), compare=False)

    @property
    def full_text(self) -> str:
        """The text with the table as plain lines, for channels and transcripts without tables."""
        if self.table is None:
            return self.text
        return self.text + "\n" + "\n".join(self.table.lines())

    def stored(self) -> "Reply":
        """This reply as it may be written down: every concealed secret replaced by stars."""
        if not self.conceal:
            return self

        def hide(text: str) -> str:
            for secret in self.conceal:
                text = text.replace(secret, "＊" * len(secret))
            return text

        table = self.table and Table(self.table.columns, tuple(tuple(hide(c) for c in row) for row in self.table.rows),
                                     hide(self.table.caption))
        return replace(self, text=hide(self.text), table=table, conceal=(),
                       buttons=tuple(replace(b, label=hide(b.label), echo=b.echo and hide(b.echo))
                                     for b in self.buttons),
                       redacted=hide(self.redacted) if self.redacted else None)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "kind": self.kind,
            "sources": [s.to_dict() for s in self.sources],
            "buttons": [b.to_dict() for b in self.buttons],
            "actions": [a.to_dict() for a in self.actions],
            "confidence": self.confidence,
            "topic": self.topic,
            "choices": [c.to_dict() for c in self.choices],
            "pending": self.pending,
            "table": self.table.to_dict() if self.table else None,
            "redacted": self.redacted,
            "personal": self.personal,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Reply":
        """Read a stored reply, of this form or of the older one (string choices, {label, payload})."""
        stored = list(d.get("choices", ()))
        if stored and isinstance(stored[0], str):
            choices, pending = legacy(d["kind"], stored)
        else:
            choices, pending = tuple(choice_from_dict(c) for c in stored), d.get("pending")
        return cls(
            text=d["text"],
            kind=d["kind"],
            sources=tuple(Source.from_dict(s) for s in d.get("sources", ())),
            buttons=tuple(Button.from_dict(b, i) for i, b in enumerate(d.get("buttons", ()))),
            actions=tuple(action_from_dict(a) for a in d.get("actions", ())),
            confidence=d.get("confidence"),
            topic=d.get("topic"),
            choices=choices,
            table=Table.from_dict(d["table"]) if d.get("table") else None,
            redacted=d.get("redacted"),
            pending=pending,
            personal=d.get("personal", d["kind"] in LEGACY_PERSONAL_KINDS),
        )


@dataclass(frozen=True)
class Message:
    """One stored message of a conversation: the user's, the bot's (with the reply it was), or a desk
    agent's (`author` is the agent's display name). `button` is the id of the button a user pressed."""

    id: int
    conversation_id: str
    role: str  # user | bot | agent
    text: str
    created_at: str
    idempotency_key: str | None = None
    in_reply_to: int | None = None
    reply: Reply | None = None
    feedback: bool | None = None
    author: str | None = None
    button: str | None = None


@dataclass(frozen=True)
class Conversation:
    """`owner` is the account that opened it (None: anonymous); only that account may use it.

    `state` is one of bot/conversation/state.py's STATES; `external_chat_id` is the messaging chat it belongs to
    (None for web conversations, which are found by their token).
    """

    id: str
    channel: str
    created_at: str
    owner: str | None = None
    state: str = "bot"
    external_chat_id: str | None = None


@dataclass(frozen=True)
class Turn:
    """The result of one call to `Core.reply`: the stored question, and the answer if the bot gave one.

    `answer` is None while the desk holds the conversation (the bot stays silent; an agent answers).
    `replayed` is true when the same idempotency key had already been handled, so the adapter can
    say 200 instead of 201 and nothing was stored twice. `opened_ticket` is true when this turn made a
    new ticket for the desk (not when it named the ticket already open), for the adapters' metrics.
    """

    question: Message
    answer: Message | None
    replayed: bool = False
    opened_ticket: bool = False

    @property
    def reply(self) -> Reply | None:
        return self.answer.reply if self.answer is not None else None


@dataclass(frozen=True)
class DeskHold:
    """Whether the operations desk holds a conversation now (the bot is silent and an agent answers),
    and the number of its open ticket. Channels are told it (the widget listens for the agent's
    replies while `held`), read from the conversation's state, never guessed from the replies."""

    held: bool
    ticket: int | None = None

    def to_dict(self) -> dict:
        return {"held": self.held, "ticket": self.ticket}


@dataclass(frozen=True)
class NewConversation:
    """A freshly opened conversation and its secret token, which is shown exactly once."""

    conversation: Conversation
    token: str = field(repr=False)
