"""What a desk agent does to a ticket: reply, note, assign, prioritise, resolve, reopen, look up records.

Each action is one transaction that changes the ticket, the conversation's state and the audit log
together. Replying claims an unassigned ticket for the agent who replied (two agents replying at once:
both replies are kept, the first claims it), moves the conversation waiting_desk → with_agent and the
ticket to pending (waiting for the user). Resolving hands the conversation back to the bot (→ closed;
the user's next question starts fresh) and tells the user so. A reply to a Telegram chat is also put
in the outbox, which the bot process drains (the web process never calls Telegram).

A reply to a Telegram chat must fit one Telegram message (4096 UTF-16 code units, with the agent's
name line the outbox puts first): the console counts the same way as the agent types, and `reply`
refuses a longer one, so nothing the agent sends is cut or refused by Telegram afterwards. A Telegram
chat with a negative id is a group (Telegram gives a private chat the user's own, positive id): its
ticket says so, since a reply is read by every member of the group. A chat whose account was linked
again to another member is detached from its conversation (bot/conversation/core.py,
new_conversation_for_chat): a reply to that conversation's ticket would reach a different member, so
`reply` refuses it (ChatDetached) and the ticket says why.

A record lookup from the console runs on behalf of the ticket's asker as they are now (their account
is looked up again), through the same access check as the chat, and is logged as the desk's, on
behalf of that asker, in the access log and on the ticket.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from bot.conversation import state
from bot.desk import tickets
from bot.channels import TELEGRAM, WEB
from bot.desk.handoff import Handoff
from bot.model import Asker, Reply
from bot.conversation.text import utf16_len
from bot.desk.tickets import PRIORITIES, Ticket, TicketStateError, TicketStore

REPLY_CHARS = 4000
TELEGRAM_UNITS = 4096  # Telegram's limit for one message, in UTF-16 code units
RESOLVED_TEXT = ("担当者が対応を終了しました。お問い合わせ番号 #{number}。"
                 "新しいご質問は、このまま入力してください（ヘルプデスクがお答えします）。")


class EmptyText(ValueError):
    """Nothing to send (the console's sentences for these are helpdesk/errors.py's)."""


class TextTooLong(ValueError):
    """Longer than `limit` characters."""

    limit = REPLY_CHARS


class ChatDetached(ValueError):
    """The ticket's messaging chat was linked again to another member since: nothing may reach it."""


class TooLongForTelegram(TextTooLong):
    """Longer than one Telegram message: `units` UTF-16 code units of at most `limit`."""

    def __init__(self, units: int, limit: int):
        super().__init__(units, limit)
        self.units, self.limit = units, limit


@dataclass(frozen=True)
class Channel:
    """Where a ticket's replies go, as the console must know it: the reply's limit, counted the way
    that channel counts (`utf16` for Telegram), whether a group reads it, and whether the chat was
    detached from the conversation (`detached`: no reply can be delivered)."""

    name: str
    limit: int
    utf16: bool = False
    group: bool = False
    detached: bool = False

    def check(self, text: str) -> None:
        if self.detached:
            raise ChatDetached(self.name)
        if self.utf16 and utf16_len(text) > self.limit:
            raise TooLongForTelegram(utf16_len(text), self.limit)


def telegram_header(author: str | None) -> str:
    """The line the outbox puts before an agent's reply in Telegram (counted in the reply's limit)."""
    return f"【{author}（MAMIS運営事務局）】\n" if author else ""


def reply_channel(channel: str, external_chat_id: str | None, author: str | None) -> Channel:
    if channel != TELEGRAM:
        return Channel(channel, REPLY_CHARS)
    return Channel(channel, TELEGRAM_UNITS - utf16_len(telegram_header(author)), utf16=True,
                   group=(external_chat_id or "").startswith("-"), detached=not external_chat_id)


@dataclass(frozen=True)
class Agent:
    """Who acts in the console: the agent's login id (audit log) and display name (shown to users)."""

    login_id: str
    display_name: str


def clean_text(text) -> str:
    """The text as it is sent: stripped, with a form's CR LF line ends as LF (which the counter counts)."""
    text = (text or "").replace("\r\n", "\n").strip() if isinstance(text, str) else ""
    if not text:
        raise EmptyText()
    if len(text) > REPLY_CHARS:
        raise TextTooLong()
    return text


