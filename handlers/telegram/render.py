"""Turn the core's Reply into Telegram messages: HTML text and inline keyboards.

Telegram's HTML parse mode understands a few tags; everything that comes from users, articles or
records is escaped, so a `<` in an article can never become markup (or make Telegram refuse the
message). A message holds at most 4,096 characters: longer replies are split at paragraph
boundaries (then line boundaries, then hard), each part escaped on its own so no tag is ever cut in
two. Tables are drawn as lines (Table.lines). Links to articles are absolute, from PUBLIC_URL; without
it the title is shown without a link, since a relative link means nothing in Telegram.

A rendered message is a plain dict (`text`, `buttons` as rows of (label, callback data)), so it can be
stored in the outbox as JSON and sent later exactly as it was decided.
"""
from __future__ import annotations

import html
from typing import Iterable, Sequence

from bot.messaging.outbox import PLAIN
from bot.conversation.text import japanese_date

MAX_CHARS = 4096
# Our own callback data; the core's button ids (kb:, choice:, handoff, help, lookup:) never start so.
FEEDBACK_DATA = "tg:fb:"
NOTIFY_DATA = "tg:notify:"
RELINK_DATA = "tg:relink:"  # + the link code to switch to, or RELINK_NO
RELINK_NO = "-"  # never a code (hyphens are dropped from codes)

# Telegram's own words: how a doctor links, and what the records hints say here.
LINK_HINT = ("ご自身の会員情報・手続きの状況を確認するには、医師会事務局が発行する連携コードで"
             "アカウントを連携してください（/link 連携コード）。")
RECORDS_MISSING = "会員データがまだ読み込まれていません。しばらくしてからもう一度お試しください。"
GROUP_PRIVATE = ("個人の情報はグループではお答えできません。このボットとの個別のチャットでお尋ねください。")


def esc(text: str) -> str:
    return html.escape(text or "", quote=False)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def article_url(public_url: str | None, slug: str) -> str | None:
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/kb/{slug}"


def source_line(source, public_url: str | None) -> str:
    url = article_url(public_url, source.slug)
    title = esc(source.title)
    link = f'<a href="{html.escape(url, quote=True)}">{title}</a>' if url else title
    date = f"（{japanese_date(source.updated)}更新）" if getattr(source, "updated", None) else ""
    return f"出典: {link}{date}"


def action_lines(actions: Iterable) -> tuple[list[str], list[tuple[str, str]]]:
    """Escaped lines and button rows for the reply's typed actions (see bot/conversation/actions.py)."""
    lines, buttons = [], []
    for action in actions:
        kind = getattr(action, "type", None)
        if kind == "offer_escalation":
            button = action.button
            buttons.append((button.label, button.id))
        elif kind == "handoff":
            desk = action.to_dict()
            lines.append(esc(f"電話: {desk.get('phone', '')}" + (f"（{desk['hours']}）" if desk.get("hours") else "")))
        elif kind == "sign_in":
            lines.append(esc(LINK_HINT))
        elif kind == "records_missing":
            lines.append(esc(RECORDS_MISSING))
    return lines, buttons


def render_reply(reply, public_url: str | None, *, message_id: int | None = None) -> list[dict]:
    """The messages for one reply: text (split when long) with the keyboard on the last part.

    Answers get 役に立った／役に立たなかった buttons for the stored bot message `message_id`.
    """
    paragraphs = [esc(p) for p in reply.text.split("\n\n") if p.strip()]
    table = getattr(reply, "table", None)
    if table is not None:
        paragraphs.append(esc("\n".join(table.lines())))
    paragraphs += [source_line(s, public_url) for s in reply.sources]
    lines, action_buttons = action_lines(reply.actions)
    paragraphs += lines
    rows: list[list[tuple[str, str]]] = [[(b.label, b.id)] for b in reply.buttons]
    rows += [[b] for b in action_buttons]
    if reply.kind == "answer" and message_id is not None:
        rows.append([("役に立った", f"{FEEDBACK_DATA}1:{message_id}"),
                     ("役に立たなかった", f"{FEEDBACK_DATA}0:{message_id}")])
    return messages(paragraphs, rows)


def render_text(text: str, rows: Sequence[Sequence[tuple[str, str]]] = ()) -> list[dict]:
    """Plain text of the adapter's own (commands, notices) as messages."""
    return messages([esc(p) for p in text.split("\n\n") if p.strip()], rows)


def messages(paragraphs: list[str], rows: Sequence[Sequence[tuple[str, str]]] = ()) -> list[dict]:
    chunks = split(paragraphs) or [esc("（内容がありません）")]
    out = [{"text": chunk} for chunk in chunks]
    if rows:
        out[-1]["buttons"] = [[list(b) for b in row] for row in rows]
    return out


def outbox_html(payload: dict) -> str:
    """An outbox row's text in Telegram HTML: plain text (a desk agent's reply, bot/messaging/outbox.py's
    `format`) is escaped here; a row without a format was rendered (or escaped) when it was queued."""
    return esc(payload["text"]) if payload.get("format") == PLAIN else payload["text"]


def parts(text: str, limit: int = MAX_CHARS) -> list[str]:
    """An escaped message as Telegram takes it: itself when it fits (the usual case, decided without
    encoding when it is short), else split like a reply. Messages stored by others (a desk agent's
    reply, which passed a check in characters, not UTF-16 units) pass here before they are sent."""
    if len(text) * 2 <= limit or utf16_len(text) <= limit:
        return [text]
    return split(text.split("\n\n"), limit)


def split(paragraphs: list[str], limit: int = MAX_CHARS) -> list[str]:
    """Pack escaped paragraphs into messages of at most `limit` characters, breaking only between them.

    A paragraph too long on its own is broken at line ends, and a line too long at the limit (never
    inside an escape like &amp;).
    """
    pieces: list[str] = []
    for p in paragraphs:
        if utf16_len(p) <= limit:
            pieces.append(p)
            continue
        for line in p.split("\n"):
            pieces.extend(_cut(line, limit) if utf16_len(line) > limit else [line])
    return [c for c in _pack(pieces, limit) if c.strip()]


def _pack(pieces: list[str], limit: int) -> list[str]:
    """Greedily join pieces with a blank line while they fit."""
    chunks, current = [], ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if utf16_len(candidate) <= limit:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    return chunks + ([current] if current else [])


def _cut(text: str, limit: int) -> list[str]:
    out = []
    while text:
        cut = limit
        while utf16_len(text[:cut]) > limit:
            cut -= 1
        amp = text.rfind("&", max(0, cut - 8), cut)
        if amp > 0 and ";" not in text[amp:cut]:
            cut = amp
        out.append(text[:cut])
        text = text[cut:]
    return out
