"""Turn a knowledge-base passage (Markdown) into the plain text of a chat reply.

Replies are plain text because every channel inserts them as text (the widget via textContent,
Telegram without parse mode): Markdown syntax would show as stray symbols, and HTML would be a hole.
"""
from __future__ import annotations

import re
from datetime import date

_HEADING = re.compile(r"^#{1,6}\s+.*$", re.M)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(.+?)\1")
_BULLET = re.compile(r"^\s*[-*+]\s+", re.M)
_BLANKS = re.compile(r"\n{3,}")
_HTML_TAG = re.compile(r"<[^>\n]+>")


def plain(markdown: str) -> str:
    """Markdown → readable plain text: no headings, link text only, bullets as 「・」."""
    t = _HEADING.sub("", markdown)
    t = _LINK.sub(r"\1", t)
    t = _EMPHASIS.sub(r"\2", t)
    t = _HTML_TAG.sub("", t)
    t = _BULLET.sub("・", t)
    t = "\n".join(line.rstrip() for line in t.splitlines())
    return _BLANKS.sub("\n\n", t).strip()


def trim(text: str, limit: int = 400) -> tuple[str, bool]:
    """Cut at the last sentence or line end before `limit`; return (text, was_cut).

    A chat bubble should hold one readable section, not a whole article: the source link has the rest.
    """
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    cut = max(head.rfind("。"), head.rfind("\n"))
    if cut < limit // 3:  # no sensible boundary: cut hard rather than keep a stub
        return head.rstrip() + "…", True
    return head[: cut + 1].rstrip(), True


EVENT_LABELS = {"past": "開催済み", "today": "本日開催", "upcoming": "開催予定"}


def event_state(event_date: str | None, today: date) -> str | None:
    """'past', 'today' or 'upcoming' for an event date ('YYYY-MM-DD'), None when there is no event."""
    if not event_date:
        return None
    day = date.fromisoformat(event_date)
    return "past" if day < today else "today" if day == today else "upcoming"


def japanese_date(iso: str | date) -> str:
    """'2026-01-15' → '2026年1月15日' (no zero padding, as Japanese prose writes it)."""
    d = iso if isinstance(iso, date) else date.fromisoformat(iso)
    return f"{d.year}年{d.month}月{d.day}日"


def utf16_len(text: str) -> int:
    """Telegram counts a message's length in UTF-16 code units: an emoji or 「𠮷」 counts two."""
    return len(text.encode("utf-16-le")) // 2
