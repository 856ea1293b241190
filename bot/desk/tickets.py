"""Tickets of the operations desk: the ticket's own states and the queries of the console (the tables
are made by migrations 0010–0013, bot/store/migrations.py).

A ticket is made from one conversation (bot/desk/handoff.py does that, in one transaction) and carries a
snapshot of what the desk needs without asking the user again: the redacted transcript, the articles
the bot showed, the questions it found nothing for, and the asker's role, association and channel.
Everything that happens to it afterwards (a reply, an internal note, a state change, an assignment,
a record lookup on the asker's behalf, a message Telegram refused) is one row of `ticket_events`,
which is the audit log the ticket page shows. Rows are only ever added to that table.

Ticket states: new → open → pending (waiting for the user) → resolved → closed. An agent's reply
makes it pending, the user's follow-up makes it open again, resolve/reopen are the agent's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from bot.errors import HelpdeskError

#: The ticket's own states (a conversation's are in bot/conversation/state.py), declared once: the code names them
#: by these constants, SQL by the named parameters of STATE_PARAMS (`:resolved`, …), the pages and
#: the console's script by STATE_JA and the answers of /live. Migration 0010's CHECK lists the same
#: five (tests/test_migrations.py).
NEW, OPEN, PENDING, RESOLVED, CLOSED = "new", "open", "pending", "resolved", "closed"
STATES = (NEW, OPEN, PENDING, RESOLVED, CLOSED)
ACTIVE_STATES = (NEW, OPEN, PENDING)
STATE_JA = {NEW: "新規", OPEN: "対応中", PENDING: "返信待ち", RESOLVED: "解決済み", CLOSED: "終了"}
STATE_PARAMS = {s: s for s in STATES}
TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({OPEN, PENDING, RESOLVED, CLOSED}),
    OPEN: frozenset({PENDING, RESOLVED, CLOSED}),
    PENDING: frozenset({OPEN, RESOLVED, CLOSED}),
    RESOLVED: frozenset({OPEN, CLOSED}),
    CLOSED: frozenset(),
}
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_JA = {"low": "低", "normal": "通常", "high": "高", "urgent": "緊急"}
REASONS = ("button", "command", "words", "not_helpful", "unanswered", "api")
REASON_JA = {"button": "「担当者に問い合わせる」ボタン", "command": "/human コマンド", "words": "文章での依頼",
             "not_helpful": "「役に立たなかった」の後", "unanswered": "2回続けて回答できなかった後",
             "api": "Webチャットの問い合わせボタン"}
FIRST_NUMBER = 1001


class TicketNotFound(HelpdeskError):
    def __init__(self, number):
        self.number = number
        super().__init__(f"ticket {number!r} not found")


class TicketStateError(HelpdeskError):
    """A change the ticket's state does not allow (replying to a closed ticket, reopening twice)."""

    def __init__(self, state: str, wanted: str):
        self.state, self.wanted = state, wanted
        super().__init__(f"ticket is {state}; cannot go to {wanted}")


@dataclass(frozen=True)
class Ticket:
    number: int
    conversation_id: str
    state: str
    priority: str
    assignee: str | None
    channel: str
    asker_role: str
    asker_name: str | None
    association_code: str | None
    association_name: str | None
    reason: str
    note: str | None
    subject: str
    created_at: str
    updated_at: str
    first_response_at: str | None = None
    resolved_at: str | None = None
    closed_at: str | None = None
    unreachable_at: str | None = None
    start_message_id: int | None = None
    transcript: tuple[dict, ...] = field(default=(), repr=False)
    articles: tuple[dict, ...] = ()
    unfound: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def resolved(self) -> bool:
        """Resolved and not closed: the desk may reopen or close it (TRANSITIONS)."""
        return self.state == RESOLVED

    @property
    def state_ja(self) -> str:
        return STATE_JA[self.state]

    def public(self) -> dict:
        """What the asker may be told about their ticket (the API's `ticket` object)."""
        return {"number": self.number, "state": self.state, "created_at": self.created_at}


@dataclass(frozen=True)
class Event:
    id: int
    ticket_number: int
    at: str
    actor: str
    kind: str
    detail: dict
    message_id: int | None


LIST_COLUMNS = """number, conversation_id, state, priority, assignee, channel, asker_role, asker_name,
    association_code, association_name, reason, note, subject, created_at, updated_at, first_response_at,
    resolved_at, closed_at, unreachable_at, start_message_id"""


