"""What a reply remembers for the next message: the choices behind its buttons, a pending lookup topic.

Stored with the reply as JSON objects with a `type`, so the next message (a pressed button, or the
number a prompt asked for) is read against typed values rather than strings split on `|`. Replies
stored before this form existed kept their memory as a list of strings in `choices`; `legacy` reads
them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union


@dataclass(frozen=True)
class ArticleChoice:
    """A 「もしかして」 article."""

    type: ClassVar[str] = "article"
    slug: str

    def to_dict(self) -> dict:
        return {"type": self.type, "slug": self.slug}


@dataclass(frozen=True)
class MemberChoice:
    """A member offered for a lookup (`topic`: what was asked about them; None: their member record)."""

    type: ClassVar[str] = "member"
    member_number: str
    topic: str | None = None

    def to_dict(self) -> dict:
        return {"type": self.type, "member_number": self.member_number, "topic": self.topic}


@dataclass(frozen=True)
class InstitutionChoice:
    """An institution offered for a lookup; `code` is None for one typed in by hand (no code yet)."""

    type: ClassVar[str] = "institution"
    name: str
    code: str | None = None
    topic: str | None = None

    def to_dict(self) -> dict:
        return {"type": self.type, "name": self.name, "code": self.code, "topic": self.topic}


Choice = Union[ArticleChoice, MemberChoice, InstitutionChoice]
_BY_TYPE = {cls.type: cls for cls in (ArticleChoice, MemberChoice, InstitutionChoice)}


def choice_from_dict(d: dict) -> Choice:
    fields = {k: v for k, v in d.items() if k != "type"}
    return _BY_TYPE[d["type"]](**fields)


def legacy(kind: str, strings: list[str]) -> tuple[tuple[Choice, ...], str | None]:
    """(choices, pending topic) from a reply stored with `choices` as strings.

    「もしかして」 replies kept article slugs; a lookup prompt kept its topic; lookup choices kept
    "topic|member|number" or "topic|institution|code|name" ("-" for no topic).
    """
    if kind == "lookup_prompt":
        return (), (strings[0] if strings else None)
    if kind != "lookup_choices":
        return tuple(ArticleChoice(s) for s in strings), None
    choices: list[Choice] = []
    for s in strings:
        topic, what, key, *name = s.split("|", 3)
        topic = None if topic == "-" else topic
        if what == "member":
            choices.append(MemberChoice(key, topic))
        else:
            choices.append(InstitutionChoice(name[0] if name else "", key or None, topic))
    return tuple(choices), None