class Desk:
    """The console's actions on tickets; `outbox` (optional) queues replies to messaging channels."""

    def __init__(self, store, tickets: TicketStore, handoff: Handoff, *, outbox=None,
                 asker_of: Callable[[object], Asker] | None = None, lookups=None):
        self.store, self.tickets, self.handoff = store, tickets, handoff
        self.outbox = outbox
        self.asker_of = asker_of
        self.lookups = lookups

    def now(self) -> str:
        return self.handoff.now()

    def channel(self, ticket: Ticket, agent: Agent, conn=None) -> Channel:
        """Where this agent's reply to `ticket` goes, with its limit (bot/desk/actions.py's module doc)."""
        row = (conn or self.store.conn).execute(DeskOutbox.CHAT_SQL, {"id": ticket.conversation_id}).fetchone()
        return reply_channel(ticket.channel, row["external_chat_id"] if row else None, agent.display_name)

    def reply(self, number: int, agent: Agent, text: str) -> int:
        """Send `text` to the ticket's asker; returns the message id. Claims the ticket if unassigned."""
        text = clean_text(text)
        at = self.now()
        with self.store.transaction() as conn:
            ticket = self.tickets.get(number, conn)
            if not ticket.active:
                raise TicketStateError(ticket.state, "reply")
            self.channel(ticket, agent, conn).check(text)
            current = self.store.state(ticket.conversation_id, conn)
            if current == state.WAITING_DESK:
                self.store.move_state(conn, ticket.conversation_id, state.WITH_AGENT)
            mid = self.handoff.add_message(conn, ticket.conversation_id, "agent", text, at, author=agent.display_name)
            self.tickets.add_event(conn, number, agent.login_id, "reply", at,
                                   {"text": text, "agent_name": agent.display_name}, message_id=mid)
            self.tickets.claim(conn, number, agent.login_id, at)
            self.tickets.responded(conn, number, at)
            self.tickets.set_state(conn, self.tickets.get(number, conn), tickets.PENDING, agent.login_id, at)
            if self.outbox is not None and ticket.channel != WEB:
                self.outbox.enqueue_reply(conn, ticket.conversation_id, mid, text, agent.display_name, at)
        return mid

    def note(self, number: int, agent: Agent, text: str) -> None:
        """An internal note: on the ticket only, never shown to the user."""
        text = clean_text(text)
        at = self.now()
        with self.store.transaction() as conn:
            self.tickets.get(number, conn)
            self.tickets.add_event(conn, number, agent.login_id, "note", at, {"text": text})
            conn.execute(self.tickets.TOUCH_SQL, {"at": at, "number": number})

    def assign(self, number: int, agent: Agent, assignee: str | None) -> None:
        at = self.now()
        with self.store.transaction() as conn:
            ticket = self.tickets.get(number, conn)
            self.tickets.assign(conn, ticket, assignee or None, agent.login_id, at)
            if assignee and ticket.state == tickets.NEW:
                self.tickets.set_state(conn, ticket, tickets.OPEN, agent.login_id, at)

    def set_priority(self, number: int, agent: Agent, priority: str) -> None:
        if priority not in PRIORITIES:
            raise TicketStateError("priority", priority)
        with self.store.transaction() as conn:
            self.tickets.set_priority(conn, self.tickets.get(number, conn), priority, agent.login_id, self.now())

    def resolve(self, number: int, agent: Agent) -> None:
        """Resolve the ticket and hand the conversation back to the bot, telling the user."""
        self._end(number, agent, tickets.RESOLVED)

    def close(self, number: int, agent: Agent) -> None:
        """Close the ticket for good; a conversation the desk still held goes back to the bot as on
        resolve (otherwise the user's later messages would wait for a desk that no longer answers)."""
        self._end(number, agent, tickets.CLOSED)

    def _end(self, number: int, agent: Agent, ticket_state: str) -> None:
        at = self.now()
        with self.store.transaction() as conn:
            ticket = self.tickets.get(number, conn)
            self.tickets.set_state(conn, ticket, ticket_state, agent.login_id, at)
            if self.store.state(ticket.conversation_id, conn) in state.DESK_HOLDS:
                self.store.move_state(conn, ticket.conversation_id, state.CLOSED)
                reply = Reply(RESOLVED_TEXT.format(number=number), "desk_closed")
                mid = self.handoff.add_message(conn, ticket.conversation_id, "bot", reply.text, at, reply=reply)
                if self.outbox is not None and ticket.channel != WEB:
                    self.outbox.enqueue_reply(conn, ticket.conversation_id, mid, reply.text, None, at)

    def reopen(self, number: int, agent: Agent) -> None:
        """Reopen a resolved ticket: the desk holds the conversation again (unless another ticket does)."""
        at = self.now()
        with self.store.transaction() as conn:
            ticket = self.tickets.get(number, conn)
            if self.tickets.active_for(ticket.conversation_id, conn) is not None:
                raise TicketStateError(ticket.state, tickets.OPEN)
            self.tickets.set_state(conn, ticket, tickets.OPEN, agent.login_id, at)
            current = self.store.state(ticket.conversation_id, conn)
            if current == state.CLOSED:
                current = self.store.move_state(conn, ticket.conversation_id, state.BOT) and state.BOT
            if current == state.BOT:
                self.store.move_state(conn, ticket.conversation_id, state.WAITING_DESK)

    def lookup(self, ticket: Ticket, agent: Agent, text: str) -> Reply:
        """Look a record up as the ticket's asker could, logged as the desk's on their behalf."""
        from records import access
        from records.errors import DatabaseMissing, RecordsError, message_ja

        from bot.lookups.replies import NO_DATA_TEXT
        from bot.lookups.answer import records_asker

        text = clean_text(text)
        conversation = self.store.conversation(ticket.conversation_id)
        asker = self.asker_of(conversation) if self.asker_of else Asker()
        request = self.lookups.wants(text, asker) if self.lookups is not None else None
        outcome = "not_a_lookup"
        if request is None or request.topic == "link_code" or not request.subject:
            reply = Reply("照会する会員番号・申請番号・医療機関コード・お名前を入力してください（例：会員番号1234567の入会手続き）。",
                          "lookup_prompt")
        else:
            who = access.Asker.desk(on_behalf_of=records_asker(asker), label=agent.login_id)
            try:
                reply = self.lookups._answer(request, who, asker)
                outcome = "answered"
            except DatabaseMissing:
                reply, outcome = Reply(NO_DATA_TEXT, "lookup"), "records_missing"
            except RecordsError as e:
                reply, outcome = Reply(message_ja(e), "lookup"), "refused"
        with self.store.transaction() as conn:
            self.tickets.add_event(conn, ticket.number, agent.login_id, "lookup", self.now(), {
                "query": self.handoff.redact(text), "on_behalf_of": records_asker(asker).log_ref(),
                "outcome": outcome,
            })
        return reply