def ticket_from_row(row, full: bool = False) -> Ticket:
    values = {k: row[k] for k in row.keys() if k not in ("transcript", "articles", "unfound")}
    if full:
        values.update(transcript=tuple(json.loads(row["transcript"])), articles=tuple(json.loads(row["articles"])),
                      unfound=tuple(json.loads(row["unfound"])))
    return Ticket(**values)


class TicketStore:
    """Reads and writes tickets in the help desk database of `store` (a bot.store.database.Store).

    Writing methods take the connection of a transaction the caller holds (`store.transaction()`),
    so that a ticket, its events and the conversation's state always change together.
    """

    def __init__(self, store):
        self.store = store

    # -- writing ---------------------------------------------------------------------------------------

    INSERT_SQL = """
        INSERT INTO tickets (number, conversation_id, channel, asker_role, asker_name, association_code,
            association_name, reason, note, subject, transcript, articles, unfound, start_message_id,
            created_at, updated_at)
        VALUES ((SELECT COALESCE(MAX(number), :first - 1) + 1 FROM tickets), :conversation_id, :channel,
            :asker_role, :asker_name, :association_code, :association_name, :reason, :note, :subject,
            :transcript, :articles, :unfound, :start_message_id, :created_at, :created_at)
    """

    def insert(self, conn, *, transcript, articles, unfound, **values) -> int:
        """Insert a new ticket (inside the caller's transaction) and return its number."""
        cur = conn.execute(self.INSERT_SQL, {
            **values, "first": FIRST_NUMBER, "transcript": json.dumps(list(transcript), ensure_ascii=False),
            "articles": json.dumps(list(articles), ensure_ascii=False),
            "unfound": json.dumps(list(unfound), ensure_ascii=False),
        })
        return cur.lastrowid

    EVENT_SQL = """
        INSERT INTO ticket_events (ticket_number, at, actor, kind, detail, message_id)
        VALUES (:number, :at, :actor, :kind, :detail, :message_id)
    """

    def add_event(self, conn, number: int, actor: str, kind: str, at: str, detail: dict | None = None,
                  message_id: int | None = None) -> int:
        return conn.execute(self.EVENT_SQL, {
            "number": number, "at": at, "actor": actor, "kind": kind, "message_id": message_id,
            "detail": json.dumps(detail or {}, ensure_ascii=False),
        }).lastrowid

    SET_STATE_SQL = """
        UPDATE tickets SET state = :state, updated_at = :at,
            resolved_at = CASE WHEN :state = :resolved THEN :at WHEN :state = :open THEN NULL ELSE resolved_at END,
            closed_at = CASE WHEN :state = :closed THEN :at ELSE closed_at END
        WHERE number = :number
    """

    def set_state(self, conn, ticket: Ticket, state: str, actor: str, at: str) -> None:
        """Move the ticket to `state` if its current state allows it, and log who did it."""
        if state == ticket.state:
            return
        if state not in TRANSITIONS[ticket.state]:
            raise TicketStateError(ticket.state, state)
        conn.execute(self.SET_STATE_SQL, {**STATE_PARAMS, "state": state, "at": at, "number": ticket.number})
        self.add_event(conn, ticket.number, actor, "state", at, {"from": ticket.state, "to": state})

    ASSIGN_SQL = "UPDATE tickets SET assignee = :assignee, updated_at = :at WHERE number = :number"
    CLAIM_SQL = "UPDATE tickets SET assignee = :assignee WHERE number = :number AND assignee IS NULL"
    FIRST_RESPONSE_SQL = """
        UPDATE tickets SET first_response_at = :at, updated_at = :at WHERE number = :number
            AND first_response_at IS NULL
    """
    TOUCH_SQL = "UPDATE tickets SET updated_at = :at WHERE number = :number"
    PRIORITY_SQL = "UPDATE tickets SET priority = :priority, updated_at = :at WHERE number = :number"

    def assign(self, conn, ticket: Ticket, assignee: str | None, actor: str, at: str) -> None:
        if assignee == ticket.assignee:
            return
        conn.execute(self.ASSIGN_SQL, {"assignee": assignee, "at": at, "number": ticket.number})
        self.add_event(conn, ticket.number, actor, "assign", at, {"from": ticket.assignee, "to": assignee})

    def claim(self, conn, number: int, agent: str, at: str) -> bool:
        """Assign to `agent` unless someone already holds it; True when this call claimed it."""
        claimed = conn.execute(self.CLAIM_SQL, {"assignee": agent, "number": number}).rowcount > 0
        if claimed:
            self.add_event(conn, number, agent, "assign", at, {"from": None, "to": agent})
        return claimed

    def responded(self, conn, number: int, at: str) -> None:
        conn.execute(self.FIRST_RESPONSE_SQL, {"at": at, "number": number})
        conn.execute(self.TOUCH_SQL, {"at": at, "number": number})

    def set_priority(self, conn, ticket: Ticket, priority: str, actor: str, at: str) -> None:
        if priority not in PRIORITIES:
            raise ValueError(priority)
        if priority == ticket.priority:
            return
        conn.execute(self.PRIORITY_SQL, {"priority": priority, "at": at, "number": ticket.number})
        self.add_event(conn, ticket.number, actor, "priority", at, {"from": ticket.priority, "to": priority})

    # -- reading ---------------------------------------------------------------------------------------

    BY_NUMBER_SQL = "SELECT * FROM tickets WHERE number = :number"
    ACTIVE_SQL = f"""
        SELECT {LIST_COLUMNS} FROM tickets WHERE conversation_id = :conversation_id
            AND state IN (:new, :open, :pending)
    """
    LATEST_SQL = f"""
        SELECT {LIST_COLUMNS} FROM tickets WHERE conversation_id = :conversation_id ORDER BY number DESC LIMIT 1
    """
    EVENTS_SQL = """
        SELECT id, ticket_number, at, actor, kind, detail, message_id FROM ticket_events
        WHERE ticket_number = :number ORDER BY id
    """
    SAVED_REPLIES_SQL = "SELECT id, title, body FROM saved_replies ORDER BY id"

    def get(self, number: int, conn=None) -> Ticket:
        row = (conn or self.store.conn).execute(self.BY_NUMBER_SQL, {"number": number}).fetchone()
        if row is None:
            raise TicketNotFound(number)
        return ticket_from_row(row, full=True)

    def active_for(self, conversation_id: str, conn=None) -> Ticket | None:
        row = (conn or self.store.conn).execute(self.ACTIVE_SQL, {**STATE_PARAMS, "conversation_id": conversation_id}
                                                ).fetchone()
        return ticket_from_row(row) if row else None

    def latest_for(self, conversation_id: str, conn=None) -> Ticket | None:
        row = (conn or self.store.conn).execute(self.LATEST_SQL, {"conversation_id": conversation_id}).fetchone()
        return ticket_from_row(row) if row else None

    @staticmethod
    def _event(row) -> Event:
        return Event(row["id"], row["ticket_number"], row["at"], row["actor"], row["kind"],
                     json.loads(row["detail"]), row["message_id"])

    def events(self, number: int) -> list[Event]:
        return [self._event(r) for r in self.store.conn.execute(self.EVENTS_SQL, {"number": number})]

    SEEN_SQL = """
        INSERT INTO ticket_viewers (ticket_number, agent, seen_at) VALUES (:number, :agent, :now)
        ON CONFLICT (ticket_number, agent) DO UPDATE SET seen_at = excluded.seen_at
    """
    VIEWERS_SQL = """
        SELECT agent FROM ticket_viewers WHERE ticket_number = :number AND seen_at >= :since AND agent != :agent
        ORDER BY agent
    """

    def seen_by(self, number: int, agent: str, now: float) -> None:
        """`agent` has the ticket's page open at `now` (time.time())."""
        with self.store.transaction() as conn:
            conn.execute(self.SEEN_SQL, {"number": number, "agent": agent, "now": now})

    def viewers(self, number: int, agent: str, since: float) -> list[str]:
        """The other agents whose page of the ticket asked for news since `since`."""
        return [r["agent"] for r in self.store.conn.execute(
            self.VIEWERS_SQL, {"number": number, "agent": agent, "since": since})]

    NEXT_START_SQL = """
        SELECT MIN(start_message_id) FROM tickets WHERE conversation_id = :conversation_id AND number > :number
    """
    PREVIOUS_SQL = """
        SELECT MAX(number) FROM tickets WHERE conversation_id = :conversation_id AND number < :number
    """

    def next_start(self, ticket: Ticket) -> int | None:
        """Where the conversation's next ticket began (its thread is its own), or None."""
        return self.store.conn.execute(self.NEXT_START_SQL, {"conversation_id": ticket.conversation_id,
                                                             "number": ticket.number}).fetchone()[0]

    def previous(self, ticket: Ticket) -> int | None:
        """The number of the conversation's ticket before this one (asked again after it was resolved)."""
        return self.store.conn.execute(self.PREVIOUS_SQL, {"conversation_id": ticket.conversation_id,
                                                           "number": ticket.number}).fetchone()[0]

    def saved_replies(self) -> list[dict]:
        return [dict(r) for r in self.store.conn.execute(self.SAVED_REPLIES_SQL)]
