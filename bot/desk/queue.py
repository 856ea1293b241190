"""The desk's queue: tickets filtered by state, channel, association, age and assignee, with counts.

The filter is assembled in `queue_sql` (identifiers fixed here, every value a :named parameter) and
run in `TicketQueue.page`, so a test can print the SQL. Counts per state use the same filter without
its state part, so the tabs say how many each state would show.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.channels import CHANNELS
from bot.numbers import whole_number
from bot.desk.tickets import ACTIVE_STATES, LIST_COLUMNS, STATE_PARAMS, STATES, Ticket, ticket_from_row

AGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "72h": timedelta(hours=72),
        "168h": timedelta(days=7)}
AGE_JA = {"": "すべて", "1h": "1時間以上", "24h": "1日以上", "72h": "3日以上", "168h": "1週間以上"}
PAGE_SIZE = 50


@dataclass(frozen=True)
class QueueFilter:
    """What the agent chose; every field is checked here, so a hand-edited URL is harmless."""

    state: str = "active"  # active (new+open+pending) | all | one of STATES
    channel: str = ""
    association: str = ""
    age: str = ""
    assignee: str = ""  # "" any | "none" unassigned | an agent's login id
    page: int = 1

    @classmethod
    def of(cls, args) -> "QueueFilter":
        state = args.get("state", "active")
        association = args.get("association", "").strip()
        page = max(1, min(whole_number(args.get("page", "1")) or 1, 10_000))
        return cls(
            state=state if state in STATES or state in ("active", "all") else "active",
            channel=args.get("channel", "") if args.get("channel", "") in CHANNELS else "",
            association=association if whole_number(association, 5) is not None else "",
            age=args.get("age", "") if args.get("age", "") in AGES else "",
            assignee=args.get("assignee", "")[:64],
            page=page,
        )

    def args(self, **changes) -> dict:
        values = {"state": self.state, "channel": self.channel, "association": self.association,
                  "age": self.age, "assignee": self.assignee, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}


@dataclass
class QueuePage:
    tickets: list[Ticket]
    counts: dict[str, int]
    total: int
    new_total: int
    filter: QueueFilter
    pages: int = field(default=1)


def queue_sql(f: QueueFilter, now: datetime, *, with_state: bool = True) -> tuple[str, dict]:
    """The WHERE clause and its parameters for filter `f` ("1" when nothing is filtered)."""
    where, params = [], {}
    if with_state and f.state == "active":
        where.append("state IN (:new, :open, :pending)")
        params.update(STATE_PARAMS)
    elif with_state and f.state != "all":
        where.append("state = :state")
        params["state"] = f.state
    if f.channel:
        where.append("channel = :channel")
        params["channel"] = f.channel
    if f.association:
        # A prefecture's code (13) also finds its counties (13001 …): a range, so an index serves it.
        where.append("association_code >= :association AND association_code < :association_end")
        params["association"] = f.association
        params["association_end"] = f.association[:-1] + chr(ord(f.association[-1]) + 1)
    if f.age:
        where.append("created_at <= :older_than")
        params["older_than"] = (now - AGES[f.age]).isoformat(timespec="seconds")
    if f.assignee == "none":
        where.append("assignee IS NULL")
    elif f.assignee:
        where.append("assignee = :assignee")
        params["assignee"] = f.assignee
    return (" AND ".join(where) or "1"), params


class TicketQueue:
    def __init__(self, store):
        self.store = store

    NEW_SQL = "SELECT count(*) FROM tickets WHERE state = :new"

    def page(self, f: QueueFilter, now: datetime) -> QueuePage:
        conn = self.store.conn
        where, params = queue_sql(f, now)
        rows = conn.execute(
            f"SELECT {LIST_COLUMNS} FROM tickets WHERE {where} ORDER BY number DESC LIMIT :limit OFFSET :offset",
            {**params, "limit": PAGE_SIZE, "offset": (f.page - 1) * PAGE_SIZE},
        ).fetchall()
        count_where, count_params = queue_sql(f, now, with_state=False)
        counts = dict.fromkeys(STATES, 0)
        for state, n in conn.execute(f"SELECT state, count(*) FROM tickets WHERE {count_where} GROUP BY state",
                                     count_params):
            counts[state] = n
        counts["active"] = sum(counts[s] for s in ACTIVE_STATES)
        counts["all"] = sum(counts[s] for s in STATES)
        total = counts[f.state]
        new_total = conn.execute(self.NEW_SQL, STATE_PARAMS).fetchone()[0]
        return QueuePage([ticket_from_row(r) for r in rows], counts, total, new_total, f,
                         max(1, -(-total // PAGE_SIZE)))
