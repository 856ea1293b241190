"""Tickets of the operations desk: the tables, the ticket's own states, and the queries of the console.

A ticket is made from one conversation (bot/handoff.py does that, in one transaction) and carries a
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

from .errors import HelpdeskError

STATES = ("new", "open", "pending", "resolved", "closed")
ACTIVE_STATES = ("new", "open", "pending")
STATE_JA = {"new": "新規", "open": "対応中", "pending": "返信待ち", "resolved": "解決済み", "closed": "終了"}
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "resolved", "closed"}),
    "open": frozenset({"pending", "resolved", "closed"}),
    "pending": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_JA = {"low": "低", "normal": "通常", "high": "高", "urgent": "緊急"}
REASONS = ("button", "command", "words", "not_helpful", "unanswered", "api")
REASON_JA = {"button": "「担当者に問い合わせる」ボタン", "command": "/human コマンド", "words": "文章での依頼",
             "not_helpful": "「役に立たなかった」の後", "unanswered": "2回続けて回答できなかった後",
             "api": "Webチャットの問い合わせボタン"}
FIRST_NUMBER = 1001

TICKETS_0010 = [
    # Desk agents: role `desk`, no association. login ids never collide with staff ids in practice,
    # and the two tables are never joined.
    """
    CREATE TABLE agents (
        id INTEGER PRIMARY KEY,
        login_id TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1)),
        created_at TEXT NOT NULL,
        last_sign_in_at TEXT
    )
    """,
    # `number` is what the user is told (お問い合わせ番号 #1042). start_message_id is the last message
    # of the conversation when the ticket was made: later messages are the ticket's thread.
    """
    CREATE TABLE tickets (
        number INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id),
        state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'open', 'pending', 'resolved', 'closed')),
        priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
        assignee TEXT,
        channel TEXT NOT NULL,
        asker_role TEXT NOT NULL,
        asker_name TEXT,
        association_code TEXT,
        association_name TEXT,
        reason TEXT NOT NULL,
        note TEXT,
        subject TEXT NOT NULL,
        transcript TEXT NOT NULL,
        articles TEXT NOT NULL,
        unfound TEXT NOT NULL,
        start_message_id INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        first_response_at TEXT,
        resolved_at TEXT,
        closed_at TEXT,
        unreachable_at TEXT
    )
    """,
    # At most one unfinished ticket per conversation: pressing the button twice finds the first.
    "CREATE UNIQUE INDEX tickets_one_active ON tickets (conversation_id) WHERE state IN ('new', 'open', 'pending')",
    "CREATE INDEX tickets_by_state ON tickets (state, number)",
    "CREATE INDEX tickets_by_conversation ON tickets (conversation_id, number)",
    "CREATE INDEX tickets_by_created ON tickets (created_at)",
    """
    CREATE TABLE ticket_events (
        id INTEGER PRIMARY KEY,
        ticket_number INTEGER NOT NULL REFERENCES tickets(number),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        message_id INTEGER REFERENCES messages(id)
    )
    """,
    "CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_number, id)",
    "CREATE INDEX ticket_events_by_message ON ticket_events (message_id) WHERE message_id IS NOT NULL",
    """
    CREATE TABLE saved_replies (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL
    )
    """,
    """
    INSERT INTO saved_replies (title, body) VALUES
    ('お問い合わせのお礼', 'お問い合わせいただきありがとうございます。MAMIS運営事務局の担当です。'),
    ('確認して折り返します', '内容を確認のうえ、あらためてご連絡いたします。今しばらくお待ちください。'),
    ('解決の確認', 'ご案内した方法で解決しましたでしょうか。ほかにもご不明な点があれば、このままご返信ください。'),
    ('医師会事務局へのご相談', '会員情報の変更は、ご所属の医師会事務局で承っております。お手数ですが、医師会事務局へご相談ください。')
    """,
]


#: Listed in bot.store.MIGRATIONS after 0009, in order of their names like every other migration.
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("0010_tickets", TICKETS_0010),
    # The queue's counts per state under a filter read one of these indexes alone, never the wide rows
    # (each carries its transcript): a filtered count over 50,000 tickets takes milliseconds.
    ("0011_ticket_filters", [
        "CREATE INDEX tickets_by_channel ON tickets (channel, state)",
        "CREATE INDEX tickets_by_assignee ON tickets (assignee, state)",
        "CREATE INDEX tickets_by_association ON tickets (association_code, state)",
        "CREATE INDEX tickets_by_state_age ON tickets (state, created_at)",
    ]),
    # Agent sign-ins held on the server like the staff's (0008): signing out of the console ends the
    # session for every copy of the cookie; removing an agent removes their sessions with them.
    ("0012_agent_sessions", [
        """
        CREATE TABLE agent_sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            ended_at TEXT
        )
        """,
        "CREATE INDEX agent_sessions_by_agent ON agent_sessions (agent_id)",
    ]),
    # Who has a ticket page open: each page's held request for news (/desk/tickets/<n>/live) marks its
    # agent here, in wall-clock seconds (a liveness signal, not a record: never in the audit log).
    ("0013_ticket_viewers", [
        """
        CREATE TABLE ticket_viewers (
            ticket_number INTEGER NOT NULL REFERENCES tickets(number),
            agent TEXT NOT NULL,
            seen_at REAL NOT NULL,
            PRIMARY KEY (ticket_number, agent)
        ) WITHOUT ROWID
        """,
    ]),
]


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
    """Reads and writes tickets in the help desk database of `store` (a bot.store.Store).

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
            resolved_at = CASE WHEN :state = 'resolved' THEN :at WHEN :state = 'open' THEN NULL ELSE resolved_at END,
            closed_at = CASE WHEN :state = 'closed' THEN :at ELSE closed_at END
        WHERE number = :number
    """

    def set_state(self, conn, ticket: Ticket, state: str, actor: str, at: str) -> None:
        """Move the ticket to `state` if its current state allows it, and log who did it."""
        if state == ticket.state:
            return
        if state not in TRANSITIONS[ticket.state]:
            raise TicketStateError(ticket.state, state)
        conn.execute(self.SET_STATE_SQL, {"state": state, "at": at, "number": ticket.number})
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
            AND state IN ('new', 'open', 'pending')
    """
    LATEST_SQL = f"""
        SELECT {LIST_COLUMNS} FROM tickets WHERE conversation_id = :conversation_id ORDER BY number DESC LIMIT 1
    """
    EVENTS_SQL = """
        SELECT id, ticket_number, at, actor, kind, detail, message_id FROM ticket_events
        WHERE ticket_number = :number ORDER BY id
    """
    EVENT_OF_MESSAGE_SQL = """
        SELECT id, ticket_number, at, actor, kind, detail, message_id FROM ticket_events
        WHERE message_id = :message_id ORDER BY id LIMIT 1
    """
    SAVED_REPLIES_SQL = "SELECT id, title, body FROM saved_replies ORDER BY id"

    def get(self, number: int, conn=None) -> Ticket:
        row = (conn or self.store.conn).execute(self.BY_NUMBER_SQL, {"number": number}).fetchone()
        if row is None:
            raise TicketNotFound(number)
        return ticket_from_row(row, full=True)

    def active_for(self, conversation_id: str, conn=None) -> Ticket | None:
        row = (conn or self.store.conn).execute(self.ACTIVE_SQL, {"conversation_id": conversation_id}).fetchone()
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

    def event_of_message(self, message_id: int) -> Event | None:
        """The event that wrote a message (an agent's reply names its agent there)."""
        row = self.store.conn.execute(self.EVENT_OF_MESSAGE_SQL, {"message_id": message_id}).fetchone()
        return self._event(row) if row else None

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
