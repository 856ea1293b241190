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


LEVELS = ("county", "prefecture")


@dataclass(frozen=True)
class Asker:
    """Who is asking. Only the role matters for knowledge-base answers; record lookups use the rest.

    Staff carry their association (`association_level` county|prefecture and its code); a member
    carries the member number their messaging account is linked to. `account` names the signed-in
    account (a staff login id, or "telegram:<id>" for a linked chat): conversations belong to the
    account that opened them, and the access log names it. Adapters build an Asker from their own
    proof of identity (the session cookie, a linked chat id), never from what the client claims.
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

    `topic` is the slug the reply was about, and `choices` the slugs behind a 「もしかして」 reply's
    buttons (in the same order). Both are the core's memory, stored with the reply so that the next
    message can be read against them (「それはいつですか」, or a pressed choice); adapters ignore them.
    Record lookups keep their memory in `choices` too (a pending topic, or the records behind the
    buttons), since it is stored exactly like the article choices.

    `table` is an optional small table shown after `text`; `full_text` is both as plain lines.
    `redacted` is the text as it may leave the asker's own view (identifiers and names masked), for
    the desk and the logs; None means masking the identifiers in `full_text` is enough. `conceal`
    lists secrets (a one-time link code) shown to the asker once and never stored; it is not part
    of the stored form.
    """

    text: str
    kind: str  # answer | choices | unknown | greeting | thanks | help | handoff | lookup | lookup_choices | lookup_prompt | sign_in_required | link_code
    sources: tuple[Source, ...] = ()
    buttons: tuple[Button, ...] = ()
    actions: tuple[dict, ...] = ()
    confidence: float | None = None
    topic: str | None = None
    choices: tuple[str, ...] = ()
    table: Table | None = None
    redacted: str | None = None
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
        return Reply(hide(self.text), self.kind, self.sources,
                     tuple(Button(hide(b.label), hide(b.payload)) for b in self.buttons), self.actions,
                     self.confidence, self.topic, self.choices, table,
                     hide(self.redacted) if self.redacted else None)

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
            "table": self.table.to_dict() if self.table else None,
            "redacted": self.redacted,
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
            table=Table.from_dict(d["table"]) if d.get("table") else None,
            redacted=d.get("redacted"),
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
    """`owner` is the account that opened it (None: anonymous); only that account may use it."""

    id: str
    channel: str
    created_at: str
    owner: str | None = None


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