class DeskOutbox:
    """Desk messages to messaging chats, queued in the channel outbox (bot/messaging/outbox.py) that the channel's
    own process drains, and what became of them (sent, refused, the chat unreachable)."""

    CHAT_SQL = "SELECT channel, external_chat_id FROM conversations WHERE id = :id"
    STATUS_SQL = """
        SELECT o.key, o.sent_at, o.failed, c.unreachable_at FROM outbox o
        LEFT JOIN channel_chats c ON c.channel = o.channel AND c.chat_id = o.chat_id
        WHERE o.key IN (SELECT value FROM json_each(:keys))
    """

    def __init__(self, store):
        self.store = store

    @staticmethod
    def key(message_id: int) -> str:
        return f"desk:{message_id}"

    def enqueue_reply(self, conn, conversation_id: str, message_id: int, text: str, author: str | None,
                      at: str) -> bool:
        """Queue one desk message inside the caller's transaction (once per message id)."""
        from bot.messaging.outbox import PLAIN, Outbox

        row = conn.execute(self.CHAT_SQL, {"id": conversation_id}).fetchone()
        if row is None or not row["external_chat_id"]:
            return False
        # Plain text: the channel's adapter draws it in its own markup (what an agent typed is never markup).
        payload = {"format": PLAIN, "text": telegram_header(author) + text, "desk_message_id": message_id}
        return conn.execute(Outbox.ENQUEUE_SQL, {
            "channel": row["channel"], "chat_id": row["external_chat_id"], "key": self.key(message_id),
            "kind": "reply", "payload": json.dumps(payload, ensure_ascii=False), "now": at, "claimed_by": None,
        }).rowcount > 0

    def status(self, message_ids) -> dict[int, str]:
        """message id → sent | failed | unreachable | queued, for the desk messages that were queued."""
        keys = [self.key(m) for m in message_ids]
        out = {}
        for r in self.store.conn.execute(self.STATUS_SQL, {"keys": json.dumps(keys)}):
            mid = int(r["key"].split(":", 1)[1])
            blocked = r["failed"] in ("forbidden", "unwanted") or (r["unreachable_at"] and not r["failed"])
            out[mid] = ("sent" if r["sent_at"] else "unreachable" if blocked else "failed" if r["failed"] else "queued")
        return out
